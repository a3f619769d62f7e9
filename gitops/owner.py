"""Who owns objects: a promise, one of its requests (or none), and a pipeline (docs/reference.md
section 1), and the names a bundle defaults to."""

from __future__ import annotations

from dataclasses import dataclass

from gitops import names
from gitops.errors import InvalidBundle
from gitops.quoting import quoted

DEFAULT_PIPELINE = "default"  # the pipeline of a bundle that names none
DEFAULT_NAMESPACE = "default"  # where a promise-level bundle's namespaced objects land


@dataclass(frozen=True, order=True, slots=True)
class Owner:
    """Who owns objects: a promise, one of its requests (or none), and a pipeline."""

    promise: str
    namespace: str  # "" for a promise-level owner
    name: str  # "" for a promise-level owner
    pipeline: str

    @property
    def is_promise_level(self) -> bool:
        return not self.name

    @property
    def request(self) -> str | None:
        return f"{self.namespace}/{self.name}" if self.name else None

    def __str__(self) -> str:
        who = self.request or "(promise)"
        return f"{self.promise} {who} pipeline {self.pipeline}"


def make_owner(promise: object, namespace: object, name: object, pipeline: object) -> Owner:
    if not names.is_label(promise):
        raise InvalidBundle(f"promise {quoted(promise)} is not a DNS-1123 label", field="promise")
    if pipeline is None:
        pipeline = DEFAULT_PIPELINE
    if not names.is_label(pipeline):
        raise InvalidBundle(f"pipeline {quoted(pipeline)} is not a DNS-1123 label", field="pipeline")
    if namespace is None and name is None:
        return Owner(str(promise), "", "", str(pipeline))
    if not names.is_label(namespace):
        raise InvalidBundle(
            f"request namespace {quoted(namespace)} is not a DNS-1123 label", field="request.namespace"
        )
    if not names.is_subdomain(name):
        raise InvalidBundle(
            f"request name {quoted(name)} is not a DNS-1123 subdomain", field="request.name"
        )
    if name in names.RESERVED_REQUEST_NAMES:
        raise InvalidBundle(
            f"request name {quoted(name)} is reserved: request folders sit next to kustomization files",
            field="request.name",
        )
    return Owner(str(promise), str(namespace), str(name), str(pipeline))
