"""A destination: a worker cluster that Flux reconciles from a path of the state store
(docs/reference.md sections 1, 2, 9 and 11), as its record under `.statewriter/destinations/` and the
API spell it, and the checks of each of its fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gitops import names
from gitops.quoting import quoted
from gitops.validate.builtin import NEWEST, SUPPORTED

# How its resources are split into Flux Kustomizations (docs/reference.md section 2): all in one
# (`destination`, as Kratix lays them out), or one per namespace of its resources
ISOLATION_DESTINATION = "destination"
ISOLATION_NAMESPACE = "namespace"
ISOLATIONS = (ISOLATION_DESTINATION, ISOLATION_NAMESPACE)
DEFAULT_FLUX_PREFIX = "kratix-workload"  # what existing Kratix worker setups name their objects
DEFAULT_FLUX_NAMESPACE = "flux-system"
MAX_FLUX_PREFIX = 40  # a child Kustomization's name (at most 63) is the prefix and 23 more


@dataclass(frozen=True)
class Destination:
    name: str
    labels: dict[str, str]
    path: str
    notify_url: str | None = None  # POSTed after each push that changed a file under `path`
    recipients: tuple[str, ...] = ()  # age recipients its Secrets are encrypted for (sorted)
    # What its cluster serves and holds without statewriter (docs/reference.md section 11): objects
    # are validated against this Kubernetes version (None: the newest supported); `apis`
    # are API groups, or group/version/Kind, its cluster serves besides the built-in ones
    # and the CRDs statewriter writes there; `namespaces` the namespaces it has (None: not
    # declared, so an object in a namespace nothing creates is only warned about).
    kubernetes_version: str | None = None
    apis: tuple[str, ...] = ()
    namespaces: tuple[str, ...] | None = None
    isolation: str = ISOLATION_DESTINATION
    # the names its Flux objects start with, and the namespace they live in on its cluster
    flux_prefix: str = DEFAULT_FLUX_PREFIX
    flux_namespace: str = DEFAULT_FLUX_NAMESPACE

    @property
    def isolated(self) -> bool:
        """Whether each namespace of its resources is a Flux Kustomization of its own."""
        return self.isolation == ISOLATION_NAMESPACE

    def section(self, section: str) -> str:
        """The folder of one of its sections (DEPENDENCIES or RESOURCES)."""
        return f"{self.path}/{section}"

    def as_dict(self) -> dict[str, Any]:
        """The destination as its record and the API spell it; `notify` and `encryption` only
        when it has them (and so the later fields), so records written before they existed
        read and write back byte for byte."""
        found: dict[str, Any] = {"name": self.name, "labels": self.labels, "path": self.path}
        if self.notify_url is not None:
            found["notify"] = {"url": self.notify_url}
        if self.recipients:
            found["encryption"] = {"age": list(self.recipients)}
        if self.kubernetes_version is not None:
            found["kubernetesVersion"] = self.kubernetes_version
        if self.apis:
            found["apis"] = list(self.apis)
        if self.namespaces is not None:
            found["namespaces"] = list(self.namespaces)
        if self.isolation != ISOLATION_DESTINATION:
            found["isolation"] = self.isolation
        if (self.flux_prefix, self.flux_namespace) != (DEFAULT_FLUX_PREFIX, DEFAULT_FLUX_NAMESPACE):
            found["flux"] = {"prefix": self.flux_prefix, "namespace": self.flux_namespace}
        return found

    MAX_NOTIFY_URL = 2048

    @staticmethod
    def notify_url_problem(url: object) -> str | None:
        """Why `url` cannot be a notify URL (docs/reference.md section 6), or None. The reason never
        repeats the URL: it may carry a credential, and reasons reach answers and logs."""
        if not isinstance(url, str):
            return "must be a string"
        if len(url) > Destination.MAX_NOTIFY_URL:
            return f"must be at most {Destination.MAX_NOTIFY_URL} characters"
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            return "must not contain spaces or control characters"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not one
        except ValueError:
            return "is not a valid URL"
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return "must be an http:// or https:// URL with a host"
        if "@" in parts.netloc:
            return "must not carry credentials (user:password@): the Receiver's path is its secret"
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            # Flux finds a Receiver by the exact request URI: a query would miss it
            return "must not have a query or a fragment"
        return None


# -- the fields of docs/reference.md section 11 ------------------------------------------------------

MAX_APIS = 256
MAX_NAMESPACES = 10_000
_VERSION = re.compile(r"v?(1)\.(\d{1,3})(?:\.\d{1,4})?")


def kubernetes_version(value: object) -> str:
    """A destination's Kubernetes version as validation takes it ("1.33"; "v1.33.2" is read
    so too); ValueError naming the versions statewriter ships schemas for otherwise."""
    found = _VERSION.fullmatch(value) if isinstance(value, str) else None
    version = f"{found.group(1)}.{int(found.group(2))}" if found else None
    if version not in SUPPORTED:
        raise ValueError(f"must be a Kubernetes version statewriter has the schemas of: "
                         f"{SUPPORTED[0]} to {SUPPORTED[-1]} (e.g. {NEWEST})")
    return version


def api_entries(value: object) -> tuple[str, ...]:
    """`apis`: API groups (`cert-manager.io`) or `group/version/Kind` entries
    (`metrics.k8s.io/v1beta1/NodeMetrics`), sorted and without repeats."""
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of API groups or group/version/Kind entries")
    if len(value) > MAX_APIS:
        raise ValueError(f"must list at most {MAX_APIS} entries")
    for item in value:
        parts = item.split("/")
        group_ok = names.is_group(parts[0]) and parts[0] != ""
        if not (len(parts) == 1 and group_ok) and not (
                len(parts) == 3 and group_ok and names.is_label(parts[1]) and names.is_kind(parts[2])):
            raise ValueError(f"{quoted(item[:80])} is neither an API group (cert-manager.io) nor "
                             "group/version/Kind (metrics.k8s.io/v1beta1/NodeMetrics)")
    return tuple(sorted(set(value)))


def namespace_list(value: object) -> tuple[str, ...]:
    """`namespaces`: DNS-1123 labels, sorted and without repeats."""
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of namespace names")
    if len(value) > MAX_NAMESPACES:
        raise ValueError(f"must list at most {MAX_NAMESPACES} namespaces")
    for item in value:
        if not names.is_label(item):
            raise ValueError(f"{quoted(item[:80])} is not a namespace name (a DNS-1123 label)")
    return tuple(sorted(set(value)))


# -- the fields of docs/reference.md section 2 (v3) --------------------------------------------------


def isolation(value: object) -> str:
    """`isolation`: `destination` (one Kustomization for all its resources) or `namespace`."""
    if value not in ISOLATIONS:
        raise ValueError(f"must be {' or '.join(ISOLATIONS)}")
    assert isinstance(value, str)
    return value


def flux_settings(value: object) -> tuple[str, str]:
    """`flux`: `{"prefix": ..., "namespace": ...}`, each optional: the names its Flux objects
    start with (a DNS-1123 label of at most MAX_FLUX_PREFIX characters) and their namespace."""
    if not isinstance(value, dict) or not set(value) <= {"prefix", "namespace"}:
        raise ValueError('must be {"prefix": ..., "namespace": ...}')
    prefix = value.get("prefix", DEFAULT_FLUX_PREFIX)
    namespace = value.get("namespace", DEFAULT_FLUX_NAMESPACE)
    if not isinstance(prefix, str) or not names.is_label(prefix) or len(prefix) > MAX_FLUX_PREFIX:
        raise ValueError(f"prefix must be a DNS-1123 label of at most {MAX_FLUX_PREFIX} "
                         "characters")
    if not isinstance(namespace, str) or not names.is_label(namespace):
        raise ValueError("namespace must be a namespace name (a DNS-1123 label)")
    return prefix, namespace
