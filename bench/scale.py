"""Cost per write at any size: `python -m bench.scale` (a script, not a test).

Issue 10: a write must cost about the same however much the store holds. Measured in one
process, through the real writer lane on embedded stores (no HTTP: parsing is done before
the clock starts), one write at a time, each published before the next is sent:

- a destination holding `--requests` requests (100,000, spread over 100 namespaces): a new
  request and an update (a status change) in a namespace holding 1% of them;
- one promise/namespace holding `--crowded` requests (20,000, as `bench.crowded`);
- `--crds` CRDs shared across promises (5,000: 100 promises shipping 50 CRDs each with
  every request, in the destination's `dependencies/_cluster/`, one folder per promise's API
  group since layout 3): a new request of one of those promises (its CRDs unchanged), a
  promise upgrade (a request posting one of its CRDs changed: that file is rewritten) and a
  new promise (its first request, 50 new CRDs in a new group folder: `_cluster`'s
  kustomization gains an entry; the promise is deleted again after each, unmeasured);

each against the same write in a store holding only the destination (and what this run
wrote there). Every (store, write) pair is interleaved one by one, in a shuffled order per
step, so a slow stretch of this shared machine hits every figure alike. Then the cold start
(`statewriter serve` subprocess, process start to the first answer of GET /v1/destinations)
on the 100,000-request store against one holding only the destination, alternated.

Stores are built in bulk with the real planner (`bench.state`), once per version of the code
(`var/bench-seeds`). Prints each figure with its empty-store counterpart and the ratio.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python -m bench.scale` is the way; this keeps `python bench/scale.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.state import (
    ACTOR,
    LABELS,
    StateModel,
    bundle_json,
    request_names,
    seed_repo,
    seed_size,
)
from gitops import planner
from gitops.bundle import Bundle, parse_bundle
from gitops.index import Index
from gitops.store import EmbeddedStore
from gitops.tree import Tree
from gitops.writer import Done, Operation, Writer
from tests.procs import start_server

ROOT = Path(__file__).resolve().parents[1]
FLAT = 1.5  # a write within this factor of the empty store's counts as flat (issue 8's bound)
NAMESPACES = 100
CRDS_PER_PROMISE = 50
REQUESTS_PER_PROMISE = 2


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- bundles of promises that ship many CRDs ------------------------------------------------


def crd_promise(name: str) -> str:
    """The promise of a CRD-heavy request: its name up to the first '-' (`p042-r00001`)."""
    return name.partition("-")[0]


def crd_text(promise: str, number: int, version: str = "1") -> str:
    group = f"{promise}.example.com"
    return f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: thing{number:03d}s.{group}
  labels:
    app.kubernetes.io/version: '{version}'
spec:
  group: {group}
  names:
    kind: Thing{number:03d}
    listKind: Thing{number:03d}List
    plural: thing{number:03d}s
    singular: thing{number:03d}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""


def crd_bundle(namespace: str, name: str, upgraded: str = "1") -> dict[str, object]:
    """A request of a promise shipping CRDS_PER_PROMISE CRDs (the first at version
    `upgraded`) and one object of its first kind."""
    promise = crd_promise(name)
    crds = "---\n".join(crd_text(promise, n, upgraded if n == 0 else "1")
                        for n in range(CRDS_PER_PROMISE))
    thing = (f"apiVersion: {promise}.example.com/v1\nkind: Thing000\nmetadata:\n  name: {name}\n"
             "spec:\n  size: 1\n")
    return {"promise": promise, "request": {"namespace": namespace, "name": name},
            "destinationSelectors": dict(LABELS), "files": {"crds.yaml": crds, "thing.yaml": thing}}


def crd_requests(promises: int) -> list[tuple[str, str]]:
    return [(f"team-{p % NAMESPACES:03d}", f"p{p:03d}-r{r:05d}")
            for p in range(promises) for r in range(REQUESTS_PER_PROMISE)]


# -- the seeds ------------------------------------------------------------------------------


def destination_seed(requests: int) -> Path:
    def build() -> StateModel:
        model = StateModel()
        model.populate(request_names(requests, namespaces=NAMESPACES))
        return model
    return seed_repo("destination", build, requests, NAMESPACES)


def crowded_seed(requests: int) -> Path:
    def build() -> StateModel:
        model = StateModel()
        model.populate(request_names(requests, namespaces=1))
        return model
    return seed_repo("namespace", build, requests, 1)


def crds_seed(crds: int) -> Path:
    def build() -> StateModel:
        model = StateModel(crd_bundle)
        model.populate(crd_requests(crds // CRDS_PER_PROMISE))
        return model
    return seed_repo("crds", build, crds, CRDS_PER_PROMISE, REQUESTS_PER_PROMISE,
                     payload=crd_bundle)


def empty_seed() -> Path:
    return seed_repo("empty", StateModel)


# -- the writes -------------------------------------------------------------------------------


def _apply(index: Index, tree: Tree, *, bundle: Bundle) -> planner.Plan:
    return planner.plan_apply(index, tree, bundle, ACTOR)


def _delete(index: Index, tree: Tree, *, promise: str, namespace: str, name: str) -> planner.Plan:
    return planner.plan_delete(index, tree, promise, namespace, name, None, ACTOR)


def applying(payload: dict[str, object]) -> Operation:
    """The write of one bundle, parsed now: the clock sees only the writer lane's work, as
    in the service, where parsing happens before a bundle is queued."""
    return functools.partial(_apply, bundle=parse_bundle(payload))


@dataclass
class Probe:
    """One kind of write into one store: `make(step)` gives the operation to time and,
    optionally, one to run after it, untimed (undoing it)."""

    scenario: str
    store: str  # "big" or "empty"
    kind: str
    writer: Writer
    make: Callable[[int], tuple[Operation, Operation | None]]
    first: bool = False  # runs before the others of its step (creates what they update)
    times: list[float] = field(default_factory=list)

    def run(self, step: int, keep: bool) -> None:
        operation, undo = self.make(step)
        started = time.perf_counter()
        outcome = self.writer.submit(operation).result()
        elapsed = (time.perf_counter() - started) * 1000
        if not isinstance(outcome, Done) or not outcome.changed:
            raise RuntimeError(f"{self.scenario} {self.store} {self.kind}: not written: {outcome}")
        if keep:
            self.times.append(elapsed)
        if undo is not None:
            outcome = self.writer.submit(undo).result()
            if not isinstance(outcome, Done) or not outcome.changed:
                raise RuntimeError(f"{self.scenario} {self.store} {self.kind}: not undone: {outcome}")


def eck_probes(scenario: str, store: str, writer: Writer, namespace: str, tag: str,
               existing: list[str]) -> list[Probe]:
    """A new ECK request, and a status change of an existing one (`existing`, else of the
    requests this run creates)."""
    created: list[str] = []

    def new(step: int) -> tuple[Operation, Operation | None]:
        name = f"{tag}{step:06d}"
        created.append(name)
        return applying(bundle_json(namespace, name)), None

    def update(step: int) -> tuple[Operation, Operation | None]:
        name = existing[step] if existing else created[step]
        return applying({**bundle_json(namespace, name), "status": {"phase": f"bench-{step}"}}), None

    return [Probe(scenario, store, "new request", writer, new, first=True),
            Probe(scenario, store, "update (status)", writer, update)]


def crd_probes(scenario: str, store: str, writer: Writer, promise: str) -> list[Probe]:
    """In `promise` (whose CRDs the store holds, or the first step creates): a new request;
    an upgrade of one of its CRDs by an existing request; a new promise, deleted again."""
    namespace = "team-042"
    version = ["1"]  # of the promise's first CRD as stored: new requests post it unchanged

    def new(step: int) -> tuple[Operation, Operation | None]:
        return applying(crd_bundle(namespace, f"{promise}-n{step:05d}", version[0])), None

    def upgrade(step: int) -> tuple[Operation, Operation | None]:
        version[0] = f"2.{step}"
        return applying(crd_bundle(namespace, f"{promise}-n00000", version[0])), None

    def new_promise(step: int) -> tuple[Operation, Operation | None]:
        name = f"z{store[0]}{step:04d}-r00000"
        undo = functools.partial(_delete, promise=crd_promise(name), namespace=namespace, name=name)
        return applying(crd_bundle(namespace, name)), undo

    return [Probe(scenario, store, "new request", writer, new, first=True),
            Probe(scenario, store, "CRD upgrade", writer, upgrade),
            Probe(scenario, store, f"new promise (+{CRDS_PER_PROMISE} CRDs)", writer, new_promise)]


def interleave(probes: list[Probe], writes: int, warmup: int, seed: int) -> float:
    rng = random.Random(seed)
    started = time.perf_counter()
    for step in range(warmup + writes):
        for group in ([p for p in probes if p.first], [p for p in probes if not p.first]):
            rng.shuffle(group)
            for probe in group:
                probe.run(step, keep=step >= warmup)
    return time.perf_counter() - started


# -- cold start -------------------------------------------------------------------------------


@dataclass
class Start:
    seconds: float
    rss_kib: int | None


def cold_start(seed: Path, work: Path, label: str) -> Start:
    data = work / f"cold-{label}-{time.monotonic_ns()}"
    shutil.copytree(seed, data / "state.git")
    server = start_server(data, timeout=900)
    try:
        return Start(server.ready_after, server.peak_rss_kib())
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


# -- the report -------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return statistics.fmean(values)


def report(probes: list[Probe], cold: dict[str, list[Start]], sizes: dict[str, str]) -> list[str]:
    lines = ["| scenario | write | this store | empty store | ratio | flat (<= 1.5x) |",
             "|---|---|---:|---:|---:|---|"]
    empty = {(p.scenario == "crds", p.kind): p for p in probes if p.store == "empty"}
    for probe in probes:
        if probe.store != "big":
            continue
        twin = empty[(probe.scenario == "crds", probe.kind)]
        ratio = mean(probe.times) / mean(twin.times)
        lines.append(f"| {sizes[probe.scenario]} | {probe.kind} | {mean(probe.times):.1f} ms | "
                     f"{mean(twin.times):.1f} ms | {ratio:.2f}x | {'yes' if ratio <= FLAT else 'NO'} |")
    if cold:
        big, small = cold["big"], cold["empty"]
        best_big, best_small = min(s.seconds for s in big), min(s.seconds for s in small)
        lines.append(f"| {sizes['cold']} | cold start (best of {len(big)}) | {best_big:.2f} s | "
                     f"{best_small:.2f} s | {best_big / best_small:.2f}x | (grows with the state: "
                     "the index is loaded) |")
        rss = max(s.rss_kib or 0 for s in big)
        lines.append("")
        lines.append(f"Cold starts: {', '.join(f'{s.seconds:.2f} s' for s in big)} on "
                     f"{sizes['cold']}; {', '.join(f'{s.seconds:.2f} s' for s in small)} on a "
                     f"store holding only the destination. Peak RSS at the first answer on "
                     f"{sizes['cold']}: {rss / 1024:.0f} MiB.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000,
                        help="requests in the big destination, over 100 namespaces")
    parser.add_argument("--crowded", type=int, default=20_000,
                        help="requests of one promise in one namespace")
    parser.add_argument("--crds", type=int, default=5_000, help="CRDs shared across promises")
    parser.add_argument("--writes", type=int, default=200, help="measured writes per figure")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up writes per figure")
    parser.add_argument("--cold-runs", type=int, default=2, help="cold starts on each store (0: none)")
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args(argv)
    if args.requests // NAMESPACES < args.writes + args.warmup:
        parser.error("need --requests >= 100 x (--writes + --warmup)")
    if args.crowded < args.writes + args.warmup:
        parser.error("need --crowded >= --writes + --warmup")
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="statewriter-scale-", dir=ROOT / "var"))
    began = time.perf_counter()
    load = os.getloadavg()[0]
    try:
        seeds = {"destination": destination_seed(args.requests), "crowded": crowded_seed(args.crowded),
                 "crds": crds_seed(args.crds), "empty": empty_seed()}
        sizes = {
            "destination": f"destination of {args.requests:,} requests ({NAMESPACES} namespaces)",
            "crowded": f"promise/namespace of {args.crowded:,} requests",
            "crds": f"{args.crds:,} CRDs of {args.crds // CRDS_PER_PROMISE} promises in "
                    "dependencies/_cluster",
            "cold": f"{args.requests:,} requests ({seed_size(seeds['destination'])[1]:,} files)",
        }
        writers: dict[str, Writer] = {}
        try:
            for name, seed in seeds.items():
                copy = work / f"{name}.git"
                shutil.copytree(seed, copy)
                started = time.perf_counter()
                writers[name] = Writer(EmbeddedStore(copy))
                log(f"{name}: writer lane up in {time.perf_counter() - started:.1f} s")
            per_namespace = args.requests // NAMESPACES
            in_042 = [name for ns, name in request_names(args.requests, namespaces=NAMESPACES)
                      if ns == "team-042"][:per_namespace]
            crowded_names = [name for _, name in request_names(args.crowded, namespaces=1)]
            rng = random.Random(args.seed)
            probes = [
                *eck_probes("destination", "big", writers["destination"], "team-042", "d",
                            rng.sample(in_042, args.writes + args.warmup)),
                *eck_probes("crowded", "big", writers["crowded"], "team-000", "c",
                            rng.sample(crowded_names, args.writes + args.warmup)),
                *eck_probes("eck", "empty", writers["empty"], "team-042", "e", []),
                *crd_probes("crds", "big", writers["crds"], "p050"),
                *crd_probes("crds", "empty", writers["empty"], "q000"),
            ]
            elapsed = interleave(probes, args.writes, args.warmup, args.seed)
            log(f"{len(probes)} figures x {args.writes + args.warmup} writes in {elapsed:.0f} s")
        finally:
            for writer in writers.values():
                writer.close()
        cold: dict[str, list[Start]] = {"big": [], "empty": []}
        for run in range(args.cold_runs):
            for label, seed in (("big", seeds["destination"]), ("empty", seeds["empty"])):
                cold[label].append(cold_start(seed, work, label))
                log(f"cold start {run + 1} ({label}): {cold[label][-1].seconds:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Cost per write by store size (`python -m bench.scale`): one write at a time through "
          f"the writer lane, each published; mean of {args.writes} writes per figure after "
          f"{args.warmup} warm-up, all figures interleaved; {time.perf_counter() - began:.0f} s, "
          f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after.")
    print()
    print("\n".join(report(probes, cold if args.cold_runs else {}, sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
