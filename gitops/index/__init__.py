"""The ownership index: who owns which object where, rebuilt from `.statewriter/` alone.

On disk it is one JSON record per owner and per destination (`gitops.index.records`). In
memory it is inverted for planning: (destination, identity) -> holders. Maps are layered
(`gitops.index.layers`): a plan works on a child layer of the published index and is merged
down only once its commit is published, so readers never see unpublished state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gitops import layout
from gitops.destination import Destination
from gitops.errors import CorruptState
from gitops.index.layers import Counter, HolderMap, Holders, Layered
from gitops.index.records import (
    NO_MATCH,
    Held,
    KeptContent,
    ObjectKey,
    OwnerRecord,
    RequestKey,
    decode_destination,
    decode_generations,
    decode_owner,
    destination_name_of,
    encode_destination,
    encode_generations,
    encode_owner,
    layout_version,
    read_record,
)
from gitops.owner import Owner
from gitops.tree import Tree

__all__ = [
    "NO_MATCH", "Held", "HolderMap", "Holders", "Index", "KeptContent",
    "ObjectKey", "OwnerRecord", "RecordChange", "decode_destination", "decode_owner",
    "encode_destination", "encode_generations", "encode_owner", "layout_version",
]

RecordChange = tuple[str, bytes | None, bytes | None]  # path, content before, content after
Report = Callable[[str, CorruptState], None]


class Index:
    """Everything the planner needs to know, derived from the records in the tree."""

    def __init__(self, parent: Index | None = None) -> None:
        self.parent = parent
        self.destinations: Layered[str, Destination] = Layered(
            parent.destinations if parent else None
        )
        self.owners: Layered[Owner, OwnerRecord] = Layered(parent.owners if parent else None)
        self.objects: HolderMap = HolderMap(parent.objects if parent else None)
        # A request's pipelines, sorted (a tuple: most requests have one, and a frozenset
        # costs four times the memory)
        self.requests: Layered[RequestKey, tuple[Owner, ...]] = Layered(
            parent.requests if parent else None
        )
        # (destination, group, kind) -> CRDs held there that define the kind cluster-scoped
        self.cluster_kinds: Counter[tuple[str, str, str]] = Counter(
            parent.cluster_kinds if parent else None
        )
        # (destination, group, kind) -> objects of that kind held there
        self.kinds: Counter[tuple[str, str, str]] = Counter(parent.kinds if parent else None)
        # Owners a conflict kept out of a destination: tried again when objects go.
        self.blocked: Layered[Owner, bool] = Layered(parent.blocked if parent else None)
        # Content kept after its writer left, so a lower generation cannot overwrite it.
        self.kept: Layered[ObjectKey, KeptContent] = Layered(parent.kept if parent else None)
        self.serial: int = parent.serial if parent else 0

    @classmethod
    def load(cls, tree: Tree, report: Report | None = None) -> Index:
        """The index of the records in `tree`. An unreadable record raises CorruptState, or,
        with `report`, is reported and left out (what `statewriter verify` wants)."""
        index = cls()
        shared: dict[Any, Any] = {}
        for folder in (layout.DESTINATIONS_DIR, layout.GENERATIONS_DIR, layout.OWNERS_DIR):
            for path, data in tree.files(folder):
                try:
                    index._read(path, None, data, shared)
                except CorruptState as error:
                    if report is None:
                        raise
                    report(path, error)
        return index

    def advance(self, changes: Iterable[RecordChange]) -> None:
        """Apply changed state records (removals first, so a record that moved is put back)."""
        changes = list(changes)
        for path, old, _ in changes:
            if old is not None:
                self._read(path, old, None, None)
        for path, _, new in changes:
            if new is not None:
                self._read(path, None, new, None)

    def _read(self, path: str, old: bytes | None, new: bytes | None,
              shared: dict[Any, Any] | None) -> None:
        """Take out what `old` recorded at `path`, put in what `new` records."""
        if path.startswith(layout.DESTINATIONS_DIR + "/"):
            if old is not None:
                self.destinations.pop(read_record(path, old, decode_destination).name)
            if new is not None:
                destination = read_record(path, new, decode_destination)
                self.destinations[destination.name] = destination
        elif path.startswith(layout.OWNERS_DIR + "/") and path.endswith(".json"):
            if old is not None:
                self.remove_owner(read_record(path, old, decode_owner).owner)
            if new is not None:
                self.put_owner(read_record(path, new, lambda raw: decode_owner(raw, shared)))
        elif path.startswith(layout.GENERATIONS_DIR + "/"):
            name = destination_name_of(path)
            for identity in read_record(path, old, decode_generations) if old is not None else ():
                self.kept.pop(ObjectKey(name, identity))
            kept = read_record(path, new, decode_generations) if new is not None else {}
            for identity, content in kept.items():
                self.kept[ObjectKey(name, identity)] = content

    def child(self) -> Index:
        return Index(self)

    def merge_down(self) -> None:
        assert self.parent is not None
        for layer in (self.destinations, self.owners, self.objects, self.requests,
                      self.cluster_kinds, self.kinds, self.kept, self.blocked):
            layer.merge_down()
        self.parent.serial = max(self.parent.serial, self.serial)

    # -- queries ----------------------------------------------------------------------

    def request_destination(self, promise: str, namespace: str, name: str) -> str | None:
        """The destination a request is placed at (all its pipelines share it)."""
        for owner in self.requests.get((promise, namespace, name)) or ():
            record = self.owners.get(owner)
            if record and record.destinations:
                return record.destinations[0]
        return None

    def request_owners(self, promise: str, namespace: str = "", name: str = "") -> list[OwnerRecord]:
        """The records of a request's pipelines (or of a promise's promise-level bundles)."""
        owners = self.requests.get((promise, namespace, name)) or ()
        return [r for r in (self.owners.get(o) for o in owners) if r is not None]

    def is_cluster_scoped_in(self, destination: str, group_kind: tuple[str, str]) -> bool:
        return bool(self.cluster_kinds.get((destination, *group_kind)))

    def holds_kind(self, destination: str, group_kind: tuple[str, str]) -> bool:
        """Whether any object of this kind is held in `destination`."""
        return bool(self.kinds.get((destination, *group_kind)))

    # -- updates ------------------------------------------------------------------------

    def put_owner(self, record: OwnerRecord) -> None:
        self.remove_owner(record.owner)
        owner = record.owner
        self.owners[owner] = record
        if record.blocked:
            self.blocked[owner] = True
        self.serial = max(self.serial, record.serial)
        key = (owner.promise, owner.namespace, owner.name)
        self.requests[key] = tuple(sorted({*(self.requests.get(key) or ()), owner}))
        for destination, holds in record.objects.items():
            for held in holds:
                holders = self.objects.for_update(ObjectKey(destination, held.identity))
                if not holders:
                    self.kinds.add((destination, *held.identity.group_kind), 1)
                holders.set(owner, held)
                if held.defines_cluster_kind:
                    self.cluster_kinds.add((destination, *held.defines_cluster_kind), 1)

    def remove_owner(self, owner: Owner) -> None:
        record = self.owners.get(owner)
        if record is None:
            return
        self.owners.pop(owner)
        if record.blocked:
            self.blocked.pop(owner)
        key = (owner.promise, owner.namespace, owner.name)
        rest = tuple(o for o in self.requests.get(key) or () if o != owner)
        if rest:
            self.requests[key] = rest
        else:
            self.requests.pop(key)
        for destination, holds in record.objects.items():
            for held in holds:
                object_key = ObjectKey(destination, held.identity)
                holders = self.objects.for_update(object_key)
                holders.drop(owner)
                if not holders:
                    self.objects.pop(object_key)
                    self.kinds.add((destination, *held.identity.group_kind), -1)
                if held.defines_cluster_kind:
                    self.cluster_kinds.add((destination, *held.defines_cluster_kind), -1)
