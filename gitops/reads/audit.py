"""The commits across requests (docs/reference.md section 6, `GET /v1/history`), read from their
trailers (section 7), and the clients' own trailers given as `KEY=VALUE`.

An `AuditLog` keeps what filtering needs of every commit of one branch, built once from one
`git log` and extended with `git log <old tip>..<new tip>` when the tip moves (a rewritten
branch, whose old tip is no longer an ancestor of the new one, is read again whole). It is
held in columns, not as one object per commit: positions count commits from the oldest
(0) up, so new commits take new positions and never move the old ones, which is what makes
a cursor stable while commits arrive;

- `_shas`: the binary object ids, one after the other (20 bytes a commit);
- `_times`: the committer times, seconds (8 bytes a commit);
- `_postings`: for each `(filter, value)` (`("promise", "elastic-cloud")`, `("actor",
  "pipeline")`, ...) the ascending positions of the commits whose trailers name it (4 bytes
  a commit per value it names: an apply commit names an action, an actor, a promise and
  its destinations).

A query walks the smallest posting list of its filters from its start position down,
checking the others by binary search, and reads the files, summary and trailers of only
the commits of its page, with one log read of their ids.
"""

from __future__ import annotations

import math
import re
import sys
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gitops.commitmsg import trailer_block_pairs
from gitops.errors import InvalidQuery, StoreUnavailable
from gitops.reads.files import Files, files_of
from gitops.reads.history import REVERTS, iso_time
from gitops.reads.query import DEFAULT_LIMIT as DEFAULT_LIMIT  # (re-exported: app/http and the
from gitops.reads.query import MAX_LIMIT as MAX_LIMIT  # tests read them here)
from gitops.reads.query import Cursor, Query
from gitops.reads.query import parse_query as parse_query
from gitops.store.base import LogEntry, Reads

_INDEXED = {"Statewriter-Promise": "promise", "Statewriter-Destination": "destination",
            "Statewriter-Actor": "actor", "Statewriter-Action": "action"}
_LISTED = {"Statewriter-Promise": "promises", "Statewriter-Request": "requests",
           "Statewriter-Pipeline": "pipelines", "Statewriter-Destination": "destinations"}
_SERVICE_PREFIX = "Statewriter-"
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


# -- the log --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    """A commit as it names itself in its trailers."""

    sha: str
    time: str  # RFC 3339, UTC
    actor: str | None
    action: str | None
    reverts: str | None  # the commit a revert commit reverts
    summary: str  # the subject line
    promises: tuple[str, ...]
    requests: tuple[str, ...]
    pipelines: tuple[str, ...]
    destinations: tuple[str, ...]
    trailers: dict[str, tuple[str, ...]]  # the clients' own
    files: Files


@dataclass(frozen=True)
class Page:
    commits: list[AuditEntry]
    next: str | None  # the cursor of the next page; None when this one is the last


@dataclass
class _Columns:
    """Commits newest first, as `git log` gives them; `finish` turns them into the log's
    oldest-first positions."""

    width: int = 0  # bytes an id takes: 20 (SHA-1), 32 (SHA-256); 0 before the first
    shas: bytearray = field(default_factory=bytearray)
    times: array[int] = field(default_factory=lambda: array("q"))
    postings: dict[tuple[str, str], array[int]] = field(default_factory=dict)
    parents: set[str] = field(default_factory=set)
    ordered: bool = True  # newest first, so: times never grow

    def add(self, sha: str, seconds: int, keys: Iterable[tuple[str, str]]) -> None:
        index = len(self.times)
        self.width = self.width or len(sha) // 2
        if self.times and seconds > self.times[-1]:
            self.ordered = False
        self.shas += bytes.fromhex(sha)
        self.times.append(seconds)
        for key in keys:
            self.postings.setdefault(key, array("I")).append(index)

    def finish(self, offset: int) -> tuple[bytes, array[int], dict[tuple[str, str], array[int]]]:
        count, width = len(self.times), self.width
        view = memoryview(self.shas)
        shas = b"".join(view[i * width:(i + 1) * width] for i in range(count - 1, -1, -1))
        self.times.reverse()
        top = offset + count - 1
        postings = {}
        for key, indexes in self.postings.items():
            indexes.reverse()
            postings[key] = array("I", [top - index for index in indexes])
        return shas, self.times, postings


class AuditLog:
    """The commits of one repository's branch, kept current from tip to tip; see the
    module's docstring. Thread-safe: one lock around bringing it up to a tip and choosing a
    page; the page's files are read outside it."""

    def __init__(self, reads: Reads) -> None:
        self.store = reads
        self._lock = threading.Lock()
        self._tip: str | None = None
        self._width = 20
        self._shas = bytearray()
        self._times: array[int] = array("q")
        self._postings: dict[tuple[str, str], array[int]] = {}
        self._ordered = True  # commit times never fall going up the log: bisect them
        self.reads = 0  # whole-branch reads (the first, and after a rewrite)
        self.extensions = 0  # `old..new` reads

    def __len__(self) -> int:
        return len(self._times)

    def nbytes(self) -> int:
        """What the log holds, in bytes: its columns and the postings' keys and arrays."""
        total = sys.getsizeof(self._shas) + sys.getsizeof(self._times)
        total += sys.getsizeof(self._postings)
        for (name, value), positions in self._postings.items():
            total += sys.getsizeof((name, value)) + sys.getsizeof(value) + sys.getsizeof(positions)
        return total

    def page(self, tip: str | None, query: Query) -> Page:
        """The commits of `tip`'s history that match `query`, newest first, from after its
        cursor; `next` when more match."""
        if tip is None:
            return Page([], None)
        with self._lock:
            self._advance(tip)
            start = self._start(tip, query.cursor)
            positions, more = self._select(start, query)
            shas = [self._sha(position) for position in positions]
        commits = self._commits(shas)
        following = Cursor(positions[-1], shas[-1]).encode() if more else None
        return Page(commits, following)

    # -- keeping it current ---------------------------------------------------------------

    def _advance(self, tip: str) -> None:
        if tip == self._tip:
            return
        if self._tip is None:
            self._read_whole(tip)
            return
        try:
            newer = self._read(f"{self._tip}..{tip}")
        except StoreUnavailable:  # the old tip is gone from the repository: rewritten
            self._read_whole(tip)
            return
        if not newer.times:
            return  # `tip` is in the log already: a reader's snapshot older than the last one
        if self._tip not in newer.parents:
            self._read_whole(tip)  # the old tip is no ancestor of the new one
            return
        shas, times, postings = newer.finish(len(self))
        if self._times and (not newer.ordered or times[0] < self._times[-1]):
            self._ordered = False
        self._shas += shas
        self._times.extend(times)
        for key, positions in postings.items():
            self._postings.setdefault(key, array("I")).extend(positions)
        self._tip = tip
        self.extensions += 1

    def _read_whole(self, tip: str) -> None:
        columns = self._read(tip)
        shas, self._times, self._postings = columns.finish(0)
        self._shas = bytearray(shas)
        self._width = columns.width or self._width
        self._ordered = columns.ordered
        self._tip = tip
        self.reads += 1

    def _read(self, revisions: str) -> _Columns:
        columns = _Columns()
        interned: dict[tuple[str, str], tuple[str, str]] = {}
        for commit in self.store.log([revisions], trailers_only=True, topo_order=True):
            keys = set()
            for key, value in trailer_block_pairs(commit.message):
                name = _INDEXED.get(key)
                if name is not None:
                    pair = (name, value)
                    keys.add(interned.setdefault(pair, pair))
            columns.add(commit.sha, commit.time, keys)
            columns.parents.update(commit.parents)
        return columns

    # -- answering --------------------------------------------------------------------------

    def _sha(self, position: int) -> str:
        width = self._width
        return self._shas[position * width:(position + 1) * width].hex()

    def _find(self, sha: str) -> int | None:
        wanted, width = bytes.fromhex(sha), self._width
        at = self._shas.find(wanted)
        while at != -1 and at % width:
            at = self._shas.find(wanted, at + 1)
        return None if at == -1 else at // width

    def _start(self, tip: str, cursor: Cursor | None) -> int:
        """The position the walk starts at (down from there)."""
        position: int | None
        if cursor is not None:
            position = cursor.position
            if position >= len(self) or self._sha(position) != cursor.sha:
                position = self._find(cursor.sha) if len(cursor.sha) == 2 * self._width else None
            if position is None:
                raise InvalidQuery(f"the cursor's commit {cursor.sha[:12]} is no longer on the "
                                   "branch (it was rewritten): start again without a cursor",
                                   field="cursor")
            return position - 1
        if tip != self._tip:
            position = self._find(tip)
            if position is not None:
                return position
        return len(self) - 1

    def _select(self, start: int, query: Query) -> tuple[list[int], bool]:
        """Up to `query.limit` matching positions from `start` down; whether more match."""
        lists = []
        for key in query.filters():
            positions = self._postings.get(key)
            if positions is None:
                return [], False
            lists.append(positions)
        lists.sort(key=len)
        low, high = 0, start
        earliest = math.ceil(query.since.timestamp()) if query.since else None
        latest = math.floor(query.until.timestamp()) if query.until else None
        times = self._times
        if self._ordered:  # the time bounds are a range of positions
            if earliest is not None:
                low = bisect_left(times, earliest)
            if latest is not None:
                high = min(high, bisect_right(times, latest) - 1)
            earliest = latest = None
        candidates: Iterator[int]
        if lists:
            driver = lists[0]
            top = bisect_right(driver, high) - 1
            candidates = (driver[i] for i in range(top, -1, -1))
        else:
            candidates = iter(range(high, -1, -1))
        others = lists[1:]
        found: list[int] = []
        for position in candidates:
            if position < low:
                break
            if earliest is not None and times[position] < earliest:
                continue
            if latest is not None and times[position] > latest:
                continue
            if not all(_holds(positions, position) for positions in others):
                continue
            if len(found) == query.limit:
                return found, True
            found.append(position)
        return found, False

    def _commits(self, shas: list[str]) -> list[AuditEntry]:
        """The page's commits, read with one log read of their ids."""
        if not shas:
            return []
        read = {commit.sha: _entry(commit) for commit in
                self.store.log(shas, walk=False, files=True, trailers_only=True)}
        missing = [sha for sha in shas if sha not in read]
        if missing:
            raise StoreUnavailable(f"the log did not give commit {missing[0]}")
        return [read[sha] for sha in shas]


def _holds(positions: array[int], position: int) -> bool:
    at = bisect_left(positions, position)
    return at < len(positions) and positions[at] == position


def _entry(commit: LogEntry) -> AuditEntry:
    """One commit of a page, named by its trailers (`commit.message` is its trailer block)."""
    actor = action = reverts = None
    lists: dict[str, list[str]] = {name: [] for name in _LISTED.values()}
    own: dict[str, list[str]] = {}
    for key, value in trailer_block_pairs(commit.message):
        if key == "Statewriter-Actor":
            actor = actor or value
        elif key == "Statewriter-Action":
            action = action or value
        elif key == REVERTS:
            reverts = reverts or value
        elif key in _LISTED:
            values = lists[_LISTED[key]]
            if value not in values:
                values.append(value)
        elif not key.startswith(_SERVICE_PREFIX):
            own.setdefault(key, []).append(value)
    return AuditEntry(
        sha=commit.sha, time=iso_time(commit.time), actor=actor, action=action,
        reverts=reverts, summary=commit.subject, promises=tuple(lists["promises"]),
        requests=tuple(lists["requests"]), pipelines=tuple(lists["pipelines"]),
        destinations=tuple(lists["destinations"]),
        trailers={key: tuple(values) for key, values in own.items()},
        files=files_of(commit.files or ()))


# -- the clients' own trailers ---------------------------------------------------------------
