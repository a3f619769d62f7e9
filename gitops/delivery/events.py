"""Events from Flux's notification-controller (a `generic-hmac` Provider): their signature,
checked with the destination's own key, and what statewriter reads of them.

The body is the JSON `Event` of fluxcd/pkg's apis/event/v1beta1 (notification-controller's
docs/spec/v1beta3/providers.md, "Generic webhook"): `involvedObject` (kind, name, namespace),
`severity` (`info` or `error`), `reason`, `message`, `timestamp` and `metadata`, whose revision
key is `revision` (notification-controller strips the involved object's group from its keys)
or `kustomize.toolkit.fluxcd.io/revision` (older ones keep it); its value is
`<branch>@sha1:<sha>`, or `<branch>/<sha>` from Flux before 2.0."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from gitops.errors import InvalidBundle, Unauthorized

KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
REVISION_KEYS = ("revision", f"{KUSTOMIZE_GROUP}/revision")
# the Ready condition's reason when a Kustomization applied its revision (fluxcd/pkg
# apis/meta ReconciliationSucceededReason), the reason of kustomize-controller's
# "Reconciliation finished in ..." event
APPLIED_REASON = "ReconciliationSucceeded"
MAX_EVENT_BYTES = 256 << 10  # kustomize-controller's messages list objects, not much more
MAX_MESSAGE = 4096  # kept of a message
_HASHES = {"sha224": hashlib.sha224, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
           "sha512": hashlib.sha512}
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def destination_key(secret: bytes, destination: str) -> bytes:
    """The HMAC key of one destination's Provider, derived from the service's secret
    (`delivery.hmacTokenFile`): a worker holding its own key cannot sign for another."""
    return hmac.new(secret, f"statewriter delivery {destination}".encode(), hashlib.sha256).digest()


def provider_token(secret: bytes, destination: str) -> str:
    """The `token` of the Provider's Secret: the key as notification-controller uses it (the
    bytes of the string, so hex)."""
    return destination_key(secret, destination).hex()


def check_signature(header: str | None, body: bytes, token: str) -> None:
    """`X-Signature: <hash>=<hex>` of `body` with `token`; else Unauthorized (401, as without
    a token)."""
    if not header:
        raise Unauthorized("no X-Signature header")
    name, _, given = header.strip().partition("=")
    digest = _HASHES.get(name.lower())
    if digest is None or not given:
        raise Unauthorized("X-Signature is not <sha256|sha224|sha384|sha512>=<hex>")
    want = hmac.new(token.encode(), body, digest).hexdigest()
    if not hmac.compare_digest(want, given.strip().lower()):
        raise Unauthorized("X-Signature does not match the body")


@dataclass(frozen=True)
class Event:
    """What a Kustomization's event says of one revision."""

    kustomization: str  # the Kustomization's name
    namespace: str  # ... and namespace
    applied: bool  # it applied `revision` (else: it failed, or is under way)
    failed: bool  # severity error
    reason: str
    message: str
    revision: str | None  # the commit, None when the event names none
    branch: str | None  # the branch the revision names, None when it names none
    at: datetime


def parse_event(body: bytes) -> Event | None:
    """The event in `body`, or None when it is not a Kustomization's (a GitRepository's, a
    Receiver's: nothing to record). InvalidBundle when it is not an event at all."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, too deep, too long a number
        raise InvalidBundle("the body is not a JSON event") from None
    if not isinstance(data, dict) or not isinstance(data.get("involvedObject"), dict):
        raise InvalidBundle("the event has no involvedObject", field="involvedObject")
    involved = data["involvedObject"]
    if involved.get("kind") != "Kustomization" or not str(
            involved.get("apiVersion", KUSTOMIZE_GROUP)).startswith(KUSTOMIZE_GROUP):
        return None
    name, namespace = involved.get("name"), involved.get("namespace")
    severity, reason, message = data.get("severity"), data.get("reason", ""), data.get("message", "")
    metadata = data.get("metadata") or {}
    if not all(isinstance(v, str) for v in (name, namespace, severity, reason, message)) or \
            not isinstance(metadata, dict):
        raise InvalidBundle("the event's involvedObject name and namespace, severity, reason "
                            "and message must be strings, its metadata a map")
    assert isinstance(name, str) and isinstance(namespace, str) and isinstance(severity, str)
    revision = next((metadata[key] for key in REVISION_KEYS if isinstance(metadata.get(key), str)),
                    None)
    branch, sha = parse_revision(revision) if revision else (None, None)
    return Event(name, namespace, severity == "info" and reason == APPLIED_REASON,
                 severity == "error", str(reason)[:256], str(message)[:MAX_MESSAGE], sha, branch,
                 _timestamp(data.get("timestamp")))


def parse_revision(revision: str) -> tuple[str | None, str | None]:
    """(branch, sha) of `main@sha1:<sha>`, `main/<sha>`, `sha1:<sha>` or `<sha>`."""
    head, at, digest = revision.rpartition("@")
    if not at:
        head, slash, digest = revision.rpartition("/")
        if not slash:
            head = ""
    digest = digest.partition(":")[2] if ":" in digest else digest
    sha = digest.lower() if _SHA.fullmatch(digest.lower()) else None
    return (head or None, sha)


def _timestamp(value: object) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)
