"""Flux's notification-controller as the tests play it: the events of a destination's
Kustomizations, shaped as its generic-hmac Provider sends them (its docs' example: the
involvedObject, severity, reason, message, timestamp, and the revision in `metadata` under
`revision`, or `kustomize.toolkit.fluxcd.io/revision` with Flux before 2.0's
`<branch>/<sha>`), signed with the destination's key as `/flux` renders it."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import yaml

from tests.procs import Server


class Flux:
    """One destination's notification-controller: its Provider's address and token, as
    `/flux` renders them."""

    def __init__(self, server: Server, destination: str, token: str | None = None) -> None:
        """`token`: one that may read the destination's `/flux`, when the service has auth."""
        self.server, self.destination = server, destination
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with server.client() as http:
            answer = http.get(f"/v1/destinations/{destination}/flux", headers=headers)
            assert answer.status_code == 200, answer.text
            docs = list(yaml.safe_load_all(answer.text))
        self.docs = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        (provider,) = [d for (kind, _), d in self.docs.items() if kind == "Provider"]
        (secret,) = [d for (kind, name), d in self.docs.items()
                     if kind == "Secret" and name == provider["spec"]["secretRef"]["name"]]
        self.address = provider["spec"]["address"]
        self.token = secret["stringData"]["token"]

    def event(self, kustomization: str, revision: str | None, *, applied: bool = True,
              message: str = "", at: datetime | None = None, old_style: bool = False,
              reason: str | None = None) -> dict[str, Any]:
        metadata: dict[str, str] = {}
        if revision is not None:
            if old_style:
                metadata["kustomize.toolkit.fluxcd.io/revision"] = f"main/{revision}"
            else:
                metadata["revision"] = f"main@sha1:{revision}"
        return {
            "involvedObject": {"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                               "kind": "Kustomization", "name": kustomization,
                               "namespace": "flux-system", "uid": "7d0cdc51-ddcf-4743"},
            "metadata": metadata,
            "severity": "info" if applied else "error",
            "reason": reason or ("ReconciliationSucceeded" if applied else "ReconciliationFailed"),
            "message": message or ("Reconciliation finished in 1.2s, next run in 1m0s"
                                   if applied else "kustomize build failed"),
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp",
            "timestamp": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def send(self, event: dict[str, Any], token: str | None = None,
             signature: str | None = None) -> httpx.Response:
        body = json.dumps(event).encode()
        mac = hmac.new((token or self.token).encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Gotk-Component": "kustomize-controller",
                   "X-Signature": signature if signature is not None else f"sha256={mac}"}
        path = self.address.split("://", 1)[1].partition("/")[2]
        with self.server.client() as http:
            return http.post(f"/{path}", content=body, headers=headers)

    def applied(self, kustomization: str, revision: str, **kwargs: Any) -> None:
        answer = self.send(self.event(kustomization, revision, **kwargs))
        assert answer.status_code == 200, answer.text

    def failed(self, kustomization: str, revision: str | None, message: str, **kwargs: Any) -> None:
        answer = self.send(self.event(kustomization, revision, applied=False, message=message,
                                      **kwargs))
        assert answer.status_code == 200, answer.text
