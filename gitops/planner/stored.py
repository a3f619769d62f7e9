"""Bundles kept under `.statewriter/bundles/`: pending ones, and promise-level ones for the
destinations registered later. Kept normalised, exactly as under a destination path
(docs/reference.md section 2), Secrets encrypted for the service's own identity when it has one."""

from __future__ import annotations

from typing import Any, NamedTuple

from gitops import layout
from gitops.bundle import Bundle, SourceDocument
from gitops.index import OwnerRecord
from gitops.normalize import render, wants_dependency
from gitops.owner import DEFAULT_NAMESPACE, Owner
from gitops.planner.draft import Draft
from gitops.planner.holdings import scopes
from gitops.planner.sealing import for_state
from gitops.rules import PLACEMENT_ANNOTATION
from gitops.secrets import Sealer, is_sealed
from gitops.secrets.sops import recipients_of
from gitops.tree import Tree
from gitops.yamldocs import ParseLimits, load_documents

# Stored documents passed the configured limits when they were accepted; whatever those
# limits are, they must load again.
_OWN_FILES = ParseLimits(max_depth=400, max_nodes=10**9)


class Stored(NamedTuple):
    documents: int  # how many are kept
    marked: tuple[int, ...]  # positions of those the pipeline marked as dependencies


def document_path(owner: Owner, position: int) -> str:
    return f"{layout.stored_bundle_folder(owner)}/{position:05d}.yaml"


def store_documents(draft: Draft, owner: Owner, bundle: Bundle | None, had: int) -> Stored:
    """Keep `bundle`'s documents (None: none) in place of the `had` kept before. The mark
    `statewriter.dev/placement: dependency` that normalising strips is returned, for the
    owner record to keep."""
    documents = bundle.documents if bundle else ()
    if bundle is not None:
        is_cluster_scoped = scopes(draft, bundle, "")
        default_namespace = owner.namespace or DEFAULT_NAMESPACE
        for position, source in enumerate(documents):
            rendering = render(source, default_namespace, is_cluster_scoped(source),
                               draft.policy.protect_from_prune)
            path = document_path(owner, position)
            draft.write(path, for_state(draft, path, rendering))
    for position in range(len(documents), had):
        draft.delete(document_path(owner, position))
    marked = tuple(i for i, source in enumerate(documents) if wants_dependency(source.doc))
    return Stored(len(documents), marked)


def stored_bundle(tree: Tree, record: OwnerRecord, secrets: Sealer | None = None) -> Bundle:
    """Rebuild a bundle kept under .statewriter/bundles (its Secrets decrypted with
    `secrets`, the service's identity)."""
    documents = []
    for position in range(record.stored_documents):
        path = document_path(record.owner, position)
        data = tree.read(path)
        assert data is not None, f"{path} missing"
        (doc,) = load_documents(data.decode(), _OWN_FILES)
        if secrets is not None and is_sealed(data) and _sealed_by_service(doc, secrets):
            doc = secrets.open_document(doc)
        if position in record.dependency_marked:
            annotations = doc["metadata"].setdefault("annotations", {})
            annotations[PLACEMENT_ANNOTATION] = "dependency"
        documents.append(SourceDocument(path.rpartition("/")[2], 0, doc))
    return Bundle(record.owner, record.selectors, tuple(documents), record.status,
                  record.generation, record.digest, record.trailers)


def _sealed_by_service(doc: dict[str, Any], secrets: Sealer) -> bool:
    """Whether a kept SOPS document is one the service encrypted (and decrypts), not one a
    pipeline sent encrypted (kept and placed as sent). Without an identity nothing is
    decrypted: a document sealed by an earlier identity is placed still encrypted for it."""
    return secrets.recipient in recipients_of(doc)
