"""One crowded namespace: `python -m bench.crowded [--requests 10000]` (a script, not a test).

The layout keeps every request of a promise in one namespace in one folder, so a write
there rebuilds a tree (and, for a new request, a kustomization) with one entry per request.
This measures, through the writer lane on an embedded store (no HTTP), the time of one
write at a time on a repository holding N requests of one promise in a single namespace:
a new request, and an update (a status change) of an existing one, each with its publish.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/crowded.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.state import StateModel, bundle_json, request_names, write_state_repo
from gitops import planner
from gitops.bundle import Bundle, parse_bundle
from gitops.index import Index
from gitops.store import EmbeddedStore
from gitops.tree import Tree
from gitops.writer import Done, Writer

ROOT = Path(__file__).resolve().parents[1]


def _apply(index: Index, tree: Tree, *, bundle: Bundle) -> planner.Plan:
    return planner.plan_apply(index, tree, bundle, "bench")


def one_at_a_time(writer: Writer, bundles: list[Bundle]) -> float:
    """Milliseconds per bundle, each applied and published before the next is sent."""
    started = time.perf_counter()
    for bundle in bundles:
        apply = functools.partial(_apply, bundle=bundle)
        outcome = writer.submit(apply).result()
        if not isinstance(outcome, Done) or not outcome.changed:
            raise RuntimeError(f"not written: {outcome}")
    return (time.perf_counter() - started) / len(bundles) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args(argv)
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="statewriter-crowded-", dir=ROOT / "var"))
    try:
        existing = request_names(args.requests, namespaces=1)
        model = StateModel()
        model.populate(existing)
        write_state_repo(work / "state.git", model)
        writer = Writer(EmbeddedStore(work / "state.git"))
        try:
            new = [parse_bundle(bundle_json(ns, name))
                   for ns, name in request_names(args.writes, 10_000_000, namespaces=1, tag="n")]
            updates = [parse_bundle({**bundle_json(ns, name), "status": {"phase": "bench"}})
                       for ns, name in existing[:args.writes]]
            new_ms, update_ms = one_at_a_time(writer, new), one_at_a_time(writer, updates)
        finally:
            writer.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.requests:,} requests in one namespace ({len(model.files):,} files): "
          f"a new request {new_ms:.1f} ms, an update {update_ms:.1f} ms "
          f"(one write at a time, each published)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
