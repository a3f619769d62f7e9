"""One crowded namespace: `python -m bench.crowded [--requests 20000]` (a script, not a test).

docs/reference.md section 2, (v2) Fan-out: request folders live under
`<dest>/resources/<namespace>/<promise>/<shard>/<request>/<pipeline>/` and owner records
under `.statewriter/owners/<promise>/<namespace>/<shard>/...`, so a write in a namespace
that holds many requests of a promise should cost about what it costs in an empty one
(target: within 1.5x at 20,000 requests, issue 8).

Measured in one process, through the writer lane on embedded stores (no HTTP), one write at
a time, each published before the next is sent, in three lanes:

- crowded: a namespace holding `--requests` requests of the promise (the store is built in
  bulk with the real planner, `bench.state`);
- empty namespace: another namespace of that same store, holding none of them at the start;
- empty store: a store holding only the destination.

In each lane two kinds of write: a new request, and an update (a status change) of an
existing one (in the empty lanes, of a request this run created there). After a common
warm-up, the six (lane, kind) writes are interleaved one by one in a shuffled order per
step, so a slow stretch of the machine hits every figure alike. Ratios are of mean times;
their spread is shown over consecutive fifths of the run.

Then the folder-width check of `bench.fanout` (`--fanout-requests`, 0 to skip) on the same
bulk model, extended to that many requests in the crowded namespace.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/crowded.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import fanout
from bench.state import ACTOR, PROMISE, StateModel, bundle_json, request_names, write_state_repo
from gitops import planner
from gitops.bundle import Bundle, parse_bundle
from gitops.index import Index
from gitops.store import EmbeddedStore
from gitops.tree import Tree
from gitops.writer import Done, Writer

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5
KINDS = ("new", "update")
CHUNKS = 5  # the run is cut in this many consecutive parts to show how stable a ratio is


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _apply(index: Index, tree: Tree, *, bundle: Bundle) -> planner.Plan:
    return planner.plan_apply(index, tree, bundle, ACTOR)


@dataclass
class Lane:
    """Writes into one namespace of one store."""

    label: str
    writer: Writer
    namespace: str
    holding: int  # requests of the promise in the namespace at the start
    tag: str  # prefix of the names of the requests this run creates here
    updatable: list[str]  # requests to update, in order (grows with the new ones if empty)
    created: int = 0
    updated: int = 0
    times: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def bundle(self, kind: str) -> Bundle:
        """The next write of `kind` (built before the clock starts: parsing is not the
        lane's work)."""
        if kind == "new":
            name = f"{self.tag}{self.created:06d}"
            self.created += 1
            if self.holding == 0:
                self.updatable.append(name)
            return parse_bundle(bundle_json(self.namespace, name))
        name = self.updatable[self.updated]
        self.updated += 1
        status = {"phase": f"bench-{self.updated}"}  # a new status every time: a real change
        return parse_bundle({**bundle_json(self.namespace, name), "status": status})

    def write(self, kind: str, keep: bool) -> None:
        bundle = self.bundle(kind)
        started = time.perf_counter()
        outcome = self.writer.submit(functools.partial(_apply, bundle=bundle)).result()
        elapsed = (time.perf_counter() - started) * 1000
        if not isinstance(outcome, Done) or not outcome.changed:
            raise RuntimeError(f"{self.label}: {kind} not written: {outcome}")
        if keep:
            self.times[kind].append(elapsed)


def steps(lanes: list[Lane], count: int, rng: random.Random) -> Iterator[tuple[Lane, str]]:
    """`count` steps, each one write of every (lane, kind) in a fresh random order. New
    writes of a step come before its updates, so an empty lane always has a request to
    update that this run created (a different one each time)."""
    for _ in range(count):
        for kind in KINDS:
            order = list(lanes)
            rng.shuffle(order)
            for lane in order:
                yield lane, kind


def summary(times: list[float]) -> str:
    q = statistics.quantiles(times, n=10)
    return (f"mean {statistics.fmean(times):6.2f} ms  median {statistics.median(times):6.2f}  "
            f"p10-p90 {q[0]:.2f}-{q[-1]:.2f}")


def chunk_ratios(crowded: list[float], empty: list[float]) -> list[float]:
    size = len(crowded) // CHUNKS
    return [statistics.fmean(crowded[i * size:(i + 1) * size])
            / statistics.fmean(empty[i * size:(i + 1) * size]) for i in range(CHUNKS)]


def build_stores(work: Path, requests: int) -> tuple[StateModel, Path, Path]:
    started = time.perf_counter()
    log(f"building the state of {requests:,} requests in one namespace with the real planner")
    model = StateModel()
    model.populate(request_names(requests, namespaces=1))
    write_state_repo(work / "crowded.git", model)
    write_state_repo(work / "empty.git", StateModel())
    log(f"built ({len(model.files):,} files) in {time.perf_counter() - started:.0f} s")
    return model, work / "crowded.git", work / "empty.git"


def measure(model: StateModel, crowded_git: Path, empty_git: Path, requests: int, writes: int,
            warmup: int, seed: int) -> bool:
    """The timing; whether the target is met for both kinds against both empty lanes."""
    rng = random.Random(seed)
    existing = [name for _, name in request_names(requests, namespaces=1)]
    namespace = request_names(1, namespaces=1)[0][0]
    big, small = Writer(EmbeddedStore(crowded_git)), Writer(EmbeddedStore(empty_git))
    try:
        lanes = [
            Lane("crowded", big, namespace, requests, "n", rng.sample(existing, writes + warmup)),
            Lane("empty namespace", big, "team-empty", 0, "e", []),
            Lane("empty store", small, namespace, 0, "s", []),
        ]
        started = time.perf_counter()
        for lane, kind in steps(lanes, warmup, rng):
            lane.write(kind, keep=False)
        for lane, kind in steps(lanes, writes, rng):
            lane.write(kind, keep=True)
        elapsed = time.perf_counter() - started
        held = sum(1 for record in big.snapshot()[1].owners.values()
                   if record.owner.promise == PROMISE and record.owner.namespace == namespace)
    finally:
        big.close()
        small.close()
    if held != requests + lanes[0].created:
        raise RuntimeError(f"the crowded namespace holds {held:,} requests, not "
                           f"{requests + lanes[0].created:,}")
    load = os.getloadavg()
    total = len(lanes) * len(KINDS) * (warmup + writes)
    print(f"{requests:,} requests of {PROMISE} in namespace {namespace} ({len(model.files):,} files "
          f"in the store at the start). Each figure: {writes} writes, one at a time, each "
          f"published, after {warmup} warm-up writes; {total:,} writes interleaved in "
          f"{elapsed:.0f} s; load average {load[0]:.2f}/{load[1]:.2f}.")
    for lane in lanes:
        store = "the crowded store" if lane.writer is big else "a store holding only the destination"
        print(f"  {lane.label}: namespace {lane.namespace} of {store}, {lane.holding:,} requests "
              f"of the promise at the start, {lane.holding + lane.created:,} at the end")
    for lane in lanes:
        for kind in KINDS:
            print(f"  {lane.label:<16} {kind:<6} {summary(lane.times[kind])}")
    crowded, ok = lanes[0], True
    for empty in lanes[1:]:
        for kind in KINDS:
            ratio = statistics.fmean(crowded.times[kind]) / statistics.fmean(empty.times[kind])
            parts = chunk_ratios(crowded.times[kind], empty.times[kind])
            median = statistics.median(crowded.times[kind]) / statistics.median(empty.times[kind])
            met = ratio <= TARGET
            ok = ok and met
            print(f"  {kind:<6} crowded / {empty.label:<16} {ratio:.2f}x  (fifths "
                  f"{min(parts):.2f}-{max(parts):.2f}x; of medians {median:.2f}x)  target "
                  f"<= {TARGET}x: {'met' if met else 'MISSED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000,
                        help="requests of the promise in the crowded namespace")
    parser.add_argument("--writes", type=int, default=400, help="measured writes per figure")
    parser.add_argument("--warmup", type=int, default=40, help="warm-up writes per figure")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--fanout-requests", type=int, default=100_000,
                        help="requests for the folder-width check (0: skip it)")
    parser.add_argument("--model-check", type=int, default=1_000,
                        help="requests to compare bulk model and writer lane on (0: skip)")
    args = parser.parse_args(argv)
    if args.writes < CHUNKS or args.requests < args.writes + args.warmup:
        parser.error(f"need --writes >= {CHUNKS} and --requests >= --writes + --warmup")
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="statewriter-crowded-", dir=ROOT / "var"))
    started = time.perf_counter()
    try:
        model, crowded_git, empty_git = build_stores(work, args.requests)
        ok = measure(model, crowded_git, empty_git, args.requests, args.writes, args.warmup,
                     args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"crowded-write target (<= {TARGET}x against an empty namespace and an empty store): "
          f"{'met' if ok else 'MISSED'} "
          f"({time.perf_counter() - started:.0f} s)")
    if args.fanout_requests:
        started = time.perf_counter()
        base = model if args.fanout_requests >= args.requests else None
        fits = fanout.run_check(args.fanout_requests, args.model_check, model=base)
        print(f"fan-out target (no folder over {fanout.LIMIT:,} entries at "
              f"{args.fanout_requests:,} requests): {'met' if fits else 'MISSED'} "
              f"({time.perf_counter() - started:.0f} s)")
        ok = ok and fits
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
