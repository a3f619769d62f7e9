"""POST /v1/promises/{promise}/requests/{ns}/{name}/rollback: a request's output written again
as it stood at an earlier commit of the branch, in one commit.

What a pipeline held then is read from that commit's tree alone: its owner record (what it
held where, its selectors, status, promise generation and own trailers) and the object files
it names there (for a bundle that was waiting, the documents kept under
.statewriter/bundles). Each pipeline becomes the bundle it was, and that bundle goes through
the path a post of it takes (`apply.write_bundle`: rendering, conflicts, validation, Secrets
encrypted for the destination as it is now), so a rollback is refused where the same post
would be (409, 422) and writes exactly what that post would. Pipelines the request has now
and did not have then are removed, as a delete of each would remove it.

Where the request goes is decided as for a post: a request placed now stays at its
destination (requests are sticky: a write never moves one between clusters); one placed
nowhere now is scheduled by its selectors as they were then.

Stored documents are normalised (namespace set, prune annotations on protected kinds, the
service's own annotations gone), and rendering a normalised document again gives the same
bytes, so a rollback when nothing else changed gives back the request's files of that commit
byte for byte. Three things a rollback cannot know and takes as the commit had them:
a Secret the service encrypted is decrypted with its identity (it is encrypted anew for the
destination's recipients now); an object placed under dependencies/ is marked
`statewriter.dev/placement: dependency`, so it goes back there; and a shared dependency whose
file then held another owner's content (kept at a newer promise generation) comes back with
the content the file had, the pipeline's own rendering being nowhere in the tree.
"""

from __future__ import annotations

from typing import Any

from gitops import layout
from gitops.bundle import Bundle, SourceDocument
from gitops.destination import Destination
from gitops.errors import (
    CorruptState,
    EncryptionRequired,
    InvalidBundle,
    InvalidQuery,
    NotFound,
    SopsError,
    YamlError,
)
from gitops.index import Held, Index, OwnerRecord, decode_destination, decode_owner, layout_version
from gitops.index.records import read_record
from gitops.owner import Owner, make_owner
from gitops.planner.apply import applied, waiting, write_bundle
from gitops.planner.delete import remove_bundle
from gitops.planner.draft import Draft, Plan, Policy
from gitops.planner.placing import schedule
from gitops.planner.results import RolledBack
from gitops.planner.retry import retry_after
from gitops.planner.stored import document_path, stored_bundle
from gitops.planner.trailers import rollback_trailers
from gitops.rules import PLACEMENT_ANNOTATION
from gitops.secrets import Sealer
from gitops.secrets.envelope import claims_encryption
from gitops.tree import Tree
from gitops.yamldocs import ParseLimits, load_documents

SHORT = 12  # hex digits of a commit id in messages, as the history shows them
_OWN_FILES = ParseLimits(max_depth=400, max_nodes=10**9)  # files statewriter wrote


def plan_rollback(
    index: Index,
    tree: Tree,
    old: Tree,
    promise: str,
    namespace: str,
    name: str,
    commit: str,
    actor: str,
    policy: Policy = Policy(),
) -> Plan:
    """Write request `namespace/name` of `promise` as it stood in `old`, the tree of `commit`
    (an ancestor of the tip: the caller checks). NotFound when it had no output then;
    InvalidQuery (field `commit`) when that tree cannot be read back; Conflict and
    InvalidBundle as a post of its bundles would raise them."""
    make_owner(promise, namespace, name, None)  # names as a bundle's are checked
    short = commit[:SHORT]
    version = _layout_version(old, short)
    if version != layout.VERSION:
        raise InvalidQuery(
            f"commit {short} holds the store in layout {version}, before it was migrated to "
            f"layout {layout.VERSION}: roll back to a commit made since", field="commit")
    then = records_at(old, promise, namespace, name, short)
    if not then:
        raise NotFound(f"request {namespace}/{name} of promise {promise} had no output at {short}")
    bundles = [bundle_at(old, record, policy.secrets, short) for record in then]
    draft = Draft(index, tree, policy)
    placed_now = index.request_destination(promise, namespace, name)
    wanted = {record.owner for record in then}
    removed = [r for r in index.request_owners(promise, namespace, name) if r.owner not in wanted]
    for record in removed:
        remove_bundle(draft, record)
    for record, bundle in zip(then, bundles, strict=True):
        now = draft.index.owners.get(record.owner)
        if now is not None and not waiting(now) and (now.digest, now.generation, now.status) == (
                record.digest, record.generation, record.status):
            continue  # the same output: what a post of it would leave as it is
        destinations = schedule(draft.index, record.owner, record.selectors)
        if placed_now and not draft.index.request_destination(promise, namespace, name):
            destinations = [placed_now]  # every pipeline it has now was removed: it stays
        write_bundle(draft, bundle, record.digest, destinations)
    records = [r for r in (draft.index.owners.get(record.owner) for record in then) if r]
    result = RolledBack(commit, tuple(applied(draft.index, r) for r in records),
                        tuple(r.owner for r in removed))
    destinations = sorted(draft.destinations | set(result.destinations))
    trailers = rollback_trailers(commit, records, [r.owner for r in removed], destinations, actor)
    plan = draft.finish(f"rollback {promise} {namespace}/{name} to {short}", trailers, result)
    plan.follow_up = retry_after(draft, actor)
    return plan


def records_at(old: Tree, promise: str, namespace: str, name: str, short: str) -> list[OwnerRecord]:
    """The owner records of a request's pipelines in `old`, oldest first."""
    folder = layout.owner_record_path(Owner(promise, namespace, name, "_")).rpartition("/")[0]
    records = []
    for entry, is_folder in sorted(old.listdir(folder).items()):
        if is_folder or not entry.endswith(".json"):
            continue
        path = f"{folder}/{entry}"
        data = old.read(path)
        if data is None:
            continue
        try:
            record = read_record(path, data, decode_owner)
        except CorruptState as error:
            raise _unreadable(short, error.message) from None
        records.append(record)
    return sorted(records, key=lambda r: (r.serial, r.owner))


def bundle_at(old: Tree, record: OwnerRecord, secrets: Sealer | None, short: str) -> Bundle:
    """The bundle `record`'s owner had sent as `old` holds it: the documents kept for it when
    it was waiting, else the files of what it held in its destination."""
    owner = record.owner
    if not record.destinations:
        for position in range(record.stored_documents):
            if old.blob_id(document_path(owner, position)) is None:
                raise _unreadable(short, f"{document_path(owner, position)} is missing")
        return stored_bundle(old, record, secrets)
    name = record.destinations[0]
    destination = _destination_at(old, name, short)
    documents = []
    for held in record.objects.get(name, ()):
        path, content = _held_file(old, destination, owner, held, short)
        doc = _document(content, held, secrets, path, short)
        if held.section == layout.DEPENDENCIES and not claims_encryption(doc):
            # it goes back under dependencies/ even where nobody holds it any more (a
            # pipeline's own SOPS envelope cannot carry the mark: its MAC covers annotations)
            meta = doc["metadata"] = dict(doc["metadata"])
            meta["annotations"] = {**(meta.get("annotations") or {}),
                                   PLACEMENT_ANNOTATION: "dependency"}
        documents.append(SourceDocument(path, 0, doc))
    return Bundle(owner, record.selectors, tuple(documents), record.status, record.generation,
                  record.digest, record.trailers)


def _destination_at(old: Tree, name: str, short: str) -> Destination:
    path = layout.destination_record_path(name)
    data = old.read(path)
    if data is None:
        raise _unreadable(short, f"{path} is missing")
    try:
        return read_record(path, data, decode_destination)
    except CorruptState as error:
        raise _unreadable(short, error.message) from None


def _held_file(old: Tree, destination: Destination, owner: Owner, held: Held,
               short: str) -> tuple[str, bytes]:
    """The file of a held object in `old`: in the owner's folder when it held it alone, else
    where shared objects go (whoever else held it then; the object's own blob wins)."""
    candidates = [layout.object_path(destination, held.section, held.identity, (owner,)),
                  layout.object_path(destination, held.section, held.identity, ())]
    found = [(path, blob) for path in dict.fromkeys(candidates)
             if (blob := old.blob_id(path)) is not None]
    if not found:
        raise _unreadable(short, f"{held.identity} of {owner} is in no file of destination "
                                 f"{destination.name}")
    path = next((path for path, blob in found if blob == held.blob), found[0][0])
    content = old.read(path)
    assert content is not None, path
    return path, content


def _document(content: bytes, held: Held, secrets: Sealer | None, path: str,
              short: str) -> dict[str, Any]:
    """The one document of an object file, decrypted when the service encrypted it."""
    try:
        (doc,) = load_documents(content.decode(), _OWN_FILES)
    except (UnicodeDecodeError, YamlError, ValueError):
        raise _unreadable(short, f"{path} does not hold one readable object") from None
    if held.sealed is None:  # in clear, or SOPS-encrypted by its pipeline: taken as it is
        result: dict[str, Any] = doc
        return result
    if secrets is None:
        raise EncryptionRequired(
            f"{held.identity} was encrypted by the service at {short}, and the service has no "
            "secrets.identityFile to decrypt it", object=str(held.identity))
    try:
        opened: dict[str, Any] = secrets.open_document(doc)
    except SopsError:
        raise InvalidBundle(
            f"{held.identity} at {short} cannot be decrypted with the service's identity (was "
            "secrets.identityFile replaced?)", object=str(held.identity)) from None
    return opened


def _layout_version(old: Tree, short: str) -> int:
    try:
        return layout_version(old)
    except CorruptState as error:
        raise _unreadable(short, error.message) from None


def _unreadable(short: str, why: str) -> InvalidQuery:
    return InvalidQuery(f"the state at commit {short} cannot be read back: {why}", field="commit")
