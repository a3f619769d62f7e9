"""Folder widths at scale: `python -m bench.fanout [--fanout-requests 100000]` (a script).

docs/reference.md section 2, (v2) Fan-out: no folder statewriter writes under a destination path or
under `.statewriter/owners` holds more than 1,000 entries with up to 100,000 requests of one
promise in one namespace. This builds that state with the real planner, in bulk
(`bench.state.StateModel.populate`: each request planned by `gitops.planner.plan_apply`,
owner records with their serials, the layout record, kustomizations recomputed from the
final listing), and reports the widest folder under each root; exit status 1 when one holds
more than the limit.

Before that it checks the bulk model against the real thing: the same `--model-check`
requests applied one at a time through the writer lane on an embedded store (real
planner, real commits, every kustomization as the planner writes it) must give exactly the
files of `StateModel.populate`, path for path and byte for byte. What the 100,000-request
state does not go through is git itself (no repository is written for it: folder entries
are counted from the model's paths, which is what git's trees would hold).
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # `python bench/fanout.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.state import ACTOR, DESTINATION, LABELS, StateModel, bundle_json, request_names
from gitops import layout, planner
from gitops.bundle import parse_bundle
from gitops.index import Index
from gitops.store import EmbeddedStore
from gitops.tree import Tree
from gitops.writer import Done, Writer

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 1_000
# Roots the contract bounds; `.statewriter` as a whole is reported for information.
BOUNDED = (DESTINATION, layout.OWNERS_DIR)
REPORTED = (*BOUNDED, layout.STATE)


class Width(NamedTuple):
    entries: int
    folder: str


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def widths(children: dict[str, set[str]], root: str) -> list[Width]:
    """Every folder at or below `root` with its number of entries, widest first."""
    found = [Width(len(entries), folder) for folder, entries in children.items()
             if folder == root or folder.startswith(root + "/")]
    return sorted(found, key=lambda w: (-w.entries, w.folder))


def build(requests: int, model: StateModel | None = None) -> StateModel:
    """The state of `requests` requests of one promise in one namespace (extending `model`
    when it holds the first of them already)."""
    if model is None:
        model = StateModel()
    names = request_names(requests, namespaces=1)
    model.populate(names[model.serial:])
    return model


def _apply_request(index: Index, tree: Tree, *, namespace: str, name: str) -> planner.Plan:
    return planner.plan_apply(index, tree, parse_bundle(bundle_json(namespace, name)), ACTOR)


def _put_destination(index: Index, tree: Tree) -> planner.Plan:
    return planner.plan_put_destination(index, tree, DESTINATION, LABELS, None, ACTOR)


def check_model(requests: int) -> list[str]:
    """Differences between `StateModel.populate` and the writer lane applying the same
    requests one at a time (empty when they agree)."""
    names = request_names(requests, namespaces=1)
    model = StateModel()
    model.populate(names)
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="statewriter-fanout-", dir=ROOT / "var"))
    try:
        writer = Writer(EmbeddedStore(work / "state.git"))
        try:
            operations: list[Callable[[Index, Tree], planner.Plan]] = [_put_destination]
            operations += [functools.partial(_apply_request, namespace=ns, name=n)
                           for ns, n in names]
            for operation in operations:
                outcome = writer.submit(operation).result()
                if not isinstance(outcome, Done) or not outcome.changed:
                    raise RuntimeError(f"not written: {outcome}")
            real = dict(writer.snapshot()[2].files(""))
        finally:
            writer.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    problems = [f"only in the writer's tree: {p}" for p in sorted(real.keys() - model.files)]
    problems += [f"only in the model: {p}" for p in sorted(model.files.keys() - real)]
    problems += [f"differs: {p}" for p in sorted(real.keys() & model.files.keys())
                 if real[p] != model.files[p]]
    return problems


def report(model: StateModel, limit: int = LIMIT, roots: Sequence[str] = REPORTED) -> bool:
    """Print the widest folders under each root; whether every bounded root is within
    `limit`."""
    records = sum(1 for p in model.files if p.startswith(layout.OWNERS_DIR + "/"))
    print(f"state of {model.serial:,} requests of one promise in one namespace: "
          f"{len(model.files):,} files, {records:,} owner records, {len(model.children):,} "
          f"folders, layout record {'present' if layout.LAYOUT_RECORD in model.files else 'MISSING'}")
    ok = layout.LAYOUT_RECORD in model.files and records == model.serial
    for root in roots:
        found = widths(model.children, root)
        bounded = root in BOUNDED
        over = [w for w in found if w.entries > limit]
        top = ", ".join(f"{w.folder}/ {w.entries:,}" for w in found[:3])
        verdict = (("FAIL: " if over else "ok: ") + f"{len(over)} folder(s) over {limit:,}"
                   if bounded else "for information")
        print(f"  widest under {root}/ ({len(found):,} folders): {top}  [{verdict}]")
        ok = ok and not (bounded and over)
    return ok


def run_check(requests: int, model_check: int, limit: int = LIMIT,
              model: StateModel | None = None) -> bool:
    """The model check, the build and the report; whether every target is met."""
    ok = True
    if model_check:
        started = time.perf_counter()
        problems = check_model(model_check)
        print(f"bulk model vs the writer lane, {model_check:,} requests applied one at a time: "
              + ("identical trees" if not problems else f"{len(problems)} DIFFERENCES")
              + f" ({time.perf_counter() - started:.0f} s)")
        for line in problems[:20]:
            print(f"  {line}")
        ok = not problems
    started = time.perf_counter()
    log(f"building the state of {requests:,} requests with the real planner")
    model = build(requests, model)
    log(f"built in {time.perf_counter() - started:.0f} s")
    return report(model, limit) and ok


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout-requests", type=int, default=100_000,
                        help="requests of one promise in one namespace (default 100,000)")
    parser.add_argument("--model-check", type=int, default=1_000,
                        help="requests to compare bulk model and writer lane on (0: skip)")
    parser.add_argument("--limit", type=int, default=LIMIT)
    args = parser.parse_args(list(argv) if argv is not None else None)
    started = time.perf_counter()
    ok = run_check(args.fanout_requests, args.model_check, args.limit)
    print(f"fan-out target (no folder over {args.limit:,} entries at "
          f"{args.fanout_requests:,} requests): {'met' if ok else 'MISSED'} "
          f"({time.perf_counter() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
