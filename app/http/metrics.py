"""What `/metrics` shows (Prometheus text format), and the only module that knows about
prometheus-client: the core tells its own observers (`gitops.writer.Observer`, the
notifier's `observe`), and this module counts.

Labels are promises and destinations, never requests, so the number of series is bounded by
what the store holds. A promise becomes a label value only once the service placed a bundle
of it (written or unchanged), or holds it, or a token names it, and at most
MAX_PROMISE_LABELS of them: any other (a caller without a valid token inventing names, or a
`"*"` token sending pending bundles of made-up promises) is counted as `other`.
Per-destination gauges and the queue depth are read from the writer at scrape time, so
nothing goes stale.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.config import Config
from app.http.access import Finished
from app.version import VERSION
from gitops import notify
from gitops import writer as lane
from gitops.delivery.book import DeliveryBook as Book
from gitops.index import OwnerRecord
from gitops.reads.delivery import record_commits, request_delivery
from gitops.writer import Writer

CONTENT_TYPE = CONTENT_TYPE_LATEST
# No `*_created` series beside every counter and histogram: each doubled their series for a
# start time Prometheus does not need (it sees a counter's resets by itself).
disable_created_metrics()  # type: ignore[no-untyped-call]
OTHER = "other"  # the promise label of bundles whose promise is not (yet) known
MAX_PROMISE_LABELS = 1000  # promise label values learnt from placed bundles, at most
# Bundle outcomes, as the request log names them too
OUTCOMES = ("written", "unchanged", "pending", "conflict", "invalid", "refused_auth", "failed")
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

BUILD_INFO = Gauge("statewriter_build_info", "1, labelled with the version of statewriter "
                   "and of the Python running it", ["version", "python"])
BUILD_INFO.labels(VERSION, platform.python_version()).set(1)
BUNDLES = Counter("statewriter_bundles_total", "Bundles posted, by promise and outcome",
                  ["promise", "outcome"])
PLAN = Histogram("statewriter_plan_seconds", "Time to plan one operation on the writer lane",
                 buckets=_SECONDS)
COMMIT = Histogram("statewriter_commit_seconds", "Time to write one commit (before publishing)",
                   buckets=_SECONDS)
PUSH = Histogram("statewriter_push_seconds", "Time of one publish attempt (push or compare-and-swap)",
                 buckets=_SECONDS)
ANSWER = Histogram("statewriter_request_seconds",
                   "Time from entering the writer queue to the answer", buckets=_SECONDS)
PUSH_ATTEMPTS = Counter("statewriter_push_attempts_total", "Publish attempts")
PUSH_REJECTIONS = Counter("statewriter_push_rejections_total",
                          "Publish attempts refused because the branch had moved (re-planned)")
PUSH_RATE_LIMITED = Counter("statewriter_push_rate_limited_total",
                            "Publish attempts the remote answered with too many requests (429)")
PUSH_FAILURES = Counter("statewriter_push_failures_total",
                        "Publish attempts that failed otherwise (remote unreachable, refused)")
COMMITS_PER_PUSH = Histogram("statewriter_commits_per_push", "Commits published by one push",
                             buckets=(1, 2, 4, 8, 16, 32, 64, 128))
PUBLISHED = Counter("statewriter_commits_published_total", "Commits published to the branch")
LAST_PUSH = Gauge("statewriter_last_push_success_timestamp_seconds",
                  "Unix time of the last successful publish (0: none since start)")
NOTIFY_DELIVERIES = Counter("statewriter_notify_deliveries_total",
                            "Notify POSTs a destination's receiver accepted", ["destination"])
NOTIFY_RETRIES = Counter("statewriter_notify_retries_total",
                         "Notify POSTs that failed and are tried again", ["destination"])
NOTIFY_FAILURES = Counter("statewriter_notify_failures_total",
                          "Notifications given up (refused, or failed on the last attempt)",
                          ["destination"])
DELIVERY = Histogram("statewriter_delivery_seconds",
                     "Seconds from a commit to Flux reporting it applied, by destination (one "
                     "observation per Kustomization and revision it first reports applied)",
                     ["destination"], buckets=(5, 10, 30, 60, 120, 300, 600, 1800, 3600))
ENCRYPTIONS = Counter("statewriter_encryption_operations_total",
                      "SOPS encryption operations, by destination and outcome",
                      ["destination", "outcome"])


def exposition() -> bytes:
    """The text `/metrics` answers (it reads the index: call it off the event loop)."""
    return generate_latest(REGISTRY)


def encryption_operation(destination: str, outcome: str = "encrypted") -> None:
    """Count one SOPS operation for `destination` (`outcome`: encrypted, failed...)."""
    ENCRYPTIONS.labels(destination, outcome).inc()


def delivered(destination: str, seconds: float) -> None:
    """Flux on `destination` applied a commit `seconds` after it was made."""
    DELIVERY.labels(destination).observe(max(0.0, seconds))


def notified(destination: str, outcome: str) -> None:
    """The notifier's `observe`: what became of one POST to a destination's receiver."""
    counter = {notify.DELIVERED: NOTIFY_DELIVERIES, notify.RETRIED: NOTIFY_RETRIES}.get(
        outcome, NOTIFY_FAILURES)
    counter.labels(destination).inc()


class LaneMetrics(lane.Observer):
    """The writer lane's observer (see `gitops.writer.Observer`)."""

    def planned(self, seconds: float) -> None:
        PLAN.observe(seconds)

    def committed(self, seconds: float) -> None:
        COMMIT.observe(seconds)

    def pushed(self, seconds: float, result: str) -> None:
        PUSH.observe(seconds)
        PUSH_ATTEMPTS.inc()
        if result == lane.PUSHED:
            LAST_PUSH.set_to_current_time()
        elif result == lane.REJECTED:
            PUSH_REJECTIONS.inc()
        elif result == lane.RATE_LIMITED:
            PUSH_RATE_LIMITED.inc()
        else:
            PUSH_FAILURES.inc()

    def published(self, commits: int) -> None:
        COMMITS_PER_PUSH.observe(commits)
        PUBLISHED.inc(commits)

    def answered(self, seconds: float) -> None:
        ANSWER.observe(seconds)


LANE = LaneMetrics()


class BundleMetrics:
    """Counts `POST /v1/bundles` answers from the request log's facts (a `RequestLog`
    observer), dry runs left out; knows which promises may be label values."""

    def __init__(self, promises: Iterable[str] = ()) -> None:
        self._known = set(promises)
        self._lock = threading.Lock()

    def __call__(self, finished: Finished) -> None:
        if finished.method != "POST" or finished.path != "/v1/bundles" or finished.dry_run:
            return
        BUNDLES.labels(self.label(finished.promise, finished.outcome), finished.outcome).inc()

    def label(self, promise: str | None, outcome: str) -> str:
        if promise is None:
            return OTHER
        with self._lock:
            # placed: the caller may write it and the store holds it (a pending bundle only
            # waits: any made-up promise can be pending)
            if (outcome in ("written", "unchanged") and promise not in self._known
                    and len(self._known) < MAX_PROMISE_LABELS):
                self._known.add(promise)
            return promise if promise in self._known else OTHER


def service_metrics(config: Config, writer: Writer) -> BundleMetrics:
    """The metrics of the service around `writer`: the scrape-time gauges read it from now
    on; the bundle counter returned (a `RequestLog` observer) knows the promises the tokens
    name and those the store holds now."""
    named = {p for token in config.tokens or () for p in token.promises if p != "*"}
    _, index, _ = writer.snapshot()
    held = {promise for promise, _, _ in (key for key, _ in index.requests.items())}
    STATE.watch(writer)
    return BundleMetrics(named | held)


class StateCollector(Collector):
    """Gauges read at scrape time: the writer queue, and per destination the objects and
    owners the published index holds, and the pending bundles. Worked out again only when
    the branch tip changed since the last scrape."""

    def __init__(self) -> None:
        self._writer: Writer | None = None
        self._lock = threading.Lock()
        self._tip: str | None = None
        self._counts: tuple[dict[str, int], dict[str, int], int] = ({}, {}, 0)

    def watch(self, writer: Writer) -> None:
        with self._lock:
            self._writer, self._tip, self._counts = writer, None, ({}, {}, 0)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        writer = self._writer
        if writer is None:
            return
        yield GaugeMetricFamily("statewriter_writer_queue_depth",
                                "Operations accepted and waiting for the writer lane",
                                value=writer.queue_depth())
        objects, owners, pending = self._state(writer)
        by_destination = GaugeMetricFamily("statewriter_destination_objects",
                                           "Objects stored for a destination", labels=["destination"])
        for name, count in sorted(objects.items()):
            by_destination.add_metric([name], count)
        yield by_destination
        owning = GaugeMetricFamily("statewriter_destination_owners",
                                   "Bundles (request or promise-level pipelines) placed at a destination",
                                   labels=["destination"])
        for name, count in sorted(owners.items()):
            owning.add_metric([name], count)
        yield owning
        yield GaugeMetricFamily("statewriter_pending_bundles",
                                "Bundles placed at no destination (Pending)", value=pending)

    def _state(self, writer: Writer) -> tuple[dict[str, int], dict[str, int], int]:
        with self._lock:
            tip, index, _ = writer.snapshot()
            if tip is not None and tip == self._tip:
                return self._counts
            objects = dict.fromkeys((name for name, _ in index.destinations.items()), 0)
            owners = dict(objects)
            # objects held, by kind: summing them costs what the kinds cost, not the objects
            for (destination, _, _), count in index.kinds.items():
                objects[destination] = objects.get(destination, 0) + count
            pending = 0
            for _, record in index.owners.items():
                if not record.destinations:
                    pending += 1
                for destination in record.destinations:
                    owners[destination] = owners.get(destination, 0) + 1
            self._tip, self._counts = tip, (objects, owners, pending)
            return self._counts


STATE = StateCollector()
REGISTRY.register(STATE)


class DeliveryCollector(Collector):
    """`statewriter_requests` by destination and delivery state, read at scrape time; worked
    out again only when the branch or what Flux reported changed since the last scrape (the
    commit of each owner record is remembered by its blob, so that costs no log walk)."""

    def __init__(self) -> None:
        self._source: tuple[Writer, Book] | None = None
        self._lock = threading.Lock()
        self._key: tuple[str | None, ...] = ()
        self._counts: dict[tuple[str, str], int] = {}

    def watch(self, writer: Writer, book: Book | None) -> None:
        with self._lock:
            self._source = None if book is None else (writer, book)
            self._key, self._counts = (), {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        source = self._source
        if source is None:
            return
        family = GaugeMetricFamily("statewriter_requests", "Requests placed at a destination, by "
                                   "the delivery state Flux reported", labels=["destination", "state"])
        for (destination, state), count in sorted(self._count(*source).items()):
            family.add_metric([destination, state], count)
        yield family

    def _count(self, writer: Writer, book: Book) -> dict[tuple[str, str], int]:
        with self._lock:
            tip, index, tree = writer.snapshot()
            key = (tip, *(book.tip(name) for name, _ in index.destinations.items()))
            if key == self._key:
                return self._counts
            requests: dict[tuple[str, str, str], list[OwnerRecord]] = {}
            for owner, record in index.owners.items():
                if not owner.is_promise_level:
                    requests.setdefault((owner.promise, owner.namespace, owner.name), []).append(record)
            commits = record_commits(writer.store, tree, tip,
                                     [r for records in requests.values() for r in records])
            counts: dict[tuple[str, str], int] = {}
            for records in requests.values():
                for found in request_delivery(index, records, commits, book).destinations:
                    counts[(found.destination, found.state)] = counts.get(
                        (found.destination, found.state), 0) + 1
            self._key, self._counts = key, counts
            return counts


DELIVERIES = DeliveryCollector()
REGISTRY.register(DELIVERIES)
