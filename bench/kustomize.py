"""kustomize build time by destination size: `python -m bench.kustomize` (a script).

Flux's kustomize-controller runs the equivalent of `kubectl kustomize <path>` on every
reconcile of each of a destination's two Kustomizations, and kustomize's build time grows
faster than the object count (kubernetes-sigs/kustomize#5084: 4,000 objects about 45 s).
This builds, with the real planner (`bench.state`), destinations holding `--sizes` objects in
each section and times `kubectl kustomize` on them:

- resources: ECK requests (3 objects each) over 100 namespaces, layout 2 as written (a
  kustomization in every folder: namespace, promise, shard, request, pipeline);
- dependencies: promises shipping 50 CRDs each (`bench.scale`), all in
  `dependencies/_cluster/` (one kustomization listing every file);

and, for comparison on the same files, two other ways to build the resources:

- flat: one kustomization at `resources/` listing every object file (no nested ones);
- per namespace: one build of `resources/<namespace>` per namespace (what one Flux
  Kustomization per namespace would pay): the slowest one, and all of them together.

Each build's output is checked to hold the expected number of objects. A build over
`--timeout` seconds is reported as such. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/kustomize.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import CRDS_PER_PROMISE, NAMESPACES, crd_bundle
from bench.state import DESTINATION, StateModel, request_names
from gitops import layout

ROOT = Path(__file__).resolve().parents[1]
OBJECTS_PER_REQUEST = 3  # Elasticsearch, Kibana, Beat (the CRDs and the operator are shared)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Build:
    seconds: float | None  # None: over the timeout
    objects: int


def kustomize(path: Path, timeout: float) -> Build:
    started = time.perf_counter()
    try:
        proc = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Build(None, 0)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {proc.stderr.decode()[-500:]}")
    objects = sum(1 for line in proc.stdout.splitlines() if line.startswith(b"kind: "))
    return Build(seconds, objects)


def materialise(model: StateModel, target: Path) -> Path:
    """The destination's files of `model` under `target`; returns the destination folder."""
    for path, content in model.files.items():
        if path.startswith(DESTINATION + "/"):
            file = target / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(content)
    return target / DESTINATION


def flatten(section: Path) -> None:
    """One kustomization at `section` listing every object file below it."""
    files = []
    for kustomization in section.rglob(layout.KUSTOMIZATION):
        kustomization.unlink()
    for file in section.rglob("*.yaml"):
        files.append(str(file.relative_to(section)))
    (section / layout.KUSTOMIZATION).write_bytes(layout.kustomization(files))


def seconds(build: Build, timeout: float) -> str:
    return f"> {timeout:.0f} s" if build.seconds is None else f"{build.seconds:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,10000,30000",
                        help="objects per section, comma-separated")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per build")
    parser.add_argument("--no-alternatives", action="store_true",
                        help="only the layout as written")
    args = parser.parse_args(argv)
    if shutil.which("kubectl") is None:
        parser.error("kubectl is not on PATH")
    sizes = [int(size) for size in args.sizes.split(",")]
    (ROOT / "var").mkdir(exist_ok=True)
    version = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True,
                             check=False).stdout.split("\n")
    rows = []
    began, load = time.perf_counter(), os.getloadavg()[0]
    for size in sizes:
        work = Path(tempfile.mkdtemp(prefix="statewriter-kustomize-", dir=ROOT / "var"))
        try:
            log(f"{size:,} objects: planning")
            requests = StateModel()
            requests.populate(request_names(size // OBJECTS_PER_REQUEST, namespaces=NAMESPACES))
            crds = StateModel(crd_bundle)
            promises = size // CRDS_PER_PROMISE
            crds.populate((f"team-{p % NAMESPACES:03d}", f"p{p:04d}-r00000") for p in range(promises))
            resources = materialise(requests, work / "requests") / layout.RESOURCES
            dependencies = materialise(crds, work / "crds") / layout.DEPENDENCIES
            kustomizations = sum(1 for _ in resources.rglob(layout.KUSTOMIZATION))
            log(f"{size:,} objects: building")
            nested = kustomize(resources, args.timeout)
            shared = kustomize(dependencies, args.timeout)
            expected = (size // OBJECTS_PER_REQUEST) * OBJECTS_PER_REQUEST
            for what, build, want in (("resources", nested, expected),
                                      ("dependencies", shared, promises * CRDS_PER_PROMISE)):
                if build.seconds is not None and build.objects != want:
                    raise RuntimeError(f"{what}: built {build.objects} objects, not {want}")
            row = {"objects": expected, "kustomizations": kustomizations, "nested": nested,
                   "dependencies": shared}
            if not args.no_alternatives:
                namespaces = [kustomize(folder, args.timeout) for folder in sorted(resources.iterdir())
                              if folder.is_dir()]
                row["per_namespace"] = namespaces
                flatten(resources)
                row["flat"] = kustomize(resources, args.timeout)
            rows.append(row)
            log(f"{size:,} objects: resources {seconds(nested, args.timeout)}, dependencies "
                f"{seconds(shared, args.timeout)}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"`kubectl kustomize` build time by section size (`python -m bench.kustomize`); "
          f"{version[1] if len(version) > 1 else ''}; {time.perf_counter() - began:.0f} s, load "
          f"average {load:.1f} before, {os.getloadavg()[0]:.1f} after.")
    print()
    head = "| objects | resources (layout 2) | kustomization files | dependencies (one folder) |"
    rule = "|---:|---:|---:|---:|"
    if not args.no_alternatives:
        head += " resources, flat | per namespace: slowest | per namespace: all |"
        rule += "---:|---:|---:|"
    print(head)
    print(rule)
    for row in rows:
        line = (f"| {row['objects']:,} | {seconds(row['nested'], args.timeout)} | "
                f"{row['kustomizations']:,} | {seconds(row['dependencies'], args.timeout)} |")
        if "flat" in row:
            per = row["per_namespace"]
            done = [b.seconds for b in per if b.seconds is not None]
            slowest = f"{max(done):.2f} s" if len(done) == len(per) else f"> {args.timeout:.0f} s"
            total = f"{sum(done):.1f} s" if len(done) == len(per) else "-"
            line += (f" {seconds(row['flat'], args.timeout)} | {slowest} (median "
                     f"{statistics.median(done):.2f} s) | {total} |")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
