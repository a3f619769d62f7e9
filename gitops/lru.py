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

    def discard(self, key: K) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= self._weight(old)
