"""What the web pages show of the state: each destination with its requests, dependencies
and promise-level bundles, the requests waiting for a destination, and a dependency's owners.
Built from the index (no git), once per tip (`Summaries`)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gitops import layout
from gitops.destination import Destination
from gitops.errors import StoreUnavailable
from gitops.identity import CRD_KIND, Identity
from gitops.index import Holders, Index, ObjectKey
from gitops.owner import Owner

OWNERS_SHOWN = 6  # owners listed per dependency; the rest are counted
MAX_DEPENDENCIES = 2000  # dependencies listed per destination


@dataclass(frozen=True)
class RequestRow:
    promise: str
    namespace: str
    name: str
    pipelines: tuple[str, ...]
    state: str
    destinations: tuple[str, ...]
    reason: str | None
    objects: int
    waits_for: dict[str, str]  # the selectors of its first pipeline placed nowhere


@dataclass
class DestinationView:
    destination: Destination
    requests: list[RequestRow] = field(default_factory=list)
    dependencies: list[Identity] = field(default_factory=list)
    resources: int = 0
    promise_level: list[Owner] = field(default_factory=list)


@dataclass
class Summary:
    destinations: dict[str, DestinationView]
    pending: list[RequestRow]
    requests: int
    promises: dict[str, int]  # every promise with something stored: its requests, by name


@dataclass(frozen=True)
class DependencyRow:
    identity: Identity
    path: str
    owners: tuple[Owner, ...]  # the first few: promise-level bundles first
    count: int  # all its owners
    requests: int  # how many of them are requests


T = TypeVar("T")


def consistent(read: Callable[[], T]) -> T:
    """`read()` over the live index, again when the lane changed a map under it (the index
    is published in place; a page is built from it while writes go on)."""
    for attempt in itertools.count():
        try:
            return read()
        except RuntimeError:  # "changed size during iteration"
            if attempt >= 4:
                raise StoreUnavailable("the state kept changing while this page was built; "
                                       "reload it") from None
    raise AssertionError("unreachable")


class Summaries:
    """The summary of the last tip asked for: built once per change of the branch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str | None, int] | None = None
        self._summary: Summary | None = None

    def get(self, tip: str | None, index: Index) -> Summary:
        with self._lock:
            key = (tip, id(index))
            if self._summary is None or self._key != key:
                self._summary = consistent(lambda: summarise(index))
                self._key = key
            return self._summary


def summarise(index: Index) -> Summary:
    views = {name: DestinationView(d) for name, d in index.destinations.items()}
    pending: list[RequestRow] = []
    requests = 0
    promises: dict[str, int] = {}
    for (promise, namespace, name), owners in index.requests.items():
        records = [r for r in (index.owners.get(o) for o in owners) if r is not None]
        if not records:
            continue
        promises[promise] = promises.get(promise, 0) + (1 if name else 0)
        if not name:  # promise-level bundles: owners of what they place
            for record in records:
                for destination in record.destinations:
                    if destination in views:
                        views[destination].promise_level.append(record.owner)
            continue
        requests += 1
        placed = tuple(sorted({d for r in records for d in r.destinations}))
        row = RequestRow(
            promise, namespace, name, tuple(r.owner.pipeline for r in records),
            "Scheduled" if all(r.destinations for r in records) else "Pending",
            placed, next((r.pending_reason for r in records if r.pending_reason), None),
            sum(len(holds) for r in records for holds in r.objects.values()),
            next((dict(r.selectors) for r in records if not r.destinations), {}),
        )
        if not placed:
            pending.append(row)
        for destination in placed:
            if destination in views:
                views[destination].requests.append(row)
    for key, holders in index.objects.items():
        view = views.get(key.destination)
        if view is None:
            continue
        if holders.section == layout.DEPENDENCIES:
            view.dependencies.append(key.identity)
        else:
            view.resources += 1
    def order(row: RequestRow) -> tuple[str, str, str]:
        return row.promise, row.namespace, row.name

    for view in views.values():
        view.requests.sort(key=order)
        view.dependencies.sort(key=_dependency_order)
        view.promise_level.sort()
    pending.sort(key=order)
    return Summary(dict(sorted(views.items())), pending, requests, dict(sorted(promises.items())))


def _dependency_order(identity: Identity) -> tuple[int, str, str, str, str]:
    # CRDs first, then namespaces: the order Flux applies them in, and what is looked for
    rank = {CRD_KIND: 0, "Namespace": 1}.get(identity.kind, 2)
    return rank, identity.kind, identity.namespace, identity.name, identity.group


def dependency_rows(index: Index, view: DestinationView) -> list[DependencyRow]:
    rows = []
    for identity in view.dependencies[:MAX_DEPENDENCIES]:
        holders = index.objects.get(ObjectKey(view.destination.name, identity))
        if holders is None:
            continue
        rows.append(_dependency_row(view.destination, identity, holders))
    return rows


def _dependency_row(destination: Destination, identity: Identity,
                    holders: Holders) -> DependencyRow:
    promise_level: list[Owner] = []
    some_requests: list[Owner] = []
    requests = 0
    for owner in holders:
        if owner.is_promise_level:
            promise_level.append(owner)
        else:
            requests += 1
            if len(some_requests) < OWNERS_SHOWN:
                some_requests.append(owner)
    shown = (sorted(promise_level) + sorted(some_requests))[:OWNERS_SHOWN]
    path = layout.object_path(destination, layout.DEPENDENCIES, identity, holders)
    return DependencyRow(identity, path, tuple(shown), len(holders), requests)
