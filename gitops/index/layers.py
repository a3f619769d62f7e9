"""Layered maps: a plan writes to a child layer of the published index, merged down only
once its commit is published, so readers never see unpublished state."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from gitops.index.records import DROPPED, Held, ObjectKey
from gitops.owner import Owner

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


class Counter(Layered[K, int]):
    """Layered counts; a count that reaches zero is dropped."""

    def add(self, key: K, amount: int) -> None:
        count = (self.get(key) or 0) + amount
        if count > 0:
            self[key] = count
        else:
            self.pop(key)

    def child(self) -> Counter[K]:
        return Counter(self)


class Holders(Mapping[Owner, Held]):
    """The owners holding one object in one destination, layered like the index itself.

    A plan's layer records only its own changes, so taking or dropping one holder costs
    O(1) however many requests share the object (a CRD every request of a promise outputs).
    """

    __slots__ = ("_own", "_parent", "_section", "_size")

    def __init__(self, parent: Holders | None = None, own: dict[Owner, Held] | None = None) -> None:
        self._parent = parent
        self._own: dict[Owner, Held] = own if own is not None else {}
        self._size = len(parent) if parent is not None else len(self._own)
        # every holder of an object has its section: kept here, not looked up
        self._section = parent.section if parent is not None else next(
            (held.section for held in self._own.values()), "")

    def __getitem__(self, owner: Owner) -> Held:
        layer: Holders | None = self
        while layer is not None:
            if owner in layer._own:
                held = layer._own[owner]
                if held is DROPPED:
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
                    if held is not DROPPED:
                        yield owner
            layer = layer._parent

    @property
    def section(self) -> str:
        return self._section

    def set(self, owner: Owner, held: Held) -> None:
        if owner not in self:
            if not self._size:
                self._section = held.section
            self._size += 1
        self._own[owner] = held

    def drop(self, owner: Owner) -> None:
        if owner not in self:
            return
        self._size -= 1
        if self._parent is None:
            del self._own[owner]
        else:
            self._own[owner] = DROPPED

    def child(self) -> Holders:
        return Holders(self)

    def merge_into(self, parent: Holders) -> None:
        for owner, held in self._own.items():
            if held is DROPPED:
                parent.drop(owner)
            else:
                parent.set(owner, held)

    def flattened(self) -> Holders:
        return Holders(None, dict(self.items()))  # a new dict: Holders owns the `own` it gets


class HolderMap(Layered[ObjectKey, Holders]):
    """(destination, identity) -> Holders; a layer's Holders are child layers of its parent's."""

    def owned(self, key: ObjectKey) -> Holders | None:
        value = self._own.get(key)
        return None if value is _GONE else value

    def for_update(self, key: ObjectKey) -> Holders:
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
