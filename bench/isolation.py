"""Flux builds of a destination isolated by namespace: `python -m bench.isolation` (a script).

With `isolation: namespace`, Flux builds the resources root (the children's Kustomizations)
and each namespace's child on its own, where the destination-wide layout is one build of
every resource. For `--sizes` objects (ECK requests, 3 objects each, over 100 namespaces),
planned with the real planner (`bench.state`), this times `kubectl kustomize` on:

- the destination-wide resources section (`isolation: destination`, as Kratix lays it out);
- the isolated root, each child (the slowest and the median), and all children one after
  the other (what one kustomize-controller worker pays per reconcile of all of them);

checking each build's object count, and that every request's write changes files of its own
namespace's child only (`children per write`: the most any of `--writes` new requests
changed). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # `python bench/isolation.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.kustomize import OBJECTS_PER_REQUEST, ROOT, checked, kustomize_version, log, materialise, seconds
from bench.scale import NAMESPACES
from bench.state import DESTINATION, StateModel, request_names
from gitops import layout
from gitops.isolation import FLUX_FOLDER, touched_children


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,10000,30000", help="objects, comma-separated")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per build")
    parser.add_argument("--writes", type=int, default=50, help="new requests to check")
    parser.add_argument("--no-wide", action="store_true",
                        help="skip the destination-wide build (minutes at 30,000 objects)")
    args = parser.parse_args(argv)
    if shutil.which("kubectl") is None:
        parser.error("kubectl is not on PATH")
    (ROOT / "var").mkdir(exist_ok=True)
    print(f"Flux builds by isolation (`python -m bench.isolation`); {kustomize_version()}; "
          f"{NAMESPACES} namespaces; load average {os.getloadavg()[0]:.1f} at the start.\n")
    print("| objects | destination-wide build | isolated root | child: slowest | child: median "
          "| all children | children per write |")
    print("|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix="statewriter-isolation-", dir=ROOT / "var"))
        try:
            print(row(size, args, work), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end.")
    return 0


def row(size: int, args: argparse.Namespace, work: Path) -> str:
    requests = size // OBJECTS_PER_REQUEST
    objects = requests * OBJECTS_PER_REQUEST
    names = request_names(requests, namespaces=NAMESPACES)
    wide = "-"
    if not args.no_wide:
        log(f"{objects:,} objects: planning, destination-wide")
        model = StateModel()
        model.populate(names)
        folder = materialise(model, work / "wide") / layout.RESOURCES
        wide = seconds(checked(f"{objects:,} destination-wide", folder, objects, args.timeout),
                       args.timeout)
    log(f"{objects:,} objects: planning, isolated")
    model = StateModel(isolation="namespace")
    model.populate(names)
    folder = materialise(model, work / "isolated") / layout.RESOURCES
    children = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_"))
    root = checked(f"{objects:,} isolated root", folder, len(children), args.timeout)
    builds = [checked(f"{objects:,} child {name}", folder / name, _count(model, name),
                      args.timeout) for name in children]
    times = [b.seconds for b in builds if b.seconds is not None]
    if len(times) != len(builds):
        slowest = median = total = f"> {args.timeout:.0f} s"
    else:
        slowest, median, total = (f"{max(times):.2f} s", f"{statistics.median(times):.2f} s",
                                  f"{sum(times):.1f} s")
    resources = f"{DESTINATION}/{layout.RESOURCES}"
    most = 0
    for namespace, name in request_names(args.writes, start=requests, namespaces=NAMESPACES,
                                         tag="w"):
        changed = model.add(namespace, name)
        under = [p for p in changed if p.startswith(resources + "/")
                 and not p.startswith(f"{resources}/{FLUX_FOLDER}/")]
        touched = touched_children(resources, under)
        assert touched <= {namespace}, (namespace, touched)
        most = max(most, len(touched))
    return (f"| {objects:,} | {wide} | {seconds(root, args.timeout)} | {slowest} | {median} "
            f"| {total} | {most} of {len(children)} |")


def _count(model: StateModel, namespace: str) -> int:
    prefix = f"{DESTINATION}/{layout.RESOURCES}/{namespace}/"
    return sum(1 for p in model.files if p.startswith(prefix)
               and not p.endswith("/" + layout.KUSTOMIZATION))


if __name__ == "__main__":
    sys.exit(main())
