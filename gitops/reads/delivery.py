"""Requests' delivery (docs/reference.md section 12) as readers see it: for each destination a request
is placed on, whether Flux applied its latest commit there, from what the delivery book holds
of its Kustomizations; and the commit each owner record was last written in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from gitops import caches, layout
from gitops.delivery.ledger import Reports
from gitops.delivery.status import APPLIED, FAILED, PENDING, UNKNOWN, Commit, Delivery, delivery
from gitops.index import Held, Index, OwnerRecord
from gitops.lru import LRU
from gitops.store.base import Reads
from gitops.tree import Tree


class Book(Protocol):
    """What the delivery book tells readers (gitops.delivery.book.DeliveryBook)."""

    def reports(self, destination: str) -> Reports: ...

    def position(self, sha: str) -> int | None: ...


@dataclass(frozen=True)
class RequestDelivery:
    """A request's delivery everywhere it is placed: `state` sums them up (Failed if one
    failed, else Pending if one is pending or the request is not placed, else Unknown if
    events are not configured, else Applied)."""

    state: str
    destinations: tuple[Delivery, ...]


def summary(placed: bool, deliveries: Sequence[Delivery]) -> str:
    states = {d.state for d in deliveries}
    if FAILED in states:
        return FAILED
    if PENDING in states or not placed or not deliveries:
        return PENDING
    return UNKNOWN if UNKNOWN in states else APPLIED


_COMMITS: LRU[tuple[str, str], Commit] = caches.lru("record commits", caches.RECORD_COMMITS)


def record_commits(reads: Reads, tree: Tree, tip: str | None,
                   records: Iterable[OwnerRecord]) -> dict[str, Commit]:
    """The commit each record was last written in, by record path (one walk of the log for
    all that are not remembered)."""
    found: dict[str, Commit] = {}
    missing: dict[str, str] = {}
    for record in records:
        path = layout.owner_record_path(record.owner)
        blob = tree.blob_id(path)
        if blob is None or tip is None:
            continue
        known = _COMMITS.get((path, blob))
        if known is not None:
            found[path] = known
        else:
            missing[path] = blob
    if missing and tip is not None:
        for path, (sha, when) in reads.last_changes(tip, sorted(missing)).items():
            commit = Commit(sha, datetime.fromtimestamp(when, UTC))
            _COMMITS.put((path, missing[path]), commit)
            found[path] = commit
    return found


def request_delivery(index: Index, records: Sequence[OwnerRecord], commits: dict[str, Commit],
                     book: Book | None, now: datetime | None = None) -> RequestDelivery:
    """One request's delivery (its pipelines' `records`) on each destination it is placed on."""
    now = now or datetime.now(UTC)
    held: dict[str, list[Held]] = {}
    latest: dict[str, Commit] = {}
    for record in records:
        commit = commits.get(layout.owner_record_path(record.owner))
        for name in record.destinations:
            held.setdefault(name, []).extend(record.objects.get(name, ()))
            if commit is not None and (name not in latest or _newer(book, commit, latest[name])):
                latest[name] = commit
    found = []
    for name in sorted(held):
        destination = index.destinations.get(name)
        if destination is None:
            continue
        reports = book.reports(name) if book is not None else None
        position = book.position if book is not None else (lambda _: None)
        found.append(delivery(destination, held[name], reports, latest.get(name), position, now))
    placed = bool(records) and all(record.destinations for record in records)
    return RequestDelivery(summary(placed, found), tuple(found))


def _newer(book: Book | None, commit: Commit, than: Commit) -> bool:
    if book is not None:
        a, b = book.position(commit.sha), book.position(than.sha)
        if a is not None and b is not None:
            return a > b
    return commit.at > than.at
