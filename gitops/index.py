"""The ownership index: who owns which object where, rebuilt from `.statewriter/` alone.

On disk it is one JSON record per owner and per destination (so a write touches only its
own records). In memory it is inverted for planning: (destination, identity) -> holders.
Maps are layered: a plan works on a child layer of the published index and is merged down
only once its commit is published, so readers never see unpublished state.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from gitops import layout
from gitops.bundle import Owner
from gitops.identity import Identity
from gitops.layout import Destination
from gitops.tree import Tree

K = TypeVar("K")
V = TypeVar("V")
_GONE: Any = object()


class Layered(Generic[K, V]):
    """A dict seen through zero or more parent layers; writes stay in the top layer."""

    def __init__(self, parent: Layered[K, V] | None = None) -> None:
        self._parent = parent
        self._own: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        layer: Layered[K, V] | None = self
        while layer is not None:
            if key in layer._own:
                value = layer._own[key]
                return None if value is _GONE else value
            layer = layer._parent
        return None

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def __setitem__(self, key: K, value: V) -> None:
        self._own[key] = value

    def pop(self, key: K) -> None:
        if self._parent is None:
            self._own.pop(key, None)
        else:
            self._own[key] = _GONE

    def items(self) -> Iterator[tuple[K, V]]:
        seen: set[K] = set()
        layer: Layered[K, V] | None = self
        while layer is not None:
            for key, value in list(layer._own.items()):
                if key not in seen:
                    seen.add(key)
                    if value is not _GONE:
                        yield key, value
            layer = layer._parent

    def values(self) -> Iterator[V]:
        return (value for _, value in self.items())

    def child(self) -> Layered[K, V]:
        return Layered(self)

    def merge_down(self) -> None:
        """Push this layer's writes into its parent."""
        assert self._parent is not None
        for key, value in self._own.items():
            if value is _GONE:
                self._parent.pop(key)
            else:
                self._parent[key] = value
        self._own = {}


@dataclass(frozen=True, slots=True)
class Held:
    """One object as one owner outputs it in one destination."""

    identity: Identity
    placement: str
    blob: str  # git blob id of this owner's rendering of the object
    generation: int | None = None
    defines_cluster_kind: tuple[str, str] | None = None  # a CRD defining a cluster-scoped kind


_DROPPED = Held(Identity("", "", "", ""), "", "")  # a holder removed in a child layer


class Holders(Mapping[Owner, Held]):
    """The owners holding one object in one destination, layered like the index itself.

    A plan's layer records only its own changes, so taking or dropping one holder costs
    O(1) however many requests share the object (a CRD every request of a promise outputs).
    """

    __slots__ = ("_own", "_parent", "_placement", "_size")

    def __init__(self, parent: Holders | None = None, own: dict[Owner, Held] | None = None) -> None:
        self._parent = parent
        self._own: dict[Owner, Held] = own if own is not None else {}
        self._size = len(parent) if parent is not None else len(self._own)
        # every holder of an object has its placement: kept here, not looked up
        self._placement = parent.placement if parent is not None else next(
            (held.placement for held in self._own.values()), "")

    def __getitem__(self, owner: Owner) -> Held:
        layer: Holders | None = self
        while layer is not None:
            if owner in layer._own:
                held = layer._own[owner]
                if held is _DROPPED:
                    break
                return held
            layer = layer._parent
        raise KeyError(owner)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Owner]:
        seen: set[Owner] = set()
        layer: Holders | None = self
        while layer is not None:
            for owner, held in layer._own.items():
                if owner not in seen:
                    seen.add(owner)
                    if held is not _DROPPED:
                        yield owner
            layer = layer._parent

    @property
    def placement(self) -> str:
        return self._placement

    def set(self, owner: Owner, held: Held) -> None:
        if owner not in self:
            if not self._size:
                self._placement = held.placement
            self._size += 1
        self._own[owner] = held

    def drop(self, owner: Owner) -> None:
        if owner not in self:
            return
        self._size -= 1
        if self._parent is None:
            del self._own[owner]
        else:
            self._own[owner] = _DROPPED

    def child(self) -> Holders:
        return Holders(self)

    def merge_into(self, parent: Holders) -> None:
        for owner, held in self._own.items():
            if held is _DROPPED:
                parent.drop(owner)
            else:
                parent.set(owner, held)

    def flattened(self) -> Holders:
        return Holders(None, dict(self.items()))  # a new dict: Holders owns the `own` it gets


class HolderMap(Layered[tuple[str, Identity], Holders]):
    """(destination, identity) -> Holders; a layer's Holders are child layers of its parent's."""

    def owned(self, key: tuple[str, Identity]) -> Holders | None:
        value = self._own.get(key)
        return None if value is _GONE else value

    def for_update(self, key: tuple[str, Identity]) -> Holders:
        """The holders of `key`, writable in this layer without touching the layers below."""
        holders = self.owned(key)
        if holders is None:
            visible = self.get(key)
            holders = Holders() if visible is None else visible.child()
            self[key] = holders
        return holders

    def child(self) -> HolderMap:
        return HolderMap(self)

    def merge_down(self) -> None:
        parent = self._parent
        assert isinstance(parent, HolderMap)
        for key, holders in self._own.items():
            if holders is _GONE:
                parent.pop(key)
                continue
            below = parent.owned(key)
            if holders._parent is not None and holders._parent is below:
                holders.merge_into(below)
            elif parent._parent is None and holders._parent is not None:
                parent[key] = holders.flattened()
            else:
                parent[key] = holders
        self._own = {}


NO_MATCH = "no destination matches the selectors"


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    owner: Owner
    digest: str
    selectors: dict[str, str]
    serial: int
    generation: int | None = None
    status: dict[str, Any] | None = None
    destinations: tuple[str, ...] = ()
    objects: dict[str, tuple[Held, ...]] = field(default_factory=dict)
    stored_documents: int = 0  # documents kept under .statewriter/bundles for later placement
    dependency_marked: tuple[int, ...] = ()  # stored documents marked statewriter.dev/placement
    pending_reason: str | None = None

    @property
    def state(self) -> str:
        return "Scheduled" if self.destinations else "Pending"

    @property
    def blocked(self) -> bool:
        """A request that a destination matches but a conflict kept out of it."""
        return (not self.owner.is_promise_level and not self.destinations
                and self.pending_reason not in (None, NO_MATCH))

    def to_json(self) -> bytes:
        record: dict[str, Any] = {
            "promise": self.owner.promise,
            "request": self.owner.request,
            "pipeline": self.owner.pipeline,
            "digest": self.digest,
            "selectors": self.selectors,
            "serial": self.serial,
            "generation": self.generation,
            "status": self.status,
            "destinations": list(self.destinations),
            "storedDocuments": self.stored_documents,
            **({"dependencyMarked": list(self.dependency_marked)} if self.dependency_marked else {}),
            "pendingReason": self.pending_reason,
            "objects": {
                dest: [
                    {
                        "id": held.identity.key(),
                        "placement": held.placement,
                        "blob": held.blob,
                        **(
                            {"definesClusterKind": "/".join(held.defines_cluster_kind)}
                            if held.defines_cluster_kind
                            else {}
                        ),
                    }
                    for held in holds
                ]
                for dest, holds in sorted(self.objects.items())
            },
        }
        return _lines_json(record).encode()

    @classmethod
    def from_json(cls, data: bytes, shared: dict[Any, Any] | None = None) -> OwnerRecord:
        """A record from its JSON. Records loaded with the same `shared` dict share equal
        parts (the objects every request of a promise outputs, the selectors, the names)."""
        raw = json.loads(data)
        known = {} if shared is None else shared
        namespace, _, name = (raw["request"] or "/").partition("/")
        owner = Owner(sys.intern(raw["promise"]), sys.intern(namespace), name,
                      sys.intern(raw["pipeline"]))

        def same(value: Any) -> Any:
            key = (type(value), json.dumps(value, sort_keys=True))
            return known.setdefault(key, value)

        def held(item: dict[str, Any]) -> Held:
            defines = item.get("definesClusterKind")
            # Only dependencies are worth sharing: a request's own resources are its alone,
            # and remembering each of them would only raise the peak of a load.
            shareable = item["placement"] == layout.DEPENDENCIES or not owner.name
            key = (item["id"], item["placement"], item["blob"], generation, defines)
            found = known.get(key) if shareable else None
            if found is None:
                group_kind = (defines.split("/")[0], defines.split("/")[1]) if defines else None
                found = Held(Identity.from_key(item["id"]), sys.intern(item["placement"]),
                             item["blob"], generation, group_kind)
                if shareable:
                    known[key] = found
            return found

        generation = raw.get("generation")
        return cls(
            owner=owner,
            digest=raw["digest"],
            selectors=same(raw["selectors"]),
            serial=raw["serial"],
            generation=generation,
            status=raw.get("status"),
            destinations=same(tuple(raw["destinations"])),
            objects={sys.intern(d): tuple(held(i) for i in items) for d, items in raw["objects"].items()},
            stored_documents=raw.get("storedDocuments", 0),
            dependency_marked=tuple(raw.get("dependencyMarked", ())),
            pending_reason=raw.get("pendingReason"),
        )

    def with_(self, **changes: Any) -> OwnerRecord:
        return replace(self, **changes)


def _lines_json(record: dict[str, Any]) -> str:
    """JSON with one line per field and per held object, so a record's diff in git shows
    what changed. (The json module's own indenting encoder is pure Python, and records are
    written on every change.)"""

    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    fields = []
    for key in sorted(record):
        value = record[key]
        if key == "objects" and value:
            per_destination = [
                f"  {compact(dest)}: [\n" + ",\n".join(f"   {compact(held)}" for held in holds)
                + "\n  ]"
                for dest, holds in value.items()
            ]
            fields.append(f" {compact(key)}: {{\n" + ",\n".join(per_destination) + "\n }")
        else:
            fields.append(f" {compact(key)}: {compact(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def destination_to_json(destination: Destination) -> bytes:
    return (json.dumps(destination.as_dict(), indent=1, sort_keys=True) + "\n").encode()


def destination_from_json(data: bytes) -> Destination:
    raw = json.loads(data)
    return Destination(raw["name"], dict(raw["labels"]), raw["path"])


KeptContent = tuple[str, int]  # blob, promise generation of the owner that wrote it


def generations_to_json(kept: dict[Identity, KeptContent]) -> bytes:
    """A destination's shared objects whose content outlived the owner that wrote it."""
    objects = {identity.key(): {"blob": blob, "generation": generation}
               for identity, (blob, generation) in kept.items()}
    return (json.dumps({"objects": objects}, indent=1, sort_keys=True) + "\n").encode()


def generations_from_json(data: bytes) -> dict[Identity, KeptContent]:
    raw = json.loads(data)
    return {Identity.from_key(key): (str(item["blob"]), int(item["generation"]))
            for key, item in raw["objects"].items()}


class CorruptState(ValueError):
    """A record under .statewriter/ that cannot be read. Refused rather than skipped:
    without it the planner would hand that owner's objects to others."""


R = TypeVar("R")


def _read_record(path: str, data: bytes, parse: Callable[[bytes], R]) -> R:
    try:
        return parse(data)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CorruptState(f"{path}: unreadable state record ({type(error).__name__}: {error}); "
                           "repair it (e.g. git revert the commit that broke it)") from None


RequestKey = tuple[str, str, str]  # promise, namespace, name ("", "" for promise-level)
ObjectKey = tuple[str, Identity]  # destination, identity


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
        self.cluster_kinds: Layered[tuple[str, str, str], int] = Layered(
            parent.cluster_kinds if parent else None
        )
        # Requests a conflict kept out of their destination: tried again when objects go.
        self.blocked: Layered[Owner, bool] = Layered(parent.blocked if parent else None)
        # Content kept after its writer left, so a lower generation cannot overwrite it.
        self.kept: Layered[ObjectKey, KeptContent] = Layered(parent.kept if parent else None)
        self.serial: int = parent.serial if parent else 0

    @classmethod
    def load(cls, tree: Tree) -> Index:
        index = cls()
        for path, data in tree.files(layout.DESTINATIONS_DIR):
            destination = _read_record(path, data, destination_from_json)
            index.destinations[destination.name] = destination
        for path, data in tree.files(layout.GENERATIONS_DIR):
            destination_name = path.rpartition("/")[2].removesuffix(".json")
            for identity, content in _read_record(path, data, generations_from_json).items():
                index.kept[(destination_name, identity)] = content
        shared: dict[Any, Any] = {}
        for path, data in tree.files(layout.OWNERS_DIR):
            if path.endswith(".json"):
                index.put_owner(_read_record(path, data,
                                             lambda raw: OwnerRecord.from_json(raw, shared)))
        return index

    def child(self) -> Index:
        return Index(self)

    def merge_down(self) -> None:
        assert self.parent is not None
        for name in ("destinations", "owners", "objects", "requests", "cluster_kinds", "kept",
                     "blocked"):
            getattr(self, name).merge_down()
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
        for dest, holds in record.objects.items():
            for held in holds:
                self.objects.for_update((dest, held.identity)).set(owner, held)
                if held.defines_cluster_kind:
                    kind_key = (dest, *held.defines_cluster_kind)
                    self.cluster_kinds[kind_key] = (self.cluster_kinds.get(kind_key) or 0) + 1

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
        for dest, holds in record.objects.items():
            for held in holds:
                object_key = (dest, held.identity)
                holders = self.objects.for_update(object_key)
                holders.drop(owner)
                if not holders:
                    self.objects.pop(object_key)
                if held.defines_cluster_kind:
                    kind_key = (dest, *held.defines_cluster_kind)
                    count = (self.cluster_kinds.get(kind_key) or 0) - 1
                    if count > 0:
                        self.cluster_kinds[kind_key] = count
                    else:
                        self.cluster_kinds.pop(kind_key)
