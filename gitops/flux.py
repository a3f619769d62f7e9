"""The Flux objects a worker cluster applies to follow its destination (docs/reference.md section 2),
and the Kustomizations statewriter writes itself for a destination isolated by namespace."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from gitops.destination import DEFAULT_FLUX_NAMESPACE, DEFAULT_FLUX_PREFIX, Destination
from gitops.identity import Identity
from gitops.layout import DEPENDENCIES, RESOURCES
from gitops.quoting import quoted
from gitops.yamldocs import dump_document

DEFAULT_PREFIX = DEFAULT_FLUX_PREFIX
FLUX_NAMESPACE = DEFAULT_FLUX_NAMESPACE
SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io"


@functools.cache
def flux_object_identities(
    prefix: str = DEFAULT_PREFIX, namespace: str = FLUX_NAMESPACE
) -> frozenset[Identity]:
    """Every object `GET /v1/destinations/{name}/flux` names for `prefix`: the GitRepository,
    both Kustomizations, the credentials and verification-key Secrets the GitRepository refers
    to, the Receiver with its token Secret, and the age key Secret the Kustomizations decrypt
    with (docs/reference.md section 2). A bundle's object with one of these identities would take over
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
        Identity("", "Secret", namespace, f"{prefix}-delivery"),
        Identity(NOTIFICATION_GROUP, "Provider", namespace, f"{prefix}-delivery"),
        Identity(NOTIFICATION_GROUP, "Alert", namespace, f"{prefix}-delivery"),
    })


# -- isolation by namespace: one child Kustomization per namespace of its resources --------

MAX_NAME = 63  # Flux writes a Kustomization's name into label values
# on every Kustomization of a destination: its Alert selects their events by it
DESTINATION_LABEL = "statewriter.dev/destination"
KUSTOMIZATION_API = f"{KUSTOMIZE_GROUP}/v1"
CHILD_INTERVAL = "1m"


def child_name(prefix: str, namespace: str) -> str:
    """The name of the Kustomization of one namespace's resources: `<prefix>-ns-<namespace>`,
    or when that is longer than 63 characters `<prefix>-nh-<12 hex of sha256(namespace)>-<its
    start>`. Deterministic, a DNS-1123 label of at most 63 characters, and never the name of
    another namespace's child (the two forms differ in `-ns-`/`-nh-`) nor of
    `<prefix>-dependencies`/`-resources`."""
    name = f"{prefix}-ns-{namespace}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(namespace.encode()).hexdigest()[:12]
    return f"{prefix}-nh-{digest}-{namespace}"[:MAX_NAME].rstrip("-")


def is_child_name(prefix: str, name: str) -> bool:
    """Whether `name` has the form of a child Kustomization's (one may come later)."""
    return name.startswith((f"{prefix}-ns-", f"{prefix}-nh-"))


def child_kustomization(destination: Destination, namespace: str, path: str) -> dict[str, Any]:
    """The Flux Kustomization of one namespace's resources, applied by the destination's
    resources Kustomization: its objects reconciled apart from other namespaces', after the
    dependencies (`dependsOn`), garbage-collected with it (`prune`)."""
    prefix = destination.flux_prefix
    spec: dict[str, Any] = {
        "interval": CHILD_INTERVAL,
        "sourceRef": {"kind": "GitRepository", "name": prefix},
        "path": f"./{path}",
        "prune": True,
        "dependsOn": [{"name": f"{prefix}-{DEPENDENCIES}"}],
    }
    if destination.recipients:
        spec["decryption"] = _decryption(prefix)
    return {
        "apiVersion": KUSTOMIZATION_API,
        "kind": "Kustomization",
        "metadata": {"name": child_name(prefix, namespace), "namespace": destination.flux_namespace,
                     "labels": {DESTINATION_LABEL: destination.name}},
        "spec": spec,
    }


def is_destinations_own(destination: Destination, identity: Identity) -> bool:
    """Whether `identity` is one of the Flux objects of `destination`: those `/flux` renders
    for its prefix and namespace, and (isolated by namespace) its child Kustomizations, any
    that may come later included."""
    prefix, namespace = destination.flux_prefix, destination.flux_namespace
    if identity in flux_object_identities(prefix, namespace):
        return True
    return (destination.isolated and identity.group_kind == (KUSTOMIZE_GROUP, "Kustomization")
            and identity.namespace == namespace and is_child_name(prefix, identity.name))


def _decryption(prefix: str) -> dict[str, Any]:
    # fluxcd/kustomize-controller docs/spec/v1/kustomizations.md "Decryption"
    return {"provider": "sops", "secretRef": {"name": f"{prefix}-sops-age"}}


RECEIVER_TYPES = ("generic", "generic-hmac")
POLL_INTERVAL = "30s"  # how often the GitRepository looks for a new commit on its own
NOTIFIED_POLL_INTERVAL = "10m"  # ... when a Receiver tells it at once (a fallback only)


def flux_manifests(
    destination: Destination,
    url: str,
    branch: str,
    prefix: str | None = None,
    secret: str | None = None,
    namespace: str | None = None,
    receiver: str | None = None,
    verify: bool = False,
    decryption: bool = False,
    delivery: tuple[str, str] | None = None,
) -> str:
    """One GitRepository and two Kustomizations: dependencies first, then resources. With
    `receiver` (a Receiver type of RECEIVER_TYPES: `generic-hmac` when the service signs its
    notifications), also the Receiver the destination's notify URL names, which reconciles the
    GitRepository at once, so the GitRepository polls only now and then. With `verify` (the
    service signs its commits), the GitRepository accepts a tip only when its signature
    verifies with a key in the Secret `<prefix>-verify` (`*.asc` OpenPGP, `*.sshpub` SSH).
    With `decryption` (the destination's Secrets are SOPS-encrypted), both Kustomizations
    decrypt them with the age identity in the Secret `<prefix>-sops-age` (a `*.agekey` entry).
    With `delivery` (the events URL and the destination's token), a generic-hmac Provider
    posting to it, its Secret, and an Alert for every event (severity info) of the
    destination's Kustomizations, which carry the label DESTINATION_LABEL."""
    prefix = destination.flux_prefix if prefix is None else prefix
    namespace = destination.flux_namespace if namespace is None else namespace
    if receiver is not None and receiver not in RECEIVER_TYPES:
        raise ValueError(f"receiver type {quoted(receiver)} is not one of {', '.join(RECEIVER_TYPES)}")
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
            "metadata": {"name": f"{prefix}-{section}", "namespace": namespace,
                         # what the delivery Alert selects (without it: as before)
                         **({"labels": {DESTINATION_LABEL: destination.name}} if delivery else {})},
            "spec": {
                "interval": "1m",
                "sourceRef": {"kind": "GitRepository", "name": prefix},
                "path": f"./{destination.section(section)}",
                "prune": True,
                **extra,
                **({"decryption": _decryption(prefix)} if decryption else {}),
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
    if delivery is not None:
        docs.extend(_delivery(destination, prefix, namespace, *delivery))
    return "---\n".join(dump_document(doc).decode() for doc in docs)


def _delivery(destination: Destination, prefix: str, namespace: str, address: str,
              token: str) -> list[dict[str, Any]]:
    """fluxcd/notification-controller docs/spec/v1beta3/providers.md ("Generic webhook with
    HMAC": the Secret's `token` is the HMAC key of X-Signature) and alerts.md (`eventSeverity:
    info` forwards every event, errors included; `matchLabels` selects the Kustomizations)."""
    name = f"{prefix}-delivery"
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
         "type": "Opaque", "stringData": {"token": token}},
        {"apiVersion": f"{NOTIFICATION_GROUP}/v1beta3", "kind": "Provider",
         "metadata": {"name": name, "namespace": namespace},
         "spec": {"type": "generic-hmac", "address": address, "secretRef": {"name": name}}},
        {"apiVersion": f"{NOTIFICATION_GROUP}/v1beta3", "kind": "Alert",
         "metadata": {"name": name, "namespace": namespace},
         "spec": {"providerRef": {"name": name}, "eventSeverity": "info",
                  "eventSources": [{"kind": "Kustomization", "name": "*", "namespace": namespace,
                                    "matchLabels": {DESTINATION_LABEL: destination.name}}]}},
    ]
