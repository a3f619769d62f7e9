"""The writer lane: one thread per store plans, commits and publishes, in order.

Requests queue up; the lane takes everything waiting (a group), plans each against the
tip left by the previous one, writes one commit per change, and publishes the group with
one compare-and-swap (embedded) or push (remote). Answers go out only after that publish
succeeded. When the branch moved underneath (another replica, a person), the lane
fetches, reloads the index from the new tip and re-plans the whole group: never a
textual rebase.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from gitops import layout
from gitops.errors import CorruptState, RateLimited, StatewriterError, StoreUnavailable
from gitops.index import Index
from gitops.planner import Plan, needs_migration, plan_migrate
from gitops.planner.results import FileChanges, Notes, Result
from gitops.queues import take_queued
from gitops.store.base import Author, Store
from gitops.tree import Tree

log = logging.getLogger("statewriter.writer")

Operation = Callable[[Index, Tree], Plan]

# State records changed by others beyond which a full reload is as cheap as reading them
INCREMENTAL_LIMIT = 2000
RATE_LIMIT_CAP = 300.0  # seconds: the longest back-off after "too many requests"


@dataclass(frozen=True)
class Done:
    """The operation's result, and the commit the branch was at when it was answered."""

    result: Result
    changed: bool
    files: FileChanges
    notes: Notes
    commit: str | None
    dry_run: bool = False


@dataclass(frozen=True)
class Refused:
    """The operation was refused (invalid, conflicting, not found...); nothing changed."""

    error: StatewriterError


@dataclass(frozen=True)
class Failed:
    """An unexpected error while planning or committing this operation alone; nothing it
    asked for changed, and the rest of its group went on without it."""

    request_id: str


Outcome = Done | Refused | Failed


@dataclass(frozen=True)
class Published:
    """A group of commits that reached the branch: what listeners (notifications) hear."""

    base: str | None  # the tip before
    head: str  # the tip now
    paths: tuple[str, ...]  # files that differ between the two, sorted


Listener = Callable[[Published], None]

@dataclass(frozen=True)
class Unready:
    """Why writes cannot succeed now: `reason` names the kind of problem and nothing more
    (it is answered to anyone); `detail` may name hosts and paths, for operators. `reads`:
    whether reads (and git's clones) can still be served, so that only writes are refused."""

    reason: str
    detail: str
    reads: bool = True


# How one publish attempt ended (Observer.pushed)
PUSHED, REJECTED, RATE_LIMITED, PUSH_FAILED = "published", "rejected", "rate_limited", "failed"


class Observer:
    """What the lane tells about its own work (the service turns it into metrics). Called on
    the lane: keep it quick. This one ignores everything."""

    def planned(self, seconds: float) -> None:
        """One operation was planned."""

    def committed(self, seconds: float) -> None:
        """One commit was written (not yet published)."""

    def pushed(self, seconds: float, result: str) -> None:
        """One publish attempt (a push, or the embedded store's compare-and-swap) ended:
        PUSHED, REJECTED (the branch moved), RATE_LIMITED or PUSH_FAILED."""

    def published(self, commits: int) -> None:
        """A group of `commits` reached the branch."""

    def answered(self, seconds: float) -> None:
        """One operation was answered, `seconds` after it was queued."""


@dataclass
class _Job:
    operation: Operation
    dry_run: bool
    request_id: str
    future: Future[Outcome] = field(default_factory=Future)
    queued: float = field(default_factory=time.monotonic)


@dataclass
class _Refresh:
    """Bring the index up to the branch tip where it is published (for readers)."""

    future: Future[None] = field(default_factory=Future)


class _JobFailed(Exception):
    def __init__(self, job: _Job) -> None:
        super().__init__(job.request_id)
        self.job = job


class Writer:
    def __init__(
        self,
        store: Store,
        author: Author = Author(),
        max_group: int = 64,
        max_attempts: int = 8,
        maintain_every: int = 16,
        max_staleness: float = 5.0,
        listeners: Sequence[Listener] = (),
        min_interval: float = 0.0,
        observer: Observer = Observer(),
        rate_limit_step: float = 1.0,
    ) -> None:
        self.store = store
        self.author = author
        self.max_group = max_group
        self.max_attempts = max_attempts
        self.maintain_every = maintain_every
        self._since_maintenance = 0
        self._maintenance: threading.Thread | None = None
        self.max_staleness = max_staleness
        self.listeners = list(listeners)  # told after each publish, on the lane: keep them quick
        self.observer = observer
        self.min_interval = min_interval  # seconds between two publishes (push.minInterval)
        # seconds: "too many requests" n times in a row holds the next push back by
        # min_interval + rate_limit_step * 2**n (jittered, at most RATE_LIMIT_CAP)
        self.rate_limit_step = rate_limit_step
        self._waiting: list[_Job] = []  # accepted, waiting for the push budget
        self._next_push = 0.0  # monotonic time the next publish may happen
        self._rate_limited = 0  # "too many requests" answers in a row
        self._queue: queue.Queue[_Job | _Refresh | None] = queue.Queue()
        self._tip: str | None = None
        self._unready: str | None = None  # why the last contact with the store failed
        self._corrupt: str | None = None  # why the state at the tip cannot be read whole
        self._refreshed = 0.0  # when the tip was last known to be the published one
        self._refresh: _Refresh | None = None  # queued or running, shared by readers
        self._refresh_lock = threading.Lock()
        self._index = Index()
        self._load(store.refresh())
        self._refreshed = time.monotonic()
        self._migrate()
        self._thread = threading.Thread(target=self._run, name="statewriter-writer", daemon=True)
        self._thread.start()

    # -- the public face --------------------------------------------------------------------

    def submit(self, operation: Operation, dry_run: bool = False,
               request_id: str | None = None) -> Future[Outcome]:
        job = _Job(operation, dry_run, request_id or uuid.uuid4().hex)
        self._queue.put(job)
        return job.future

    def snapshot(self) -> tuple[str | None, Index, Tree]:
        """The published tip, its index and its tree, for readers."""
        tip, index = self._tip, self._index
        return tip, index, self.store.tree(tip)

    def refresh_if_stale(self) -> Future[None] | None:
        """For a reader that must see the branch as it was at most `max_staleness` seconds
        ago (docs/reference.md section 6): None when the index is that fresh, else a future that is
        done once the lane has fetched and caught up. Readers share one refresh at a time."""
        if time.monotonic() - self._refreshed <= self.max_staleness:
            return None
        with self._refresh_lock:
            if self._refresh is None or self._refresh.future.done():
                self._refresh = _Refresh()
                self._queue.put(self._refresh)
            return self._refresh.future

    def queue_depth(self) -> int:
        """Operations accepted and not yet planned: queued, or waiting for the push budget."""
        return self._queue.qsize() + len(self._waiting)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def readiness(self) -> Unready | None:
        """None when writes can succeed, as far as the lane last saw (it never contacts the
        remote for this); else why not, and whether reads can still be served: not when the
        lane stopped (it brings reads up to the branch) or the store's folder cannot be read;
        yes while the state is corrupt, or the remote failed at its last contact (a read
        then says itself whether it could be brought up to the branch)."""
        if not self.alive:
            return Unready("the writer lane stopped", "the writer lane stopped", reads=False)
        unreadable = store_problem(self.store.path)
        if unreadable is not None:
            return Unready("the state store cannot be read", unreadable, reads=False)
        if self._corrupt is not None:
            return Unready("the state store is corrupt: writes are refused until the branch is "
                           "repaired", f"writes are refused: {self._corrupt}")
        if self._unready is not None:
            return Unready("the state store could not be read or written at its last contact",
                           self._unready)
        disk = disk_problem(self.store.path)
        return Unready("the data folder cannot take writes", disk) if disk else None

    def close(self) -> None:
        """Publish what was accepted, stop the lane, let listeners finish (a notifier's last
        deliveries), then close the store."""
        self._queue.put(None)
        self._thread.join(timeout=30)
        if self._maintenance is not None:
            self._maintenance.join(timeout=60)
        self.close_listeners()
        self.store.close()

    def close_listeners(self) -> None:
        """Let listeners that hold threads (a notifier's last deliveries) finish; again is a
        no-op."""
        for listener in self.listeners:
            close = getattr(listener, "close", None)
            if callable(close):
                close()

    # -- the lane -----------------------------------------------------------------------------

    def _load(self, tip: str | None) -> None:
        started = time.monotonic()
        tree = self.store.tree(tip)
        # The index is long-lived and acyclic: no cyclic collection while it is built (each
        # full one re-scanned what was loaded so far: 15% of loading 100,000 requests), and
        # once built it is frozen out of the collector's scans (pauses that grow with state).
        gc.disable()
        try:
            self._index = Index.load(tree)
            self._corrupt = None
        except CorruptState as error:
            # Keep serving what can be read (reads, /git); writes wait for a repair, since
            # the planner would hand the unreadable owner's objects to others.
            self._corrupt = f"the state store is corrupt: {error}"
            self._index = Index.load(tree, report=lambda path, problem: None)
            log.error("%s; serving reads and refusing writes until the branch is repaired",
                      self._corrupt)
        finally:
            gc.enable()
        self._tip = tip
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info("loaded state at %s in %.2fs", tip or "(empty)", time.monotonic() - started)

    def _advance(self, tip: str | None) -> None:
        """Bring the index from the tip it reflects to `tip`, reading only the state records
        that changed between the two (a full load when there is no base to start from)."""
        base = self._tip
        if tip == base:
            return
        if base is None or tip is None or self._corrupt is not None:
            self._load(tip)
        else:
            started = time.monotonic()
            try:
                paths = self.store.changed(base, tip, layout.STATE)
                if len(paths) > INCREMENTAL_LIMIT:
                    raise _TooManyChanges
                before, after = self.store.tree(base), self.store.tree(tip)
                update = self._index.child()
                update.advance((path, before.read(path), after.read(path)) for path in paths)
            except Exception as error:  # whatever was odd about the change: the full load decides
                if not isinstance(error, _TooManyChanges | CorruptState):  # the load says it
                    log.warning("incremental refresh to %s failed; loading in full", tip,
                                exc_info=True)
                self._load(tip)
            else:
                update.merge_down()
                self._tip = tip
                log.info("advanced state to %s (%d state files changed) in %.3fs", tip,
                         len(paths), time.monotonic() - started)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store written by an older layout to the current one: one commit, before
        anything else is written (another replica may get there first)."""
        for _ in range(self.max_attempts):
            base = self._tip
            tree = self.store.tree(base)
            try:
                if self._corrupt is not None or not needs_migration(tree):
                    return
            except CorruptState as error:  # the layout record itself: no layout to trust
                self._corrupt = f"the state store is corrupt: {error}"
                log.error("%s; serving reads and refusing writes until the branch is repaired",
                          self._corrupt)
                return
            started = time.monotonic()
            log.info("migrating the state store at %s to layout %d", base, layout.VERSION)
            plan = plan_migrate(self._index, tree)
            head = self.store.commit(base, plan.changes, plan.message, self.author)
            if self.store.publish(base, head):
                log.info("migrated the state store to layout %d in commit %s (%d files) in "
                         "%.1fs", layout.VERSION, head, len(plan.changes),
                         time.monotonic() - started)
                self._load(head)
                return
            self._load(self.store.refresh())  # someone else moved it: migrated, maybe
        raise StoreUnavailable("migration: the branch kept moving")

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                if self._waiting:  # what was accepted still goes out before the lane stops
                    self._next_push = time.monotonic()
                    self._publish_waiting()
                return
            refreshes = [i for i in taken if isinstance(i, _Refresh)]
            jobs = [i for i in taken if isinstance(i, _Job)]
            if refreshes or (jobs and self._corrupt is not None):
                self._catch_up(refreshes)
            if self._corrupt is not None:
                self._refuse_while_corrupt(jobs)
                continue
            self._waiting.extend(jobs)
            self._publish_waiting()

    def _take(self) -> list[_Job | _Refresh] | None:
        """What the queue holds: at least one item, waiting no longer than until the next
        push is due while jobs wait for it (None: the lane is closing). Up to `max_group`
        when the next push is due now; everything queued while the push budget holds
        changes back (they will all ride that push)."""
        taken: list[_Job | _Refresh] = []
        while not taken:
            wait = self._until_push()
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                return taken  # the push is due: publish what waits
            if item is None:
                return None
            taken.append(item)
        held_back = self._until_push() not in (None, 0.0)
        take_queued(self._queue, taken, lambda: held_back or len(taken) < self.max_group)
        return taken

    def _until_push(self) -> float | None:
        """Seconds until the next push may go, while jobs wait for it (None: none wait)."""
        if not self._waiting:
            return None
        return max(0.0, self._next_push - time.monotonic())

    def _publish_waiting(self) -> None:
        """Plan, commit and publish the waiting jobs as one group, if the push budget allows
        it now (docs/reference.md section 8: `push.minInterval`); a remote that answers "too many
        requests" pushes back the next attempt, with jitter, and the jobs keep waiting."""
        if not self._waiting or self._until_push():
            return
        group, self._waiting = self._waiting, []
        try:
            pushed = self._process(group)
        except RateLimited as limited:
            self._rate_limited += 1
            delay = min(RATE_LIMIT_CAP,
                        self.min_interval + self.rate_limit_step * 2.0 ** self._rate_limited)
            delay *= random.uniform(0.5, 1.0)
            log.warning("%s; next push in %.1fs", limited.message, delay,
                        extra={"event": "retry", "reason": "rate_limited", "retry_in": round(delay, 1)})
            self._next_push = time.monotonic() + delay
            self._waiting = [job for job in group if not job.future.done()] + self._waiting
            return
        except Exception as error:  # the lane must survive anything
            if not isinstance(error, StoreUnavailable):
                log.exception("writer group failed")
            failure = error if isinstance(error, StoreUnavailable) else StoreUnavailable(
                f"state store failure: {error}")
            self._unready = failure.message
            for item in group:
                if not item.future.done():
                    item.future.set_result(Refused(failure))
            return
        self._rate_limited = 0
        if pushed:
            self._next_push = time.monotonic() + self.min_interval

    def _catch_up(self, refreshes: list[_Refresh]) -> None:
        """Fetch the branch and bring the index up to it; readers waiting are told."""
        try:
            self._advance(self.store.refresh())
        except Exception as error:
            failure = error if isinstance(error, StoreUnavailable) else StoreUnavailable(
                f"cannot read the state store: {error}")
            self._unready = failure.message
            log.warning("refresh failed: %s", failure.message)
            for refresh in refreshes:
                if not refresh.future.done():  # a reader may have given up on it
                    refresh.future.set_exception(failure)
            return
        self._refreshed = time.monotonic()
        self._unready = None
        for refresh in refreshes:
            if not refresh.future.done():
                refresh.future.set_result(None)

    def _process(self, group: list[_Job]) -> bool:
        """Plan, commit and publish `group`, then answer it; whether the branch moved."""
        attempt = 0
        while group:
            base, batch = self._tip, self._index.child()
            try:
                head, outcomes = self._plan_group(group, base, batch)
            except _JobFailed as failed:  # that job alone; the rest are planned again
                failed.job.future.set_result(Failed(failed.job.request_id))
                group = [job for job in group if job is not failed.job]
                continue
            confirmed = time.monotonic()
            published = head == base and self.store.refresh() == base
            if not published and head is not None and head != base:
                published = self._push(base, head)
            if published:
                self._unready = None
                self._refreshed = confirmed
                batch.merge_down()
                self._tip = head
                if head != base:
                    changed = sum(1 for o in outcomes if isinstance(o, Done) and o.changed)
                    self.observer.published(changed)
                    log.info("published %d commit(s): %s", changed, head,
                             extra={"event": "publish", "commit": head, "commits": changed,
                                    "attempt": attempt + 1})
                    self._maybe_maintain()
                for job, outcome in zip(group, outcomes, strict=True):
                    self.observer.answered(time.monotonic() - job.queued)
                    job.future.set_result(outcome)
                if head is not None and head != base:
                    self._tell(Published(base, head, tuple(self.store.changed(base, head, ""))))
                return head != base
            attempt += 1
            if attempt >= self.max_attempts:
                raise StoreUnavailable(
                    f"branch kept moving: gave up after {self.max_attempts} attempts")
            log.info("branch moved under %d change(s); re-planning (attempt %d)", len(group),
                     attempt, extra={"event": "retry", "reason": "branch_moved", "attempt": attempt})
            time.sleep(min(2.0, 0.02 * 2**attempt) * random.uniform(0.5, 1.5))
            self._advance(self.store.refresh())
            if self._corrupt is not None:  # the move was a commit that broke the state
                self._refuse_while_corrupt(group)
                return False
        return False

    def _refuse_while_corrupt(self, jobs: list[_Job]) -> None:
        for job in jobs:
            job.future.set_result(Refused(StoreUnavailable(
                f"{self._corrupt}; writes are refused until it is repaired")))

    def _push(self, base: str | None, head: str) -> bool:
        """Publish `head` if the branch is still at `base`; the observer hears how it went."""
        started, result = time.monotonic(), PUSH_FAILED
        try:
            published = self.store.publish(base, head)
            result = PUSHED if published else REJECTED
            return published
        except RateLimited:
            result = RATE_LIMITED
            raise
        finally:
            self.observer.pushed(time.monotonic() - started, result)

    def _tell(self, published: Published) -> None:
        for listener in self.listeners:
            try:
                listener(published)
            except Exception:  # a listener never fails a write
                log.exception("a listener of published changes failed")

    def _maybe_maintain(self) -> None:
        """Every `maintain_every` publishes (each leaves one small pack), roll packs up in
        the background, one maintenance at a time."""
        self._since_maintenance += 1
        running = self._maintenance is not None and self._maintenance.is_alive()
        if self._since_maintenance >= self.maintain_every and not running:
            self._since_maintenance = 0
            self._maintenance = threading.Thread(target=self.store.maintain,
                                                 name="statewriter-maintenance", daemon=True)
            self._maintenance.start()

    def _plan_group(
        self, group: list[_Job], base: str | None, batch: Index
    ) -> tuple[str | None, list[Outcome]]:
        head = base
        outcomes: list[Outcome] = []
        for job in group:
            try:
                started = time.monotonic()
                try:
                    plan = job.operation(batch, self.store.tree(head))
                finally:  # a refusal was planned too
                    self.observer.planned(time.monotonic() - started)
                if job.dry_run:
                    outcomes.append(_done(plan, head, dry_run=True))
                    continue
                commit = head
                if plan.changed:
                    started = time.monotonic()
                    commit = self.store.commit(head, plan.changes, plan.message, self.author)
                    self.observer.committed(time.monotonic() - started)
            except StatewriterError as refusal:
                if isinstance(refusal, StoreUnavailable):
                    self._unready = refusal.message  # a store that cannot be read
                outcomes.append(Refused(refusal))
                continue
            except Exception:
                log.exception("unexpected error in request %s; answering it alone and "
                              "planning the rest of its group again", job.request_id)
                raise _JobFailed(job) from None
            head = commit
            plan.index.merge_down()
            outcomes.append(_done(plan, head))
            if plan.changed and plan.follow_up is not None:
                head = self._follow_up(plan.follow_up, batch, head)
        return head, outcomes

    def _follow_up(self, operation: Operation, batch: Index, head: str | None) -> str | None:
        """A commit the service owes after another (e.g. placing requests a delete
        unblocked); it has no client waiting, so a refusal or a failure is only logged."""
        try:
            plan = operation(batch, self.store.tree(head))
            commit = (self.store.commit(head, plan.changes, plan.message, self.author)
                      if plan.changed else head)
        except StatewriterError as refusal:
            log.warning("follow-up refused: %s", refusal.message)
            return head
        except Exception:
            log.exception("follow-up failed; the change before it stands")
            return head
        if plan.changed:
            log.info("follow-up commit %s: %s", commit, plan.message.splitlines()[0])
        plan.index.merge_down()
        return commit


# Below this much free space a publish may fail half-way (a pack, a ref): not ready.
MIN_FREE_BYTES = 64 << 20


def store_problem(path: Path) -> str | None:
    """Why the store's folder at `path` cannot be read now, or None."""
    if not path.is_dir():
        return f"{path} is not a folder"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"{path} cannot be read (permission denied)"
    return None


def disk_problem(path: Path) -> str | None:
    """Why the file system holding `path` cannot take writes now, or None."""
    try:
        stat = os.statvfs(path)
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    free = stat.f_bavail * stat.f_frsize
    if free < MIN_FREE_BYTES:
        return f"the file system holding {path} has {free >> 20} MiB free"
    if not os.access(path, os.W_OK):
        return f"{path} is not writable"
    return None


class _TooManyChanges(Exception):
    """More state records changed than reading them one by one is worth."""


def _done(plan: Plan, commit: str | None, dry_run: bool = False) -> Done:
    return Done(plan.result, plan.changed, plan.files, plan.notes, commit, dry_run)
