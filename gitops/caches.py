"""Every process-wide cache, its budget and the measurement behind it, in one place.

Each cache is bounded: an `LRU` by a total weight (bytes, entries) or a `Memo` emptied whole
when full. Modules make theirs with `lru` or `memo` here, naming it, so `registered()` lists
them all (tests read it; `clear()` empties them between tests that count work done).

    parsed files        32 MiB   a promise's CRD and operator files, parsed once (`gitops.bundle`)
    files seen once     8,192    which texts were parsed once (kept from the second sighting)
    renderings          16 MiB   objects rendered for a destination (`gitops.normalize`)
    scalar tags         2 x 65,536  a plain scalar's tag as written and as read (`gitops.yamldocs`)
    tree entries        131,072  encoded git tree entries (`gitops.store.objects`)
    held lines          32,768   owner records' lines for held objects (`gitops.index.records`)
    custom kinds        512      the kinds CRDs define, compiled for a Kubernetes version
    crd schemas         512      CRD versions' compiled schemas (`gitops.validate.schema`)
    crd documents       32 MiB   destinations' CRD files, parsed (`gitops.planner.validating`)
    cel rules           4,096    compiled x-kubernetes-validations rules (`gitops.validate.cel`)
    cel regexes         512      RE2 patterns CEL rules match with
    go patterns         4,096    schemas' `pattern`s compiled for RE2 (`gitops.validate.goregex`)
    go pattern results  65,536   ... and what each said of a value
    quantities          4,096    which texts are resource quantities

Values shared through a cache are never changed by their readers: documents parsed from a
shared file are frozen (`gitops.frozen`), so no request can change another's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from gitops.lru import LRU, Memo

K = TypeVar("K")
V = TypeVar("V")

# Every request of a promise sends the same CRD and operator files: parsing a file costs
# ~0.25 ms per document in PyYAML's constructors, and those files were ~85% of the text of
# the bench's ECK bundles (parsing 3.3 ms -> 0.6 ms per bundle with this cache). Weighed at
# 8x the canonical JSON (parsed documents measured at 7.3-7.9x its size).
PARSED_FILES_BYTES = 32 << 20
PARSED_FILE_LARGEST = 16 << 20
FILES_SEEN_ONCE = 8192
# The same CRDs and operator rendered for every write of a promise: one big CRD fits.
RENDERINGS_BYTES = 16 << 20
RENDERING_LARGEST = 8 << 20
SCALAR_TAGS = 1 << 16  # most scalars of a promise's requests repeat
# A commit rewrites each folder on its path whole, though one entry changed: encoding the
# entries was ~8% of the writer lane (measured).
TREE_ENTRIES = 1 << 17
HELD_LINES = 1 << 15  # every request of a promise holds the same dependencies
# Validation (gitops.validate): every request of a promise sends objects of the same CRDs,
# so each CRD's kinds and schemas are compiled once (ECK's Elasticsearch CRD: ~13 ms), each
# CEL rule compiled once (~1.5 ms), each Go pattern compiled once; the values a pattern or a
# quantity was tried on repeat too (names, images, sizes). All are counted in entries.
CUSTOM_KINDS = 512
CRD_SCHEMAS = 512
CEL_RULES = 4096
CEL_REGEXES = 512
GO_PATTERNS = 4096
GO_PATTERN_RESULTS = 1 << 16
QUANTITIES = 4096
CRD_DOCUMENTS_BYTES = 32 << 20  # CRD files of destinations, parsed, by blob id
# the commit that wrote each owner record, by its path and blob id (a record's serial makes
# each of its blobs new): a page of requests finds its commits without reading the log again
RECORD_COMMITS = 1 << 16


class Sized(Protocol):
    def __len__(self) -> int: ...


_REGISTRY: dict[str, LRU[object, object] | Memo[object, object]] = {}


def lru(name: str, budget: int, weight: Callable[[V], int] = lambda _: 1,
        largest: int | None = None) -> LRU[K, V]:
    """A new LRU bounded by `budget` (the sum of `weight`), registered as `name`."""
    cache: LRU[K, V] = LRU(budget, weight, largest)
    _register(name, cache)
    return cache


def memo(name: str, make: Callable[[K], V], limit: int) -> Memo[K, V]:
    """A new Memo of `make`, emptied when it holds `limit` results, registered as `name`."""
    cache: Memo[K, V] = Memo(make, limit)
    _register(name, cache)
    return cache


def _register(name: str, cache: object) -> None:
    if name in _REGISTRY:
        raise ValueError(f"a cache named {name!r} exists already")
    _REGISTRY[name] = cache  # type: ignore[assignment]


def registered() -> dict[str, Sized]:
    """Every process-wide cache by name."""
    return dict(_REGISTRY)


def clear() -> None:
    """Empty every cache (tests that count work done start from nothing)."""
    for cache in _REGISTRY.values():
        cache.clear()
