"""The Flux objects a worker cluster applies to follow its destination (CONTRACT section 2)."""

from __future__ import annotations

from typing import Any

from gitops.destination import Destination
from gitops.identity import Identity
from gitops.layout import DEPENDENCIES, RESOURCES
from gitops.yamldocs import dump_document

DEFAULT_PREFIX = "kratix-workload"  # what existing Kratix worker setups name their Flux objects
FLUX_NAMESPACE = "flux-system"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io"


def flux_object_identities(
    prefix: str = DEFAULT_PREFIX, namespace: str = FLUX_NAMESPACE
) -> frozenset[Identity]:
    """Every object `GET /v1/destinations/{name}/flux` names for `prefix`: the GitRepository,
    both Kustomizations, the credentials and verification-key Secrets the GitRepository refers
    to, the Receiver with its token Secret, and the age key Secret the Kustomizations decrypt
    with (CONTRACT section 2). A bundle's object with one of these identities would take over
    the destination's own sync."""
    return frozenset({
        Identity(SOURCE_GROUP, "GitRepository", namespace, prefix),
        Identity(KUSTOMIZE_GROUP, "Kustomization", namespace, f"{prefix}-{DEPENDENCIES}"),
        Identity(KUSTOMIZE_GROUP, "Kustomization", namespace, f"{prefix}-{RESOURCES}"),
        Identity("", "Secret", namespace, f"{prefix}-credentials"),
        Identity("", "Secret", namespace, f"{prefix}-verify"),
        Identity(NOTIFICATION_GROUP, "Receiver", namespace, prefix),
        Identity("", "Secret", namespace, f"{prefix}-receiver-token"),
        Identity("", "Secret", namespace, f"{prefix}-sops-age"),
    })


RECEIVER_TYPES = ("generic", "generic-hmac")
POLL_INTERVAL = "30s"  # how often the GitRepository looks for a new commit on its own
NOTIFIED_POLL_INTERVAL = "10m"  # ... when a Receiver tells it at once (a fallback only)


def flux_manifests(
    destination: Destination,
    url: str,
    branch: str,
    prefix: str = DEFAULT_PREFIX,
    secret: str | None = None,
    namespace: str = FLUX_NAMESPACE,
    receiver: str | None = None,
    verify: bool = False,
    decryption: bool = False,
) -> str:
    """One GitRepository and two Kustomizations: dependencies first, then resources. With
    `receiver` (a Receiver type of RECEIVER_TYPES: `generic-hmac` when the service signs its
    notifications), also the Receiver the destination's notify URL names, which reconciles the
    GitRepository at once, so the GitRepository polls only now and then. With `verify` (the
    service signs its commits), the GitRepository accepts a tip only when its signature
    verifies with a key in the Secret `<prefix>-verify` (`*.asc` OpenPGP, `*.sshpub` SSH).
    With `decryption` (the destination's Secrets are SOPS-encrypted), both Kustomizations
    decrypt them with the age identity in the Secret `<prefix>-sops-age` (a `*.agekey` entry)."""
    if receiver is not None and receiver not in RECEIVER_TYPES:
        raise ValueError(f"receiver type {receiver!r} is not one of {', '.join(RECEIVER_TYPES)}")
    interval = POLL_INTERVAL if receiver is None else NOTIFIED_POLL_INTERVAL
    source: dict[str, Any] = {
        "apiVersion": f"{SOURCE_GROUP}/v1",
        "kind": "GitRepository",
        "metadata": {"name": prefix, "namespace": namespace},
        "spec": {"interval": interval, "url": url, "ref": {"branch": branch}},
    }
    if secret:
        source["spec"]["secretRef"] = {"name": secret}
    if verify:
        # fluxcd/source-controller docs/spec/v1/gitrepositories.md "Verification"; SSH
        # signatures since v1.9.0 (older controllers read every key as OpenPGP)
        source["spec"]["verify"] = {"mode": "HEAD", "secretRef": {"name": f"{prefix}-verify"}}

    def kustomization(section: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": f"{prefix}-{section}", "namespace": namespace},
            "spec": {
                "interval": "1m",
                "sourceRef": {"kind": "GitRepository", "name": prefix},
                "path": f"./{destination.section(section)}",
                "prune": True,
                **extra,
                # fluxcd/kustomize-controller docs/spec/v1/kustomizations.md "Decryption"
                **({"decryption": {"provider": "sops", "secretRef": {"name": f"{prefix}-sops-age"}}}
                   if decryption else {}),
            },
        }

    docs = [
        source,
        kustomization(DEPENDENCIES, {"wait": True}),
        kustomization(RESOURCES, {"dependsOn": [{"name": f"{prefix}-{DEPENDENCIES}"}]}),
    ]
    if receiver is not None:
        # fluxcd/notification-controller docs/spec/v1/receivers.md: `type` and `resources`
        # are required, and `secretRef` for every type but generic-oidc; the Secret's `token`
        # key salts the webhook path (`status.webhookPath`) and, for generic-hmac, is the
        # HMAC key of the X-Signature header.
        docs.append({
            "apiVersion": f"{NOTIFICATION_GROUP}/v1",
            "kind": "Receiver",
            "metadata": {"name": prefix, "namespace": namespace},
            "spec": {
                "type": receiver,
                "secretRef": {"name": f"{prefix}-receiver-token"},
                "resources": [{"apiVersion": f"{SOURCE_GROUP}/v1", "kind": "GitRepository",
                               "name": prefix}],
            },
        })
    return "---\n".join(dump_document(doc).decode() for doc in docs)
