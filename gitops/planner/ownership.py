"""Changing what an owner holds: the index first, then the object files follow from it.

An object's file is `layout.object_path(section, identity, owners)`, so a change in who
holds an object may move it (to `_shared/` when a second owner takes it, back when one
lets go) or delete it (when the last one does).
"""

from __future__ import annotations

from typing import NamedTuple

from gitops import layout
from gitops.index import Held, KeptContent, ObjectKey, OwnerRecord, encode_owner
from gitops.owner import Owner
from gitops.planner.draft import Draft


class Location(NamedTuple):
    path: str
    section: str  # the section folder the file is listed under


def set_record(
    draft: Draft, owner: Owner, record: OwnerRecord | None, writes: dict[ObjectKey, bytes]
) -> None:
    """Make `record` (None: nothing) what `owner` holds, moving and writing object files."""
    index = draft.index
    old = index.owners.get(owner)
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
    """Remember the generation of content whose writer no longer holds it (CONTRACT section
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
