"""Validation before commit (docs/reference.md section 11): the objects a bundle writes to a destination
(new ones, and ones whose content changes; objects already stored are not checked again
until they change) are checked as that destination's API server checks them, against the
CRDs the destination and the bundle hold, the stored object they replace, and what the
destination's owner declared of its cluster. Every error of the bundle refuses it at once
(`InvalidObject`); warnings go to the answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops import caches, layout
from gitops.bundle import Bundle, SourceDocument
from gitops.destination import Destination
from gitops.errors import InvalidObject, YamlError
from gitops.frozen import freeze
from gitops.identity import CRD_GROUP, CRD_KIND, Identity
from gitops.index import ObjectKey
from gitops.lru import LRU
from gitops.normalize import normalize
from gitops.planner.draft import Draft
from gitops.secrets import is_sealed, is_secret
from gitops.validate import builtin
from gitops.validate.crds import CustomKind, custom_kind
from gitops.validate.objects import FLUX_GROUPS, Target, check_object
from gitops.yamldocs import ParseLimits, load_documents

MAX_FINDINGS = 200  # listed in one refusal (all are counted)
_OWN_FILES = ParseLimits(max_depth=400, max_nodes=10**9)  # files statewriter wrote


@dataclass(frozen=True)
class Written:
    """An object a bundle writes to a destination: its source document, identity and
    whether it was cluster-scoped when rendered, and the file holding it before (None: new)."""

    source: SourceDocument
    identity: Identity
    stored_path: str | None


def check_written(draft: Draft, bundle: Bundle, destination: str,
                  written: Iterable[Written]) -> None:
    """Validate what `bundle` writes to `destination`: InvalidObject listing every error,
    and the warnings noted for the answer."""
    items = list(written)
    if not items:
        return
    target = _target(draft, bundle, draft.destination(destination))
    errors: list[dict[str, Any]] = []
    for item in items:
        doc = normalize(item.source.doc, item.identity.namespace, not item.identity.namespace,
                        draft.policy.protect_from_prune)
        old = _stored(draft, item) if item.stored_path is not None else None
        for finding in check_object(doc, target, old):
            where = (f"{item.source.file}: document {item.source.index}: {item.identity}: "
                     f"{finding.path or '(the object)'}")
            if finding.warning:
                draft.notes.warn(f"{where}: {finding.reason}")
            else:
                errors.append({"file": item.source.file, "document": item.source.index,
                               "object": str(item.identity), "field": finding.path,
                               "reason": finding.reason})
    if errors:
        shown = "; ".join(f"{e['file']}: document {e['document']}: {e['object']}: "
                          f"{e['field'] or '(the object)'}: {e['reason']}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise InvalidObject(
            f"{len(errors)} problem(s) the API server of destination {destination} would refuse: "
            f"{shown}{more}", destination=destination, findings=errors[:MAX_FINDINGS],
            count=len(errors))


def _target(draft: Draft, bundle: Bundle, destination: Destination) -> Target:
    version = destination.kubernetes_version or builtin.NEWEST
    own = _bundle_crds(bundle)
    created = {d.doc["metadata"]["name"] for d in bundle.documents
               if d.doc["kind"] == "Namespace" and d.doc["apiVersion"] == "v1"}

    def kind_of(group: str, kind: str) -> CustomKind | None:
        # the bundle's own CRDs first: the destination's are read from the tree only if needed
        return _defining(own.get(group, ()), kind, version) or _defining(
            _destination_crds(draft, destination, group), kind, version)

    def namespace_created(name: str) -> bool:
        key = ObjectKey(destination.name, Identity("", "Namespace", "", name))
        return name in created or bool(draft.index.objects.get(key))

    return Target(destination.name, version, FLUX_GROUPS | frozenset(destination.apis),
                  None if destination.namespaces is None else frozenset(destination.namespaces),
                  destination.flux_namespace, kind_of, namespace_created)


def _defining(crds: Iterable[Mapping[str, Any]], kind: str, version: str) -> CustomKind | None:
    for crd in crds:
        found = custom_kind(crd, version)
        if found is not None and found.kind == kind:
            return found
    return None


def _bundle_crds(bundle: Bundle) -> dict[str, list[Mapping[str, Any]]]:
    """The bundle's own CRDs by the group they define."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for source in bundle.documents:
        doc = source.doc
        if doc["kind"] == CRD_KIND and doc["apiVersion"].rpartition("/")[0] == CRD_GROUP:
            spec = doc.get("spec")
            group = spec.get("group") if isinstance(spec, Mapping) else None
            if isinstance(group, str):
                found.setdefault(group, []).append(doc)
    return found


def _destination_crds(draft: Draft, destination: Destination, group: str) -> list[Mapping[str, Any]]:
    """The CRDs of `group` in the destination: each sits in the folder of the group it
    defines, under `_cluster` (layout 3)."""
    identity = Identity(CRD_GROUP, CRD_KIND, "", f"x.{group}")  # only its group folder counts
    folder = (f"{destination.section(layout.DEPENDENCIES)}/{layout.CLUSTER}/"
              f"{layout.group_folder(identity)}")
    prefix = f"{CRD_KIND}.{CRD_GROUP}_"
    found = []
    for name, is_folder in draft.tree.listdir(folder).items():
        if is_folder or not name.startswith(prefix):
            continue
        path = f"{folder}/{name}"
        blob = draft.tree.blob_id(path)
        known = _CRDS.get(blob) if blob else None
        if known is None:
            content = draft.tree.read(path)
            doc = _parse(content) if content is not None else None
            if content is None or doc is None:
                continue
            known = (freeze(doc), len(content))  # shared by every bundle that reads it
            if blob:
                _CRDS.put(blob, known)
        found.append(known[0])
    return found


def _parse(content: bytes) -> Mapping[str, Any] | None:
    try:
        docs = load_documents(content.decode(), _OWN_FILES)
    except (UnicodeDecodeError, YamlError):
        return None
    return docs[0] if len(docs) == 1 else None


# parsed, by blob id; weighed at 8x the file (parsed documents measured at 7.3-7.9x JSON)
_CRDS: LRU[str, tuple[Mapping[str, Any], int]] = caches.lru(
    "crd documents", caches.CRD_DOCUMENTS_BYTES, lambda known: 512 + 8 * known[1])


def _stored(draft: Draft, item: Written) -> Mapping[str, Any] | None:
    """The stored object `item` replaces, as its owners sent it (a Secret the service
    encrypted is opened; one its pipeline encrypted cannot be, and is not compared)."""
    assert item.stored_path is not None
    content = draft.tree.read(item.stored_path)
    if content is None:
        return None
    if is_secret(item.identity.group, item.identity.kind) and is_sealed(content):
        sealer = draft.policy.secrets
        if sealer is None or not sealer.sealed_for_me(content):
            return None
        content = sealer.open(content)
    return _parse(content)
