"""The delivery book: what Flux reported, kept on a branch of its own in the state repository
(`statewriter-delivery`, one `<destination>.json` per destination), never on the branch Flux
follows, whose every commit would make Flux reconcile and report again. Events are taken in
groups: whatever arrives while one commit is written goes into the next, and each caller
waits for the commit that holds its event, so an acknowledged event is in git. A second
replica's commits are found by compare-and-swap, as the writer lane finds them."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from gitops.delivery import ledger
from gitops.delivery.events import Event
from gitops.delivery.ledger import Reported
from gitops.errors import StoreUnavailable
from gitops.queues import take_queued
from gitops.store.base import Author, Reads, Store

DELIVERY_BRANCH = "statewriter-delivery"
MAX_ATTEMPTS = 8  # compare-and-swap rounds against other replicas before giving up
UNCHANGED, CHANGED, NEWLY_APPLIED = 0, 1, 2
log = logging.getLogger("statewriter.delivery")


class Positions:
    """Each commit's position on the branch's first parents (the root is 1), read once and
    extended as the branch grows; rebuilt when the branch was rewritten."""

    def __init__(self, reads: Reads, tip: Callable[[], str | None]) -> None:
        self._reads, self._tip = reads, tip
        self._lock = threading.Lock()
        self._known_tip: str | None = None
        self._at: dict[str, int] = {}
        self._time: dict[str, int] = {}

    def position(self, sha: str) -> int | None:
        found = self._at.get(sha)
        if found is None and self._tip() != self._known_tip:
            self._extend()
            found = self._at.get(sha)
        return found

    def time(self, sha: str) -> int | None:
        """When `sha` was committed (seconds since the epoch), when it is on the branch."""
        return self._time.get(sha) if self.position(sha) is not None else None

    def _extend(self) -> None:
        with self._lock:
            tip = self._tip()
            if tip is None or tip == self._known_tip:
                return
            since = self._known_tip
            if since is not None and not self._reads.is_ancestor(since, tip):
                since, self._at, self._time = None, {}, {}  # rewritten: count again
            added = self._reads.first_parents(tip, since)
            start = len(self._at)
            for offset, (sha, when) in enumerate(reversed(added), start=1):
                self._at[sha] = start + offset
                self._time[sha] = when
            self._known_tip = tip


@dataclass(frozen=True)
class _Pending:
    destination: str
    event: Event
    done: Future[bool]


class DeliveryBook:
    """Reports by destination, read from and written to `store` (the delivery branch)."""

    def __init__(self, store: Store, positions: Positions, author: Author,
                 max_staleness: float = 5.0,
                 observe: Callable[[str, float], None] | None = None) -> None:
        """`observe(destination, seconds)`: told, for each Kustomization's first report of a
        revision applied, how long after its commit that came."""
        self.store, self.positions, self._author = store, positions, author
        self.max_staleness = max_staleness
        self._observe = observe
        self._lock = threading.Lock()
        self._cache: tuple[str | None, dict[str, dict[tuple[str, str], Reported]]] = (None, {})
        self._read_at = float("-inf")
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="delivery-book", daemon=True)
        self._thread.start()

    # -- reading ---------------------------------------------------------------------------

    def position(self, sha: str) -> int | None:
        """`sha`'s position on the branch Flux follows (None: not on it)."""
        return self.positions.position(sha)

    def tip(self, destination: str) -> str | None:
        """What identifies the reports as they are now (the delivery branch's tip)."""
        return self.store.tip()

    def reports(self, destination: str) -> dict[tuple[str, str], Reported]:
        """What `destination`'s Kustomizations reported, at most `max_staleness` old."""
        if time.monotonic() - self._read_at > self.max_staleness:
            try:
                self.store.refresh()
            except StoreUnavailable as error:  # the last known reports are still worth showing
                log.warning("delivery: cannot refresh %s: %s", self.store.branch, error)
            self._read_at = time.monotonic()
        return self._read(self.store.tip(), destination)

    def _read(self, tip: str | None, destination: str) -> dict[tuple[str, str], Reported]:
        with self._lock:
            cached_tip, by_destination = self._cache
            if cached_tip != tip:
                by_destination = {}
                self._cache = (tip, by_destination)
            if destination not in by_destination:
                content = self.store.tree(tip).read(f"{destination}.json")
                by_destination[destination] = ledger.decode(content) if content else {}
            return by_destination[destination]

    # -- writing ---------------------------------------------------------------------------

    def record(self, destination: str, event: Event) -> Future[bool]:
        """Take `event` in; the future is True once a commit holds the change it made, False
        when it changed nothing (a replay, an older revision), and fails when the branch
        cannot be written."""
        done: Future[bool] = Future()
        self._queue.put(_Pending(destination, event, done))
        return done

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            take_queued(self._queue, batch)  # what arrived meanwhile goes into the same commit
            try:
                changed = self._commit(batch)
            except Exception as error:
                for item in batch:
                    item.done.set_exception(error)
                continue
            for item, result in zip(batch, changed, strict=True):
                if result == NEWLY_APPLIED and item.event.revision and self._observe:
                    made = self.positions.time(item.event.revision)
                    if made is not None:
                        self._observe(item.destination, item.event.at.timestamp() - made)
                item.done.set_result(bool(result))

    def _commit(self, batch: Sequence[_Pending]) -> list[int]:
        """For each event: UNCHANGED, CHANGED, or NEWLY_APPLIED (its Kustomization's applied
        revision moved to the event's)."""
        for _ in range(MAX_ATTEMPTS):
            tip = self.store.tip()
            states: dict[str, dict[tuple[str, str], Reported]] = {}
            changed = []
            for item in batch:
                now = states.get(item.destination) or self._read(tip, item.destination)
                new = ledger.record(now, item.event, self.positions.position)
                key = (item.event.namespace, item.event.kustomization)
                if new is None:
                    changed.append(UNCHANGED)
                    continue
                states[item.destination] = new
                before, after = now.get(key, Reported()).applied, new[key].applied
                moved = after is not None and (before is None or before.revision != after.revision)
                changed.append(NEWLY_APPLIED if moved else CHANGED)
            if not states:
                return changed
            files: dict[str, bytes | None] = {
                f"{name}.json": ledger.encode(reports) for name, reports in sorted(states.items())}
            count = sum(1 for result in changed if result)
            message = (f"delivery: {count} report(s) from {', '.join(sorted(states))}\n\n"
                       f"Statewriter-Action: delivery\n")
            commit = self.store.commit(tip, files, message, self._author)
            if self.store.publish(tip, commit):
                return changed
            self.store.refresh()  # another replica wrote meanwhile: take its reports in
        raise StoreUnavailable(f"cannot write {self.store.branch}: it kept moving")
