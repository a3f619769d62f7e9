"""kustomize build time by destination size: `python -m bench.kustomize` (a script).

Flux's kustomize-controller runs the equivalent of `kubectl kustomize <path>` on every
reconcile of each of a destination's two Kustomizations, and kustomize's build time grows
faster than the object count (kubernetes-sigs/kustomize#5084: 4,000 objects about 45 s).
This builds, with the real planner (`bench.state`), destinations holding `--sizes` objects in
each section and times `kubectl kustomize` on them:

- resources: ECK requests (3 objects each) over 100 namespaces, layout 2 as written (a
  kustomization in every folder: namespace, promise, shard, request, pipeline);
- dependencies: promises shipping 50 CRDs each (`bench.scale`), in
  `dependencies/_cluster/<group>/` (layout 3: a folder and a kustomization per promise's API
  group, and `_cluster/`'s listing them);

and, for comparison on the same files, two other ways to build the resources:

- flat: one kustomization at `resources/` listing every object file (no nested ones);
- per namespace: one build of `resources/<namespace>` per namespace (what one Flux
  Kustomization per namespace would pay): the slowest one, and all of them together.

Each build's output is checked to hold the expected number of objects. A build over
`--timeout` seconds is reported as such. Prints a markdown table. `python -m bench.run` times
the layout 2 and per-namespace builds with the same functions, at its own sizes.
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


@dataclass(frozen=True)
class Resources:
    """A destination's resources section as statewriter writes it (layout 2), on disk."""

    folder: Path
    objects: int
    kustomizations: int


@dataclass(frozen=True)
class PerNamespace:
    """One build of `resources/<namespace>` per namespace."""

    builds: tuple[Build, ...]

    @property
    def times(self) -> list[float] | None:
        """Every build's seconds; None if one of them went over the timeout."""
        times = [build.seconds for build in self.builds if build.seconds is not None]
        return times if len(times) == len(self.builds) else None

    def slowest(self, timeout: float) -> str:
        times = self.times
        if times is None:
            return f"> {timeout:.0f} s"
        return f"{max(times):.2f} s (median {statistics.median(times):.2f} s)"

    def total(self) -> str:
        times = self.times
        return "-" if times is None else f"{sum(times):.1f} s"


def kustomize_version() -> str:
    """kubectl's "Kustomize Version: v..." line."""
    lines = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True,
                           check=False).stdout.split("\n")
    return lines[1] if len(lines) > 1 else ""


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


def checked(what: str, path: Path, want: int, timeout: float) -> Build:
    """`kubectl kustomize path`, refused unless it built `want` objects (or went over `timeout`)."""
    log(f"{what}: building")
    build = kustomize(path, timeout)
    if build.seconds is not None and build.objects != want:
        raise RuntimeError(f"{what}: built {build.objects} objects, not {want}")
    log(f"{what}: {seconds(build, timeout)}")
    return build


def write_resources(size: int, work: Path) -> Resources:
    """ECK requests of `size` objects (whole requests) over NAMESPACES namespaces, planned
    with the real planner; their destination's resources section written under `work`."""
    log(f"{size:,} objects: planning")
    requests = StateModel()
    requests.populate(request_names(size // OBJECTS_PER_REQUEST, namespaces=NAMESPACES))
    folder = materialise(requests, work / "requests") / layout.RESOURCES
    return Resources(folder, (size // OBJECTS_PER_REQUEST) * OBJECTS_PER_REQUEST,
                     sum(1 for _ in folder.rglob(layout.KUSTOMIZATION)))


def per_namespace(resources: Resources, timeout: float) -> PerNamespace:
    """Each namespace folder built on its own; together they must build every object."""
    folders = sorted(folder for folder in resources.folder.iterdir() if folder.is_dir())
    result = PerNamespace(tuple(kustomize(folder, timeout) for folder in folders))
    built = sum(build.objects for build in result.builds)
    if result.times is not None and built != resources.objects:
        raise RuntimeError(f"per namespace: built {built} objects, not {resources.objects}")
    log(f"{resources.objects:,} objects: per namespace {result.slowest(timeout)}, all {result.total()}")
    return result


BUILDS = ("nested", "dependencies", "flat", "per-namespace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,10000,30000",
                        help="objects per section, comma-separated")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per build")
    parser.add_argument("--builds", default=",".join(BUILDS),
                        help=f"which builds, comma-separated, of {', '.join(BUILDS)}")
    args = parser.parse_args(argv)
    if shutil.which("kubectl") is None:
        parser.error("kubectl is not on PATH")
    sizes = [int(size) for size in args.sizes.split(",")]
    builds = args.builds.split(",")
    if unknown := set(builds) - set(BUILDS):
        parser.error(f"unknown builds: {', '.join(sorted(unknown))}")
    (ROOT / "var").mkdir(exist_ok=True)
    print(f"`kubectl kustomize` build time by section size (`python -m bench.kustomize`); "
          f"{kustomize_version()}; timeout {args.timeout:.0f} s per build, "
          f"load average {os.getloadavg()[0]:.1f} at the start.")
    print()
    print("| objects | resources (layout 2) | kustomization files | dependencies (by group) "
          "| resources, flat | per namespace: slowest | per namespace: all |")
    print("|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for size in sizes:
        work = Path(tempfile.mkdtemp(prefix="statewriter-kustomize-", dir=ROOT / "var"))
        try:
            print(row(size, builds, args.timeout, work), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end.")
    return 0


def row(size: int, builds: list[str], timeout: float, work: Path) -> str:
    """One table row: the builds asked for on `size` objects per section ("-": not asked)."""
    resources = write_resources(size, work)
    cells = {name: "-" for name in BUILDS} | {"slowest": "-"}
    if "nested" in builds:
        cells["nested"] = seconds(checked(f"{size:,} objects: resources", resources.folder,
                                          resources.objects, timeout), timeout)
    if "dependencies" in builds:
        crds = StateModel(crd_bundle)
        promises = size // CRDS_PER_PROMISE
        crds.populate((f"team-{p % NAMESPACES:03d}", f"p{p:04d}-r00000") for p in range(promises))
        dependencies = materialise(crds, work / "crds") / layout.DEPENDENCIES
        cells["dependencies"] = seconds(checked(f"{size:,} objects: dependencies", dependencies,
                                                promises * CRDS_PER_PROMISE, timeout), timeout)
    if "per-namespace" in builds:
        each = per_namespace(resources, timeout)
        cells["slowest"], cells["per-namespace"] = each.slowest(timeout), each.total()
    if "flat" in builds:
        flatten(resources.folder)
        cells["flat"] = seconds(checked(f"{size:,} objects: resources, flat", resources.folder,
                                        resources.objects, timeout), timeout)
    return (f"| {resources.objects:,} | {cells['nested']} | {resources.kustomizations:,} "
            f"| {cells['dependencies']} | {cells['flat']} | {cells['slowest']} "
            f"| {cells['per-namespace']} |")


if __name__ == "__main__":
    sys.exit(main())
