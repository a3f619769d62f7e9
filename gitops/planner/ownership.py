"""Changing what an owner holds: the index first, then the object files follow from it.

An object's file is `layout.object_path(section, identity, owners)`, so a change in who
holds an object may move it (to `_shared/` when a second owner takes it, back when one
lets go) or delete it (when the last one does).
"""

from __future__ import annotations

from typing import NamedTuple

from gitops import layout
from gitops.errors import Conflict, YamlError
from gitops.identity import CRD_GROUP, CRD_KIND, crd_defines
from gitops.index import Held, KeptContent, ObjectKey, OwnerRecord, encode_owner
from gitops.owner import Owner
from gitops.planner.draft import Draft
from gitops.yamldocs import ParseLimits, load_documents

_OWN_FILES = ParseLimits(max_depth=400, max_nodes=10**9)  # files statewriter wrote


class Location(NamedTuple):
    path: str
    section: str  # the section folder the file is listed under


def set_record(
    draft: Draft, owner: Owner, record: OwnerRecord | None, writes: dict[ObjectKey, bytes]
) -> None:
    """Make `record` (None: nothing) what `owner` holds, moving and writing object files.
    Conflict, before anything changes, when that takes a CRD out of a destination while
    objects of its kind stay there (docs/reference.md section 4)."""
    index = draft.index
    old = index.owners.get(owner)
    _guard_crds(draft, owner, old, record)
    keys = sorted({ObjectKey(d, h.identity) for r in (old, record) if r
                   for d, hs in r.objects.items() for h in hs})
    before = {key: locate(draft, key) for key in keys}
    leaving = {ObjectKey(d, h.identity): h for d, hs in old.objects.items() for h in hs} if old else {}
    if record is None:
        index.remove_owner(owner)
        draft.delete(layout.owner_record_path(owner))
    else:
        index.put_owner(record)
        draft.write(layout.owner_record_path(owner), encode_owner(record))
    for key in keys:
        draft.destinations.add(key.destination)
        after = locate(draft, key)
        _sync_object(draft, before[key], after, writes.get(key))
        _keep_generation(draft, key, after, leaving.get(key), writes.get(key))


def locate(draft: Draft, key: ObjectKey) -> Location | None:
    """The file of an object and its section folder, from who holds it now (None: nobody)."""
    holders = draft.index.objects.get(key)
    if not holders:
        return None
    destination = draft.destination(key.destination)
    section = holders.section
    return Location(layout.object_path(destination, section, key.identity, holders),
                    destination.section(section))


def _sync_object(
    draft: Draft, old: Location | None, new: Location | None, content: bytes | None
) -> None:
    if content is None and old and new and old.path != new.path:
        content = draft.tree.read(old.path)
    if old and (not new or old.path != new.path):
        draft.delete(old.path, old.section)
    if new and content is not None:
        draft.write(new.path, content, new.section)


def _keep_generation(
    draft: Draft, key: ObjectKey, location: Location | None, left: Held | None,
    written: bytes | None,
) -> None:
    """Remember the generation of content whose writer no longer holds it (docs/reference.md section
    4: a lower generation never overwrites a higher one's dependency)."""
    kept = draft.index.kept
    if location is None or written is not None:
        if kept.get(key) is not None:
            kept.pop(key)
            draft.kept_changed.add(key.destination)
        return
    if left is None or left.generation is None:
        return
    current = draft.tree.blob_id(location.path)
    holders = draft.index.objects.get(key)
    if (holders is None or current is None or left.blob != current
            or any(h.blob == current for h in holders.values())):
        return  # someone still holding it wrote this content: its generation speaks
    known = kept.get(key)
    if known is None or known.blob != current or known.generation < left.generation:
        kept[key] = KeptContent(current, left.generation)
        draft.kept_changed.add(key.destination)


def _guard_crds(draft: Draft, owner: Owner, old: OwnerRecord | None,
                new: OwnerRecord | None) -> None:
    """Refuse a change that leaves a destination without a CRD whose kind still has objects
    there: a worker built from the repository would not serve them, and Flux would fail on
    them (and deleting a CRD deletes every object of its kind)."""
    if old is None:
        return
    kept = {ObjectKey(d, h.identity) for d, hs in (new.objects.items() if new else ()) for h in hs}
    for destination, holds in old.objects.items():
        for held in holds:
            key = ObjectKey(destination, held.identity)
            if held.identity.group_kind != (CRD_GROUP, CRD_KIND) or key in kept:
                continue
            holders = draft.index.objects.get(key)
            if holders is None or set(holders) != {owner}:
                continue  # another owner keeps it
            defined = _defined_kind(draft, key)
            if defined is not None:
                _refuse_if_still_used(draft, owner, old, new, destination, key, defined)


def _defined_kind(draft: Draft, key: ObjectKey) -> tuple[str, str] | None:
    location = locate(draft, key)
    content = draft.tree.read(location.path) if location else None
    if content is None:
        return None
    try:
        docs = load_documents(content.decode(), _OWN_FILES)
    except (UnicodeDecodeError, YamlError):
        return None
    defined = crd_defines(docs[0]) if len(docs) == 1 else None
    return defined[0] if defined else None


def _refuse_if_still_used(draft: Draft, owner: Owner, old: OwnerRecord, new: OwnerRecord | None,
                          destination: str, crd: ObjectKey, defined: tuple[str, str]) -> None:
    def own(record: OwnerRecord | None) -> int:
        holds = record.objects.get(destination, ()) if record else ()
        return sum(1 for h in holds if h.identity.group_kind == defined)

    remaining = (draft.index.kinds.get((destination, *defined)) or 0) - own(old) + own(new)
    if remaining <= 0:
        return
    users = [(key.identity, holders) for key, holders in draft.index.objects.items()
             if key.destination == destination and key.identity.group_kind == defined]
    named = [f"{identity} ({', '.join(str(o) for o in sorted(holders))})"
             for identity, holders in sorted(users, key=lambda u: u[0])[:10]]
    group, kind = defined
    raise Conflict(
        f"{crd.identity} would leave destination {destination} while {remaining} object(s) of "
        f"its kind {kind}.{group} stay there: {'; '.join(named)}. Remove those first (or keep "
        "the CRD in this bundle)",
        object=str(crd.identity), destination=destination,
        owners=tuple(sorted({o for _, holders in users for o in holders})),
        reason="a CRD still in use")
