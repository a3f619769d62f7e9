"""Small timing helpers the micro-benches share."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(call: Callable[[], object]) -> float:
    """Milliseconds `call` took."""
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def summary(ms: list[float], digits: int = 2) -> str:
    """Median, 90th percentile and mean of `ms`, with `digits` decimals."""
    p90 = sorted(ms)[int(len(ms) * 0.9)]
    return (f"median {statistics.median(ms):.{digits}f} ms, p90 {p90:.{digits}f} ms, "
            f"mean {statistics.fmean(ms):.{digits}f} ms")
