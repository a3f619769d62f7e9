"""Turn a pipeline's document into the object statewriter writes for one destination."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from gitops import caches
from gitops.bundle import SourceDocument, canonical_json
from gitops.identity import Identity, crd_defines, identity_of
from gitops.lru import LRU
from gitops.rules import PLACEMENT_ANNOTATION, STATEWRITER_PREFIX
from gitops.secrets.envelope import claims_encryption
from gitops.tree import blob_id
from gitops.yamldocs import dump_document, dump_in_order

PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
DEFAULT_PROTECTED = frozenset({"CustomResourceDefinition", "Namespace"})


def normalize(
    doc: dict[str, Any],
    default_namespace: str,
    cluster_scoped: bool,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
) -> dict[str, Any]:
    """Namespace defaulted (or dropped for cluster-scoped kinds), statewriter's own
    annotations stripped, prune protection added to protected kinds. Only the top level and
    `metadata` are copied (the rest is shared with `doc`, which nobody mutates): a YAML
    alias of the metadata elsewhere in the document keeps the value the pipeline sent."""
    doc = dict(doc)
    meta = doc["metadata"] = dict(doc["metadata"])
    if cluster_scoped:
        meta.pop("namespace", None)
    elif not meta.get("namespace"):
        meta["namespace"] = default_namespace
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if not key.startswith(STATEWRITER_PREFIX)
    }
    if doc["kind"] in protect_from_prune:
        annotations[PRUNE_ANNOTATION] = "disabled"
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return doc


def wants_dependency(doc: dict[str, Any]) -> bool:
    annotations = doc["metadata"].get("annotations") or {}
    return bool(annotations.get(PLACEMENT_ANNOTATION) == "dependency")


@dataclass(frozen=True)
class Rendering:
    """A normalised object as written to a destination."""

    identity: Identity
    content: bytes
    blob: str  # git blob id of `content`
    defines: tuple[str, str] | None  # for a CRD: the (group, kind) it defines
    defines_cluster_scoped: bool = False  # ... and whether that kind is cluster-scoped

    @property
    def defines_cluster_kind(self) -> tuple[str, str] | None:
        return self.defines if self.defines_cluster_scoped else None


# Every request of a promise outputs the same CRDs and operator: rendering them once saves
# most of a write's CPU (`gitops.caches`); each request's own documents pass through.
_CACHE: LRU[tuple[bytes, str, bool, frozenset[str]], Rendering] = caches.lru(
    "renderings", caches.RENDERINGS_BYTES, lambda rendering: 256 + len(rendering.content),
    caches.RENDERING_LARGEST)


def render(
    source: SourceDocument,
    default_namespace: str,
    cluster_scoped: bool,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
) -> Rendering:
    """`normalize`, then canonical YAML; a pure function, memoised by the document's digest
    (taken while the bundle was parsed, off the writer lane)."""
    digest = source.key or hashlib.sha256(canonical_json(source.doc).encode()).digest()
    # The default namespace matters only to a namespaced object that names none: the shared
    # objects of a promise are rendered once, not once per namespace of its requests.
    if cluster_scoped or source.doc["metadata"].get("namespace"):
        default_namespace = ""
    key = (digest, default_namespace, cluster_scoped, protect_from_prune)
    found = _CACHE.get(key)
    if found is not None:
        return found
    obj = normalize(source.doc, default_namespace, cluster_scoped, protect_from_prune)
    defined = crd_defines(obj)
    # A document its pipeline SOPS-encrypted keeps its keys' order: its MAC covers its
    # values in that order (gitops.secrets.envelope).
    content = dump_in_order(obj) if claims_encryption(obj) else dump_document(obj)
    rendering = Rendering(identity_of(obj), content, blob_id(content),
                          defined[0] if defined else None, bool(defined and defined[1]))
    _CACHE.put(key, rendering)
    return rendering
