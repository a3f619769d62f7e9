"""Putting bundles where they belong (docs/reference.md section 5): scheduling a request, placing
the bundles that wait (pending, promise-level, or kept out by a conflict) in a
destination, and taking promise-level bundles out of one."""

from __future__ import annotations

from collections.abc import Iterable

from gitops.destination import Destination
from gitops.errors import Conflict, InvalidBundle
from gitops.index import NO_MATCH, Index, OwnerRecord
from gitops.owner import Owner
from gitops.planner.draft import Draft
from gitops.planner.holdings import holdings
from gitops.planner.ownership import set_record
from gitops.planner.results import NotPlaced
from gitops.planner.stored import store_documents, stored_bundle
from gitops.scheduling import matches, matching, rendezvous


def schedule(index: Index, owner: Owner, selectors: dict[str, str]) -> list[str]:
    """Every matching destination for a promise-level bundle; for a request, the one it is
    placed at already (all its pipelines share it), else the rendezvous choice."""
    candidates = matching(index.destinations.values(), selectors)
    if owner.is_promise_level:
        return [d.name for d in candidates]
    sticky = index.request_destination(owner.promise, owner.namespace, owner.name)
    if sticky:
        return [sticky]
    chosen = rendezvous(candidates, owner)
    return [chosen.name] if chosen else []


def place_waiting_bundles(
    draft: Draft, destination: Destination, candidates: Iterable[Owner] | None = None
) -> None:
    """Place the waiting bundles (of `candidates`, else of every owner, oldest first) that
    belong in `destination`."""
    if candidates is None:
        records = sorted(draft.index.owners.values(), key=lambda r: r.serial)
        candidates = [record.owner for record in records]
    for owner in candidates:
        record = draft.index.owners.get(owner)  # as earlier placements in this loop left it
        if record is None or not _waits_for(draft.index, record, destination):
            continue
        if place(draft, record, destination) and not owner.is_promise_level:
            place_siblings(draft, owner, destination)


def _waits_for(index: Index, record: OwnerRecord, destination: Destination) -> bool:
    owner = record.owner
    if owner.is_promise_level:
        return destination.name not in record.destinations and matches(
            destination.labels, record.selectors)
    if record.destinations:
        return False
    return schedule(index, owner, record.selectors) == [destination.name]


def place_siblings(draft: Draft, owner: Owner, destination: Destination) -> None:
    """The request's pipelines still pending join it where `owner` is placed, whatever
    their own selectors say."""
    for record in draft.index.request_owners(owner.promise, owner.namespace, owner.name):
        if record.owner != owner and not record.destinations:
            place(draft, record, destination)


def place(draft: Draft, record: OwnerRecord, destination: Destination) -> bool:
    """Write a waiting bundle (kept under .statewriter/bundles) to `destination`. Refused by
    a conflict, it stays out, and the record keeps the reason until that conflict goes."""
    owner = record.owner
    mark = draft.notes.mark()
    try:
        bundle = stored_bundle(draft.tree, record, draft.policy.secrets)
        holds, writes = holdings(draft, bundle, destination.name)
    except (Conflict, InvalidBundle) as refused:
        draft.notes.rewind(mark)
        draft.notes.not_placed.append(NotPlaced(owner, destination.name, refused.message))
        if record.pending_reason != refused.message:
            set_record(draft, owner, record.with_(pending_reason=refused.message), {})
        return False
    destinations = tuple(sorted({*record.destinations, destination.name}))
    keep = owner.is_promise_level
    stored = store_documents(draft, owner, bundle if keep else None, record.stored_documents)
    updated = record.with_(
        destinations=destinations,
        objects={**record.objects, destination.name: holds},
        stored_documents=stored.documents,
        dependency_marked=stored.marked,
        pending_reason=promise_reason(draft.index, record, destinations) if keep else None,
        serial=draft.index.serial + 1,
    )
    set_record(draft, owner, updated, writes)
    draft.notes.placed.append(updated)
    return True


def promise_reason(index: Index, record: OwnerRecord, destinations: tuple[str, ...]) -> str | None:
    """Why a promise-level bundle is not in every destination it matches: a conflict it
    still waits on, or no match at all."""
    missing = any(d.name not in destinations
                  for d in matching(index.destinations.values(), record.selectors))
    if missing and record.blocked:
        return record.pending_reason
    return None if destinations else NO_MATCH


def withdraw_promise_bundles(
    draft: Draft, name: str, only_unmatched: bool, labels: dict[str, str]
) -> None:
    """Take promise-level holdings out of destination `name` (only those no longer
    matching `labels`, with `only_unmatched`)."""
    for record in sorted(draft.index.owners.values(), key=lambda r: r.serial):
        if not record.owner.is_promise_level or name not in record.destinations:
            continue
        if only_unmatched and matches(labels, record.selectors):
            continue
        destinations = tuple(d for d in record.destinations if d != name)
        updated = record.with_(
            objects={d: h for d, h in record.objects.items() if d != name},
            destinations=destinations,
            pending_reason=promise_reason(draft.index, record, destinations),
        )
        set_record(draft, record.owner, updated, {})


def refuse_if_requests(index: Index, name: str, what: str) -> None:
    placed = sorted(
        r.owner for r in index.owners.values()
        if not r.owner.is_promise_level and name in r.destinations
    )
    if placed:
        raise Conflict(
            f"cannot {what}: requests are scheduled to destination {name}: "
            + ", ".join(str(o) for o in placed[:20]),
            destination=name, requests=tuple(placed),
        )
