"""A request's state as the index holds it (or a promise's, for its promise-level bundles):
its pipelines, where each is placed or why it waits (and the selectors it waits for), and
each object with its file and whether other owners output it too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gitops import layout
from gitops.identity import Identity
from gitops.index import Index, ObjectKey, OwnerRecord
from gitops.planner.results import PENDING, SCHEDULED


@dataclass(frozen=True)
class HeldObject:
    object: Identity
    destination: str
    placement: str  # DEPENDENCIES or RESOURCES
    path: str | None  # its file (None when the destination or its holders are gone)
    shared: bool  # other owners output the same object


@dataclass(frozen=True)
class PipelineState:
    pipeline: str
    state: str  # SCHEDULED or PENDING
    destinations: tuple[str, ...]
    digest: str
    generation: int | None
    status: dict[str, Any] | None
    reason: str | None  # why it waits
    objects: tuple[HeldObject, ...]


@dataclass(frozen=True)
class RequestState:
    promise: str
    request: str | None  # "namespace/name"; None for a promise's own bundles
    state: str  # SCHEDULED when every pipeline is placed, else PENDING
    destinations: tuple[str, ...]
    commit: str | None  # the branch's commit this was read from
    pipelines: tuple[PipelineState, ...]

    @property
    def objects(self) -> int:
        return sum(len(pipeline.objects) for pipeline in self.pipelines)


@dataclass(frozen=True)
class Waiting:
    """A pipeline placed on no destination yet, and what it waits for: a destination whose
    labels match its selectors (every one of them; none: any destination)."""

    pipeline: str
    selectors: dict[str, str]
    reason: str | None


def waiting_for(records: list[OwnerRecord]) -> tuple[Waiting, ...]:
    """The pipelines of `records` that are placed nowhere, with their selectors."""
    return tuple(Waiting(r.owner.pipeline, dict(r.selectors), r.pending_reason)
                 for r in records if not r.destinations)


def request_state(tip: str | None, index: Index, records: list[OwnerRecord]) -> RequestState:
    """The state of the owners in `records` (one request's pipelines, or one promise's
    promise-level bundles), as of `tip`."""
    first = records[0].owner
    return RequestState(
        promise=first.promise, request=first.request,
        state=SCHEDULED if all(r.destinations for r in records) else PENDING,
        destinations=tuple(sorted({d for r in records for d in r.destinations})),
        commit=tip, pipelines=tuple(_pipeline(index, record) for record in records))


def _pipeline(index: Index, record: OwnerRecord) -> PipelineState:
    objects = []
    for name, holds in sorted(record.objects.items()):
        destination = index.destinations.get(name)
        for held in holds:
            holders = index.objects.get(ObjectKey(name, held.identity))
            path = (layout.object_path(destination, held.section, held.identity, holders)
                    if destination and holders else None)
            objects.append(HeldObject(held.identity, name, held.section, path,
                                      len(holders or ()) > 1))
    return PipelineState(record.owner.pipeline, record.state, tuple(record.destinations),
                         record.digest, record.generation, record.status,
                         record.pending_reason, tuple(objects))
