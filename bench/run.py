"""statewriter benchmark: `python -m bench.run [--quick]` (a script, not a test).

On repositories already holding N files (generated in statewriter's own format), it
measures in one run:

- the live service (`statewriter serve` subprocess, embedded store) with 1, 4 and 16
  concurrent clients posting distinct ECK request bundles: bundles/s, p50/p99 latency;
- the service with a file:// remote (acknowledged only after `git push`), 16 clients;
- a naive writer (worktree: write files, `git add -A`, commit, push per bundle);
- one raw `git fast-import` stream of the same commits (the machine's limit);
- the service's peak RSS (VmHWM) and the cold start on a 10k-request repository
  (process start to the first answer of GET /v1/destinations).

Results go to bench/results/latest.md and stdout, with PASS/MISS against the targets of
issue 3.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import Result, drive_service, fast_import_writer, naive_writer
from bench.state import StateModel, request_names, write_state_repo
from tests.procs import owned_requests, start_server

ROOT = Path(__file__).resolve().parents[1]
FILES_PER_REQUEST = 6.05  # an ECK request adds ~6 files (3 objects, 2 kustomizations, 1 record)


@dataclass(frozen=True)
class Profile:
    sizes: tuple[int, ...]  # files already in the repository
    clients: dict[int, int]  # concurrent clients -> bundles sent at that level
    remote_bundles: int  # bundles through the file:// remote service (16 clients)
    naive_bundles: int
    cold_requests: int
    cold_runs: int


QUICK = Profile((1_000, 5_000), {1: 15, 4: 40, 16: 80}, 80, 8, 1_000, 1)
FULL = Profile((1_000, 20_000, 100_000), {1: 60, 4: 160, 16: 320}, 320, 30, 10_000, 2)


@dataclass
class SizeResults:
    nominal: int  # the size asked for (the repository holds at least that many files)
    files: int
    requests: int
    service: dict[int, Result] = field(default_factory=dict)
    remote: Result | None = None
    naive: Result | None = None
    fast_import: Result | None = None
    rss_kib: int | None = None
    remote_rss_kib: int | None = None
    start_seconds: float = 0.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_size(model: StateModel, seed: Path, work: Path, profile: Profile, size: int) -> SizeResults:
    """All measurements on copies of `seed` (a repository holding `model`)."""
    results = SizeResults(size, len(model.files), model.serial)
    levels = sorted(profile.clients)
    names: dict[int, list[tuple[str, str]]] = {}
    start = 10_000_000
    for level in levels:
        names[level] = request_names(profile.clients[level], start, tag=f"c{level}x")
        start += profile.clients[level]
    remote_names = request_names(profile.remote_bundles, start, tag="rmx")

    # the same bundles as commits, for the naive writer and fast-import (model is a copy)
    every = [n for level in levels for n in names[level]]
    commits = [(f"apply elastic-cloud {ns}/{name}\n", model.add(ns, name)) for ns, name in every]

    data = work / "service"
    shutil.copytree(seed, data / "state.git")
    server = start_server(data, timeout=600)
    results.start_seconds = server.ready_after
    log(f"  service up in {server.ready_after:.2f}s")
    try:
        drive_service(server.url, request_names(3, 20_000_000, tag="warm"), 1, "warm-up")
        for level in levels:
            result = drive_service(server.url, names[level], level, f"service, {level} clients")
            results.service[level] = result
            log(f"  service {level:>2} clients: {result.rate:7.1f} bundles/s "
                f"p50 {ms(result.percentile(0.5))} p99 {ms(result.percentile(0.99))}")
        results.rss_kib = server.peak_rss_kib()
    finally:
        server.stop()
    missing = set(every) - owned_requests(data / "state.git")
    if missing:
        raise RuntimeError(f"{len(missing)} acknowledged bundles missing from the branch")

    remote = work / "remote.git"
    shutil.copytree(seed, remote)
    server = start_server(work / "remote-service", remote.as_uri(), timeout=600)
    try:
        drive_service(server.url, request_names(3, 20_000_000, tag="warm"), 1, "warm-up")
        result = drive_service(server.url, remote_names, 16, "service (file:// remote), 16 clients")
        results.remote = result
        results.remote_rss_kib = server.peak_rss_kib()
        log(f"  remote  16 clients: {result.rate:7.1f} bundles/s "
            f"p50 {ms(result.percentile(0.5))} p99 {ms(result.percentile(0.99))}")
    finally:
        server.stop()
    missing = set(remote_names) - owned_requests(remote)
    if missing:
        raise RuntimeError(f"{len(missing)} acknowledged bundles missing from the remote")

    results.naive = naive_writer(seed, work, commits[: profile.naive_bundles])
    log(f"  naive writer: {results.naive.rate:7.1f} bundles/s")
    results.fast_import = fast_import_writer(seed, work, commits)
    log(f"  fast-import: {results.fast_import.rate:7.1f} commits/s")
    return results


def cold_start(model: StateModel, work: Path, runs: int) -> list[float]:
    seed = work / "cold-seed.git"
    write_state_repo(seed, model)
    times = []
    for run in range(runs):
        data = work / f"cold-{run}"
        shutil.copytree(seed, data / "state.git")
        subprocess.run(["sync"], check=False)
        server = start_server(data, timeout=600)
        times.append(server.ready_after)
        server.stop()
        log(f"  cold start {run + 1}: {server.ready_after:.2f}s")
    return times


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def size_label(files: int) -> str:
    return f"{files // 1000}k" if files >= 1000 else str(files)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(profile: Profile, sizes: list[SizeResults], cold: list[float], cold_files: int,
           elapsed: float, quick: bool, load: tuple[float, float]) -> str:
    lines = [
        f"# statewriter benchmark ({'quick' if quick else 'full'} run)",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"`python -m bench.run{' --quick' if quick else ''}`, {elapsed:.0f} s; "
        f"{_cpus()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}; "
        f"1-minute load average {load[0]:.1f} before, {load[1]:.1f} after.",
        "",
        "ECK request bundles (13 documents: 4 CRDs, operator, Elasticsearch/Kibana/Beat), each a",
        "distinct request spread over 100 namespaces, one destination registered first. Service:",
        "`statewriter serve` subprocess, embedded store, acknowledged after the branch moved;",
        "remote: `--remote file://` bare repo, acknowledged after `git push`. Naive: worktree,",
        "write precomputed files, `git add -A`, commit, push per bundle. fast-import: the same",
        "commits (same files) through one `git fast-import`. Latency is client-side; load is the",
        "1-minute load average at the end of each measurement (2 CPUs; other work inflates it).",
        "",
        "| repo files | writer | clients | bundles | bundles/s | p50 | p99 | vs naive | vs fast-import "
        "| load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        naive = size.naive.rate if size.naive else None
        fast = size.fast_import.rate if size.fast_import else None
        rows: list[tuple[str, str, Result | None]] = [
            ("service", str(level), size.service[level]) for level in sorted(size.service)
        ]
        rows += [("service, file:// remote", "16", size.remote), ("naive writer", "1", size.naive),
                 ("git fast-import", "-", size.fast_import)]
        for writer, clients, result in rows:
            if result is None:
                continue
            vs_naive = f"{result.rate / naive:.1f}x" if naive else "-"
            vs_fast = f"{result.rate / fast * 100:.0f}%" if fast else "-"
            lines.append(
                f"| {size.files:,} | {writer} | {clients} | {result.count} | {result.rate:.1f} | "
                f"{ms(result.percentile(0.5))} | {ms(result.percentile(0.99))} | {vs_naive} | {vs_fast} | "
                f"{result.load:.1f} |"
            )
    lines += ["", "| repo files | requests | service start | peak RSS (embedded) | peak RSS (remote) |",
              "|---:|---:|---:|---:|---:|"]
    for size in sizes:
        lines.append(f"| {size.files:,} | {size.requests:,} | {size.start_seconds:.2f} s | "
                     f"{mib(size.rss_kib)} | {mib(size.remote_rss_kib)} |")
    lines += ["", f"Cold start on {profile.cold_requests:,} requests ({cold_files:,} files): "
              + ", ".join(f"{t:.2f} s" for t in cold) + " (process start to first GET /v1/destinations)."]

    # -- targets ------------------------------------------------------------------------
    smallest, largest = sizes[0], sizes[-1]
    top = max(smallest.service)
    checks: list[tuple[str, str, bool]] = []
    for size in sizes:
        naive = size.naive.rate if size.naive else 0.0
        ratio = size.service[top].rate / naive if naive else 0.0
        checks.append((f">= 10x naive throughput ({size_label(size.nominal)} files, {top} clients)",
                       f"{ratio:.1f}x", ratio >= 10))
    for size in sizes:
        fast = size.fast_import.rate if size.fast_import else 0.0
        remote = size.remote.rate if size.remote else 0.0
        share = remote / fast if fast else 0.0
        checks.append((f">= 40% of fast-import commits/s, ack after push ({size_label(size.nominal)} files)",
                       f"{share * 100:.0f}% ({remote:.1f} vs {fast:.1f})", share >= 0.4))
    keep = largest.service[top].rate / smallest.service[top].rate
    checks.append((f"throughput at {size_label(largest.nominal)} files >= 80% of "
                   f"{size_label(smallest.nominal)} ({top} clients)", f"{keep * 100:.0f}%", keep >= 0.8))
    for size in sizes:
        p99 = size.service[top].percentile(0.99) or 0.0
        checks.append((f"p99 <= 250 ms at {top} clients ({size_label(size.nominal)} files)", ms(p99),
                       p99 <= 0.25))
    rss = max(largest.rss_kib or 0, largest.remote_rss_kib or 0)
    checks.append((f"peak RSS <= 150 MB at {size_label(largest.nominal)} files",
                   f"{mib(rss)} ({rss * 1024 / 1e6:.0f} MB)", rss * 1024 <= 150e6))
    best = min(cold) if cold else float("inf")
    checks.append((f"cold start on {profile.cold_requests:,} requests <= 3 s", f"{best:.2f} s",
                   best <= 3.0))
    lines += ["", "| target | measured | |", "|---|---:|---|"]
    lines += [f"| {what} | {value} | {verdict(ok)} |" for what, value, ok in checks]
    if quick:
        lines += ["", "Quick run: small sizes; the targets name 100k files and 10k requests."]
    return "\n".join(lines) + "\n"


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run (< 2 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.md")
    parser.add_argument("--work", type=Path, default=ROOT / "var",
                        help="where the repositories go (default ./var, the service's default "
                        "data disk)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    began = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="statewriter-bench-", dir=args.work))
    load_before = os.getloadavg()
    log(f"work folder {work}; load average {load_before[0]:.2f}")
    try:
        model = StateModel()
        sizes: list[SizeResults] = []
        # grow one model through the checkpoints: each size, and the cold-start repository
        checkpoints = sorted([(s, "size") for s in profile.sizes]
                             + [(round(profile.cold_requests * FILES_PER_REQUEST), "cold")])
        cold: list[float] = []
        cold_files = 0
        for files, kind in checkpoints:
            started = time.perf_counter()
            if kind == "cold":
                model.populate(request_names(profile.cold_requests - model.serial, model.serial))
            while kind == "size" and len(model.files) < files:
                more = max(1, math.ceil((files - len(model.files)) / FILES_PER_REQUEST))
                model.populate(request_names(more, model.serial))
            log(f"{kind} checkpoint: {model.serial:,} requests, {len(model.files):,} files "
                f"(planned in {time.perf_counter() - started:.1f}s)")
            folder = work / f"{kind}-{files}"
            folder.mkdir()
            if kind == "cold":
                cold = cold_start(model, folder, profile.cold_runs)
                cold_files = len(model.files)
                continue
            seed = folder / "seed.git"
            write_state_repo(seed, model)
            snapshot = model.copy()
            sizes.append(measure_size(snapshot, seed, folder, profile, files))
            shutil.rmtree(folder, ignore_errors=True)
        text = report(profile, sizes, cold, cold_files, time.perf_counter() - began, args.quick,
                      (load_before[0], os.getloadavg()[0]))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

