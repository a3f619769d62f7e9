"""A thread-safe least-recently-used cache bounded by a total weight (items, bytes, entries)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(
        self, budget: int, weight: Callable[[V], int] = lambda _: 1, largest: int | None = None
    ) -> None:
        self._budget = budget
        self._weight = weight
        self._largest = budget // 8 if largest is None else largest
        self._used = 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` unless it alone weighs more than `largest` (an eighth of the budget
        unless told otherwise)."""
        weight = self._weight(value)
        if weight > self._largest:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= self._weight(old)
            self._items[key] = value
            self._used += weight
            while self._used > self._budget:
                _, dropped = self._items.popitem(last=False)
                self._used -= self._weight(dropped)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used = 0

    def discard(self, key: K) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= self._weight(old)


class Memo(dict[K, V]):
    """A pure function's results by argument, for the hot paths where an LRU's lock and
    bookkeeping cost more than the hit saves: `memo[key]` is a plain dict lookup when found,
    and calls `make(key)` when not. Bounded by emptying it whole when `limit` is reached.
    Threads may race to make the same value; both results are equal."""

    def __init__(self, make: Callable[[K], V], limit: int) -> None:
        super().__init__()
        self._make = make
        self._limit = limit

    def __missing__(self, key: K) -> V:
        value = self._make(key)
        if len(self) >= self._limit:
            self.clear()
        self[key] = value
        return value
