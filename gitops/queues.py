"""Taking what a worker's queue holds now, for the lanes that commit in groups (the writer,
the delivery book): None in the queue is the close sentinel."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def take_queued(source: queue.Queue[T | None] | queue.SimpleQueue[T | None], taken: list[T],
                wanted: Callable[[], bool] = lambda: True) -> None:
    """Append to `taken` what `source` holds now, without waiting, while `wanted()`; the
    close sentinel stays in the queue for the next take to see."""
    while wanted():
        try:
            more = source.get_nowait()
        except queue.Empty:
            return
        if more is None:
            source.put(None)
            return
        taken.append(more)
