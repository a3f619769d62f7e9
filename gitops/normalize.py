"""Turn a pipeline's document into the object statewriter writes for one destination."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

from gitops.bundle import PLACEMENT_ANNOTATION, STATEWRITER_PREFIX
from gitops.identity import group_of

PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
DEFAULT_PROTECTED = frozenset({"CustomResourceDefinition", "Namespace"})


def blob_id(content: bytes) -> str:
    """The git blob id of `content` (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def normalize(
    doc: dict[str, Any],
    default_namespace: str,
    is_cluster_scoped: Callable[[tuple[str, str]], bool],
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
) -> dict[str, Any]:
    """Namespace defaulted (or dropped for cluster-scoped kinds), statewriter's own
    annotations stripped, prune protection added to protected kinds."""
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    if is_cluster_scoped((group_of(doc["apiVersion"]), doc["kind"])):
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
