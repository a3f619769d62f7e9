"""Planning: (index, tip tree, request) -> (changes, commit message, answer). Pure.

Nothing here touches git or the network; the inputs are never mutated. Every operation
works on a `Draft`: a child layer of the index plus an overlay of file changes on the
tree. The object files of a destination are a function of the index: each object lives
at `layout.object_path(placement, identity, owners)`, so every change is "update who
holds what, then move or write the affected files, then rewrite the kustomizations of
the folders touched".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitops import layout, names
from gitops.bundle import PLACEMENT_ANNOTATION, Bundle, Owner, SourceDocument, check_selectors
from gitops.commitmsg import commit_message
from gitops.errors import Conflict, InvalidBundle, NotFound
from gitops.identity import BUILTIN_CLUSTER_SCOPED, Identity, crd_defines, group_of
from gitops.index import (
    NO_MATCH,
    Held,
    Index,
    ObjectKey,
    OwnerRecord,
    destination_to_json,
    generations_to_json,
)
from gitops.layout import DEPENDENCIES, Destination
from gitops.normalize import DEFAULT_PROTECTED, render, wants_dependency
from gitops.placement import initial_placement, matches, matching, rendezvous
from gitops.tree import Overlay, Tree, blob_id
from gitops.yamldocs import ParseLimits, load_documents


@dataclass(frozen=True)
class Policy:
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED


@dataclass
class Plan:
    """What a request turns into. `changes` empty means: nothing to commit."""

    changes: dict[str, bytes | None]
    index: Index
    message: str
    answer: dict[str, Any]
    status: int = 200
    # Run by the writer right after this plan's commit, in the same publish: placing
    # requests that a conflict kept out of a destination this plan freed objects in.
    follow_up: Callable[[Index, Tree], Plan] | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)


@dataclass
class _Outcome:
    """Notes gathered while drafting, for the commit message and the answer."""

    kept: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    placed: list[OwnerRecord] = field(default_factory=list)
    not_placed: list[tuple[Owner, str, str]] = field(default_factory=list)  # owner, where, why


class Draft:
    def __init__(self, index: Index, tree: Tree, policy: Policy) -> None:
        self.base = tree
        self.index = index.child()
        self.changes: dict[str, bytes | None] = {}
        self.tree = Overlay(tree, self.changes)
        self.policy = policy
        self.sections: dict[str, str] = {}  # touched object path -> its section folder
        self.destinations: set[str] = set()
        self.retired: set[str] = set()  # section folders of a destination that is going away
        self.kept_changed: set[str] = set()  # destinations whose kept generations changed
        self.outcome = _Outcome()

    def write(self, path: str, content: bytes, section: str | None = None) -> None:
        self.changes[path] = content
        if section:
            self.sections[path] = section

    def delete(self, path: str, section: str | None = None) -> None:
        self.changes[path] = None
        if section:
            self.sections[path] = section

    def destination(self, name: str) -> Destination:
        destination = self.index.destinations.get(name)
        assert destination is not None, name
        return destination

    # -- finishing ----------------------------------------------------------------------

    def finish(self) -> tuple[dict[str, bytes | None], list[str], list[str], list[str]]:
        """Rewrite the kustomizations of folders whose entries changed; drop no-op changes;
        sort the files."""
        touched: dict[str, set[str]] = {}  # folder -> its entries on changed paths
        for path, section in self.sections.items():
            for folder in layout.folders_between(section, path):
                touched.setdefault(folder, set()).add(path[len(folder) + 1:].partition("/")[0])
        sections = set(self.sections.values())
        for folder in sorted(touched, key=lambda f: (-f.count("/"), f)):
            target = f"{folder}/{layout.KUSTOMIZATION}"
            if folder in self.retired:
                self.changes[target] = None
                continue
            # Listing a folder is O(its entries): a write inside one of ten thousand
            # request folders must not list them all when none came or went.
            if not self._entries_changed(folder, touched[folder]) and not (
                folder in sections and self.tree.blob_id(target) is None
            ):
                continue
            entries = [e for e in self.tree.listdir(folder) if e != layout.KUSTOMIZATION]
            self.changes[target] = (
                layout.kustomization(entries) if entries or folder in sections else None
            )
        added, changed, removed = [], [], []
        for path in sorted(self.changes):
            before = self.base.blob_id(path)
            after = self.changes[path]
            if before == (None if after is None else blob_id(after)):
                del self.changes[path]
            elif before is None:
                added.append(path)
            elif after is None:
                removed.append(path)
            else:
                changed.append(path)
        return self.changes, added, changed, removed

    def _entries_changed(self, folder: str, names: set[str]) -> bool:
        """Whether any of `names` appeared in or went from `folder`."""
        for name in names - {layout.KUSTOMIZATION}:
            path = f"{folder}/{name}"
            before = self.base.blob_id(path) is not None or self.base.is_folder(path)
            after = self.tree.blob_id(path) is not None or self.tree.is_folder(path)
            if before != after:
                return True
        return False


# -- rendering a bundle for one destination ------------------------------------------------


@dataclass(frozen=True)
class _Rendered:
    identity: Identity
    content: bytes
    blob: str
    marked_dependency: bool
    defines_cluster_kind: tuple[str, str] | None
    source: SourceDocument


def _scopes(draft: Draft, bundle: Bundle, destination: str) -> Callable[[SourceDocument], bool]:
    """Whether a document's kind is cluster-scoped: built in, defined so by a CRD of the
    bundle, or by one already in `destination` ("" for none)."""
    bundle_scopes = {defined[0]: defined[1]
                     for d in bundle.documents if (defined := crd_defines(d.doc))}

    def is_cluster_scoped(source: SourceDocument) -> bool:
        group_kind = (group_of(source.doc["apiVersion"]), source.doc["kind"])
        if group_kind in BUILTIN_CLUSTER_SCOPED:
            return True
        if group_kind in bundle_scopes:
            return bundle_scopes[group_kind]
        return draft.index.is_cluster_scoped_in(destination, group_kind)

    return is_cluster_scoped


def _render(draft: Draft, bundle: Bundle, destination: str) -> list[_Rendered]:
    is_cluster_scoped = _scopes(draft, bundle, destination)
    default_namespace = bundle.owner.namespace or "default"
    rendered: dict[Identity, _Rendered] = {}
    for source in bundle.documents:
        doc = source.doc
        rendering = render(source, default_namespace, is_cluster_scoped(source),
                           draft.policy.protect_from_prune)
        identity = rendering.identity
        item = _Rendered(identity, rendering.content, rendering.blob, wants_dependency(doc),
                         rendering.defines_cluster_kind, source)
        twin = rendered.get(identity)
        if twin is not None and twin.content != item.content:
            raise InvalidBundle(
                f"{identity} is defined twice with different content: {twin.source.file} "
                f"document {twin.source.index} and {source.file} document {source.index}",
                file=source.file,
                document=source.index,
                object=str(identity),
            )
        rendered.setdefault(identity, item)
    return list(rendered.values())


def _declared_namespaces(bundle: Bundle) -> frozenset[str]:
    return frozenset(
        d.doc["metadata"]["name"]
        for d in bundle.documents
        if d.doc["kind"] == "Namespace" and d.doc["apiVersion"] == "v1"
    )


def _holdings(
    draft: Draft, bundle: Bundle, destination: str
) -> tuple[tuple[Held, ...], dict[ObjectKey, bytes]]:
    """What `bundle`'s owner will hold in `destination`, and the contents to write.

    Raises Conflict when an object collides with another owner's (CONTRACT section 4)."""
    owner = bundle.owner
    declared = _declared_namespaces(bundle)
    holds: list[Held] = []
    writes: dict[ObjectKey, bytes] = {}
    for item in _render(draft, bundle, destination):
        key = (destination, item.identity)
        holders = draft.index.objects.get(key)
        if holders:
            placement = holders.placement
        else:
            placement = initial_placement(owner, item.identity, item.marked_dependency, declared)
        blob = item.blob
        held = Held(item.identity, placement, blob, bundle.generation, item.defines_cluster_kind)
        if holders:  # every request of a promise holds the same CRDs: keep one Held for all
            first = next(iter(holders.values()))
            held = first if first == held else held
        holds.append(held)
        kept = draft.index.kept.get(key)
        if (not holders or len(holders) - (owner in holders) == 0) and kept is None:
            writes[key] = item.content
            continue
        path = layout.object_path(draft.destination(destination), placement, item.identity,
                                  holders or ())
        current_blob = draft.tree.blob_id(path)
        if current_blob == blob:
            continue
        # Content differs from another owner's: the rare path may look at every holder.
        others = {o: h for o, h in (holders or {}).items() if o != owner}
        writers = {o: h for o, h in others.items() if h.blob == current_blob}
        if others and (placement != DEPENDENCIES or any(o.promise != owner.promise for o in others)):
            reason = (
                "another promise's dependency"
                if placement == DEPENDENCIES
                else "owned by another request or pipeline"
            )
            raise Conflict(
                f"{item.identity} in destination {destination} differs from the stored "
                f"object ({reason}); owners: {', '.join(str(o) for o in sorted(others))}",
                object=str(item.identity),
                destination=destination,
                owners=[_owner_json(o) for o in sorted(others)],
                reason=reason,
            )
        generations = [h.generation for h in writers.values() if h.generation is not None]
        if kept is not None and kept[0] == current_blob:
            generations.append(kept[1])  # its writer left; its generation still counts
        newest = max(generations, default=None)
        if newest is not None and bundle.generation is not None and bundle.generation < newest:
            draft.outcome.kept.append(f"{item.identity} (generation {newest})")
            continue
        writes[key] = item.content
        if writers:
            draft.outcome.replaced.append(
                f"{item.identity} previously written by "
                + ", ".join(str(o) for o in sorted(writers))
            )
    return tuple(holds), writes


def _owner_json(owner: Owner) -> dict[str, Any]:
    return {"promise": owner.promise, "request": owner.request, "pipeline": owner.pipeline}


# -- changing what an owner holds ------------------------------------------------------------


def _set_record(
    draft: Draft, owner: Owner, record: OwnerRecord | None, writes: dict[ObjectKey, bytes]
) -> None:
    """Make `record` (None: nothing) what `owner` holds, moving and writing object files."""
    index = draft.index
    old = index.owners.get(owner)
    keys = sorted({(d, h.identity) for r in (old, record) if r
                   for d, hs in r.objects.items() for h in hs})
    before = {key: _locate(draft, key) for key in keys}
    leaving = {(d, h.identity): h for d, hs in old.objects.items() for h in hs} if old else {}
    if record is None:
        index.remove_owner(owner)
        draft.delete(layout.owner_record_path(owner))
    else:
        index.put_owner(record)
        draft.write(layout.owner_record_path(owner), record.to_json())
    for key in keys:
        draft.destinations.add(key[0])
        after = _locate(draft, key)
        _sync_object(draft, before[key], after, writes.get(key))
        _keep_generation(draft, key, after, leaving.get(key), writes.get(key))


def _keep_generation(
    draft: Draft, key: ObjectKey, location: tuple[str, str] | None, left: Held | None,
    written: bytes | None,
) -> None:
    """Remember the generation of content whose writer no longer holds it (CONTRACT section
    4: a lower generation never overwrites a higher one's dependency)."""
    kept = draft.index.kept
    if location is None or written is not None:
        if kept.get(key) is not None:
            kept.pop(key)
            draft.kept_changed.add(key[0])
        return
    if left is None or left.generation is None:
        return
    current = draft.tree.blob_id(location[0])
    holders = draft.index.objects.get(key)
    if holders is None or left.blob != current or any(h.blob == current for h in holders.values()):
        return  # someone still holding it wrote this content: its generation speaks
    known = kept.get(key)
    if known is None or known[0] != current or known[1] < left.generation:
        kept[key] = (current, left.generation)
        draft.kept_changed.add(key[0])


def _locate(draft: Draft, key: ObjectKey) -> tuple[str, str] | None:
    """The file of an object and its section folder, from who holds it now (None: nobody)."""
    holders = draft.index.objects.get(key)
    if not holders:
        return None
    destination = draft.destination(key[0])
    placement = holders.placement
    return layout.object_path(destination, placement, key[1], holders), destination.section(placement)


def _sync_object(
    draft: Draft, old: tuple[str, str] | None, new: tuple[str, str] | None, content: bytes | None
) -> None:
    if content is None and old and new and old[0] != new[0]:
        content = draft.tree.read(old[0])
    if old and (not new or old[0] != new[0]):
        draft.delete(old[0], old[1])
    if new and content is not None:
        draft.write(new[0], content, new[1])


# -- stored bundles (pending, and promise-level for destinations registered later) ---------


def _store_documents(
    draft: Draft, owner: Owner, bundle: Bundle | None, had: int
) -> tuple[int, tuple[int, ...]]:
    """Keep `bundle`'s documents, normalised as under a destination path (CONTRACT section
    2), for a later placement; returns their count and the positions of those the pipeline
    marked as dependencies (a mark normalising strips, so the record keeps it)."""
    folder = layout.stored_bundle_folder(owner)
    documents = bundle.documents if bundle else ()
    if bundle is not None:
        is_cluster_scoped = _scopes(draft, bundle, "")
        default_namespace = owner.namespace or "default"
        for position, source in enumerate(documents):
            rendering = render(source, default_namespace, is_cluster_scoped(source),
                               draft.policy.protect_from_prune)
            draft.write(f"{folder}/{position:05d}.yaml", rendering.content)
    for position in range(len(documents), had):
        draft.delete(f"{folder}/{position:05d}.yaml")
    marked = tuple(i for i, source in enumerate(documents) if wants_dependency(source.doc))
    return len(documents), marked


# Stored documents passed the configured limits when they were accepted; whatever those
# limits are, they must load again.
_OWN_FILES = ParseLimits(max_depth=400, max_nodes=10**9)


def stored_bundle(tree: Tree, record: OwnerRecord) -> Bundle:
    """Rebuild a bundle kept under .statewriter/bundles."""
    folder = layout.stored_bundle_folder(record.owner)
    documents = []
    for position in range(record.stored_documents):
        name = f"{position:05d}.yaml"
        data = tree.read(f"{folder}/{name}")
        assert data is not None, f"{folder}/{name} missing"
        (doc,) = load_documents(data.decode(), _OWN_FILES)
        if position in record.dependency_marked:
            annotations = doc["metadata"].setdefault("annotations", {})
            annotations[PLACEMENT_ANNOTATION] = "dependency"
        documents.append(SourceDocument(name, 0, doc))
    return Bundle(record.owner, record.selectors, tuple(documents), record.status,
                  record.generation, record.digest)


# -- operations ------------------------------------------------------------------------------


def plan_apply(
    index: Index, tree: Tree, bundle: Bundle, actor: str, policy: Policy = Policy()
) -> Plan:
    """A bundle replaces everything its owner wrote before."""
    owner = bundle.owner
    old = index.owners.get(owner)
    if old and (old.digest, old.generation, old.status) == (
        bundle.digest, bundle.generation, bundle.status
    ):
        return Plan({}, index.child(), "", _answer(index, old), 200 if old.destinations else 202)
    draft = Draft(index, tree, policy)
    destinations = _schedule(draft.index, bundle)
    if not destinations:
        _render(draft, bundle, "")  # an invalid bundle is a 422 now, not when a destination appears
    objects: dict[str, tuple[Held, ...]] = {}
    writes: dict[ObjectKey, bytes] = {}
    for destination in destinations:
        objects[destination], more = _holdings(draft, bundle, destination)
        writes.update(more)
    keep_documents = owner.is_promise_level or not destinations
    record = OwnerRecord(
        owner=owner,
        digest=bundle.digest,
        selectors=bundle.selectors,
        serial=draft.index.serial + 1,
        generation=bundle.generation,
        status=bundle.status,
        destinations=tuple(destinations),
        objects=objects,
        pending_reason=None if destinations else NO_MATCH,
    )
    stored, marked = _store_documents(draft, owner, bundle if keep_documents else None,
                                      old.stored_documents if old else 0)
    record = record.with_(stored_documents=stored, dependency_marked=marked)
    _set_record(draft, owner, record, writes)
    action = f"apply {_who(owner)}"
    where = f" to {', '.join(destinations)}" if destinations else " (pending)"
    trailers = _owner_trailers("apply", owner, sorted(draft.destinations | set(destinations)),
                               actor)
    trailers.append(("Statewriter-Bundle-Digest", bundle.digest))
    plan = _finish(draft, action + where, trailers, _answer(draft.index, record),
                   200 if destinations else 202)
    plan.follow_up = _retry_blocked_after(draft, actor)
    return plan


def plan_delete(
    index: Index,
    tree: Tree,
    promise: str,
    namespace: str,
    name: str,
    pipeline: str | None,
    actor: str,
    policy: Policy = Policy(),
) -> Plan:
    """Remove all a request (or, with empty namespace and name, a promise) owns."""
    records = [
        r for r in index.request_owners(promise, namespace, name)
        if pipeline is None or r.owner.pipeline == pipeline
    ]
    what = f"request {namespace}/{name} of promise {promise}" if name else f"promise {promise}"
    if not records:
        suffix = f" (pipeline {pipeline})" if pipeline else ""
        raise NotFound(f"no bundles stored for {what}{suffix}")
    draft = Draft(index, tree, policy)
    for record in records:
        _store_documents(draft, record.owner, None, record.stored_documents)
        _set_record(draft, record.owner, None, {})
    owner = records[0].owner
    trailers = _owner_trailers("delete", owner, sorted(draft.destinations), actor,
                               pipelines=[r.owner.pipeline for r in records])
    answer = {"deleted": [_owner_json(r.owner) for r in records],
              "destinations": sorted(draft.destinations)}
    plan = _finish(draft, f"delete {_who(owner, pipeline is not None)}", trailers, answer, 200)
    plan.follow_up = _retry_blocked_after(draft, actor)
    return plan


def plan_retry_blocked(
    index: Index, tree: Tree, destinations: tuple[str, ...], actor: str,
    policy: Policy = Policy(),
) -> Plan:
    """Place the requests a conflict kept out of `destinations`, where that conflict is gone.
    A commit of its own (action `destination`), made only when something is placed."""
    blocked = sorted((r for owner, _ in index.blocked.items() if (r := index.owners.get(owner))),
                     key=lambda r: r.serial)
    draft = Draft(index, tree, policy)
    for name in destinations:
        destination = draft.index.destinations.get(name)
        if destination is not None:
            _place_waiting_bundles(draft, destination, blocked)
    if not draft.outcome.placed:
        return Plan({}, index.child(), "", {"placed": []}, 200)
    placed = sorted({d for record in draft.outcome.placed for d in record.destinations})
    trailers = [("Statewriter-Action", "destination")]
    for record in draft.outcome.placed:
        trailers.extend(_placed_trailers(record))
    trailers += [("Statewriter-Destination", d) for d in placed] + [("Statewriter-Actor", actor)]
    answer = {"placed": [_owner_json(r.owner) for r in draft.outcome.placed]}
    return _finish(draft, f"place waiting requests in {', '.join(placed)}", trailers, answer, 200)


def _retry_blocked_after(draft: Draft, actor: str) -> Callable[[Index, Tree], Plan] | None:
    if not draft.destinations or next(draft.index.blocked.items(), None) is None:
        return None
    return functools.partial(plan_retry_blocked, destinations=tuple(sorted(draft.destinations)),
                             actor=actor, policy=draft.policy)


def plan_put_destination(
    index: Index,
    tree: Tree,
    name: str,
    labels: object,
    path: object,
    actor: str,
    policy: Policy = Policy(),
) -> Plan:
    """Register or update a destination, then write what now belongs there."""
    if not names.is_label(name):
        raise InvalidBundle(f"destination name {name!r} is not a DNS-1123 label", field="name")
    labels = check_selectors(labels, "labels")
    path = name if path is None else path
    if not isinstance(path, str) or not layout.is_valid_destination_path(path):
        raise InvalidBundle(
            f"destination path {path!r} must be 1-8 DNS-1123 labels joined by '/'", field="path"
        )
    for other in index.destinations.values():
        if other.name != name and layout.paths_overlap(other.path, path):
            raise Conflict(f"path {path!r} overlaps destination {other.name!r} at {other.path!r}",
                           destination=other.name)
    old = index.destinations.get(name)
    new = Destination(name, dict(sorted(labels.items())), path)
    if old == new:
        return Plan({}, index.child(), "", new.as_dict(), 200)
    draft = Draft(index, tree, policy)
    if old and old.path != path:
        _refuse_if_requests(draft.index, name, "change its path")
        _withdraw_promise_bundles(draft, name, only_unmatched=False, labels=labels)
        _retire_sections(draft, old)
    draft.index.destinations[name] = new
    draft.write(layout.destination_record_path(name), destination_to_json(new))
    draft.destinations.add(name)
    for section in layout.SECTIONS:
        folder = f"{path}/{section}"
        draft.sections.setdefault(f"{folder}/{layout.KUSTOMIZATION}", folder)
    if old and old.path == path:
        _withdraw_promise_bundles(draft, name, only_unmatched=True, labels=labels)
    _place_waiting_bundles(draft, new)
    trailers = [("Statewriter-Action", "destination")]
    for record in draft.outcome.placed:
        trailers.extend(_placed_trailers(record))
    trailers += [("Statewriter-Destination", name), ("Statewriter-Actor", actor)]
    verb = "update" if old else "register"
    return _finish(draft, f"{verb} destination {name}", trailers, new.as_dict(), 200)


def plan_delete_destination(
    index: Index, tree: Tree, name: str, actor: str, policy: Policy = Policy()
) -> Plan:
    destination = index.destinations.get(name)
    if destination is None:
        raise NotFound(f"no destination {name!r}")
    draft = Draft(index, tree, policy)
    _refuse_if_requests(draft.index, name, "delete it")
    _withdraw_promise_bundles(draft, name, only_unmatched=False, labels={})
    draft.index.destinations.pop(name)
    draft.delete(layout.destination_record_path(name))
    _retire_sections(draft, destination)
    trailers = [("Statewriter-Action", "destination"), ("Statewriter-Destination", name),
                ("Statewriter-Actor", actor)]
    return _finish(draft, f"delete destination {name}", trailers, {"deleted": name}, 200)


# -- helpers for the operations ----------------------------------------------------------------


def _retire_sections(draft: Draft, destination: Destination) -> None:
    for section in layout.SECTIONS:
        folder = destination.section(section)
        draft.retired.add(folder)
        draft.delete(f"{folder}/{layout.KUSTOMIZATION}", folder)


def _schedule(index: Index, bundle: Bundle) -> list[str]:
    owner = bundle.owner
    candidates = matching(index.destinations.values(), bundle.selectors)
    if owner.is_promise_level:
        return [d.name for d in candidates]
    sticky = index.request_destination(owner.promise, owner.namespace, owner.name)
    if sticky:
        return [sticky]
    chosen = rendezvous(candidates, owner)
    return [chosen.name] if chosen else []


def _refuse_if_requests(index: Index, name: str, what: str) -> None:
    placed = sorted(
        r.owner for r in index.owners.values()
        if not r.owner.is_promise_level and name in r.destinations
    )
    if placed:
        raise Conflict(
            f"cannot {what}: requests are scheduled to destination {name}: "
            + ", ".join(str(o) for o in placed[:20]),
            destination=name,
            requests=[_owner_json(o) for o in placed],
        )


def _withdraw_promise_bundles(
    draft: Draft, name: str, only_unmatched: bool, labels: dict[str, str]
) -> None:
    """Remove promise-level holdings from a destination (those no longer matching)."""
    for record in sorted(draft.index.owners.values(), key=lambda r: r.serial):
        if not record.owner.is_promise_level or name not in record.destinations:
            continue
        if only_unmatched and matches(labels, record.selectors):
            continue
        objects = {d: h for d, h in record.objects.items() if d != name}
        destinations = tuple(d for d in record.destinations if d != name)
        updated = record.with_(
            objects=objects,
            destinations=destinations,
            pending_reason=None if destinations else NO_MATCH,
        )
        _set_record(draft, record.owner, updated, {})


def _place_waiting_bundles(
    draft: Draft, destination: Destination, candidates: list[OwnerRecord] | None = None
) -> None:
    """Pending bundles and promise-level bundles that now match get written (of
    `candidates`, or of every record)."""
    waiting = (candidates if candidates is not None
               else sorted(draft.index.owners.values(), key=lambda r: r.serial))
    for record in waiting:
        owner = record.owner
        if not matches(destination.labels, record.selectors):
            continue
        if owner.is_promise_level:
            if destination.name in record.destinations:
                continue
        elif record.destinations:
            continue
        bundle = stored_bundle(draft.tree, record)
        if not owner.is_promise_level:
            chosen = _schedule(draft.index, bundle)
            if chosen != [destination.name]:
                continue
        noted = (len(draft.outcome.kept), len(draft.outcome.replaced))
        try:
            holds, writes = _holdings(draft, bundle, destination.name)
        except (Conflict, InvalidBundle) as refused:
            del draft.outcome.kept[noted[0]:], draft.outcome.replaced[noted[1]:]
            draft.outcome.not_placed.append((owner, destination.name, refused.message))
            if record.pending_reason != refused.message and not owner.is_promise_level:
                _set_record(draft, owner, record.with_(pending_reason=refused.message), {})
            continue
        destinations = tuple(sorted({*record.destinations, destination.name}))
        objects = {**record.objects, destination.name: holds}
        keep = owner.is_promise_level
        stored, marked = _store_documents(draft, owner, bundle if keep else None,
                                          record.stored_documents)
        updated = record.with_(
            destinations=destinations,
            objects=objects,
            stored_documents=stored,
            dependency_marked=marked,
            pending_reason=None,
            serial=draft.index.serial + 1,
        )
        _set_record(draft, owner, updated, writes)
        draft.outcome.placed.append(updated)


def _who(owner: Owner, with_pipeline: bool = True) -> str:
    who = f"{owner.promise} {owner.request}" if owner.request else f"{owner.promise} (promise)"
    return f"{who} pipeline {owner.pipeline}" if with_pipeline else who


def _owner_trailers(
    action: str, owner: Owner, destinations: list[str], actor: str,
    pipelines: list[str] | None = None,
) -> list[tuple[str, str]]:
    trailers = [("Statewriter-Action", action), ("Statewriter-Promise", owner.promise)]
    if owner.request:
        trailers.append(("Statewriter-Request", owner.request))
    for pipeline in pipelines or [owner.pipeline]:
        trailers.append(("Statewriter-Pipeline", pipeline))
    trailers.extend(("Statewriter-Destination", d) for d in destinations)
    trailers.append(("Statewriter-Actor", actor))
    return trailers


def _placed_trailers(record: OwnerRecord) -> list[tuple[str, str]]:
    """One group per bundle a destination commit places (history pairs them in order)."""
    owner = record.owner
    trailers = [("Statewriter-Promise", owner.promise)]
    if owner.request:
        trailers.append(("Statewriter-Request", owner.request))
    trailers.append(("Statewriter-Pipeline", owner.pipeline))
    trailers.append(("Statewriter-Bundle-Digest", record.digest))
    return trailers


def _finish(
    draft: Draft, summary: str, trailers: list[tuple[str, str]], answer: dict[str, Any],
    status: int,
) -> Plan:
    for destination in sorted(draft.kept_changed):
        kept = {key[1]: content for key, content in draft.index.kept.items() if key[0] == destination}
        path = layout.generations_record_path(destination)
        if kept:
            draft.write(path, generations_to_json(dict(sorted(kept.items()))))
        else:
            draft.delete(path)
    changes, added, changed, removed = draft.finish()
    notes = []
    if draft.outcome.replaced:
        notes.append("Replaced shared dependencies:")
        notes.extend(f"  {line}" for line in draft.outcome.replaced)
    if draft.outcome.kept:
        notes.append("Kept at a newer promise generation:")
        notes.extend(f"  {line}" for line in draft.outcome.kept)
        answer["keptAtNewerGeneration"] = list(draft.outcome.kept)
    if draft.outcome.replaced:
        answer["replaced"] = list(draft.outcome.replaced)
    if draft.outcome.not_placed:
        # never silent: a promise's dependencies missing from a destination break its requests
        notes.append("Not placed (refused):")
        notes.extend(f"  {_who(owner)} in {where}: {why}"
                     for owner, where, why in draft.outcome.not_placed)
        answer["notPlaced"] = [{**_owner_json(owner), "destination": where, "reason": why}
                               for owner, where, why in draft.outcome.not_placed]
    message = commit_message(summary, added, changed, removed, notes, trailers) if changes else ""
    answer["changed"] = bool(changes)
    answer["files"] = {"added": added, "changed": changed, "removed": removed}
    return Plan(changes, draft.index, message, answer, status)


def _answer(index: Index, record: OwnerRecord) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "changed": False,
        "state": record.state,
        "destinations": list(record.destinations),
        "promise": record.owner.promise,
        "request": record.owner.request,
        "pipeline": record.owner.pipeline,
    }
    if record.owner.request and record.destinations:
        destination = index.destinations.get(record.destinations[0])
        answer["misplaced"] = destination is None or not matches(
            destination.labels, record.selectors
        )
    if record.pending_reason:
        answer["reason"] = record.pending_reason
    return answer


__all__ = [
    "Draft", "Plan", "Policy", "plan_apply", "plan_delete",
    "plan_delete_destination", "plan_put_destination", "plan_retry_blocked", "stored_bundle",
]
