"""The standard baseline alone: `python -m bench.throughput` (a script, not a test).

8 clients post 300 ECK-shaped bundles (new requests) to the service on a fresh embedded
store, against a naive writer doing a worktree `git add`, `commit` and `push` to a local bare
repository per bundle, in the same run: `--rounds` times, alternating naive, service, naive.
Prints each round's bundles per second and the service's ratio to the naive writer (the
median over rounds): the figure to compare between two versions of the code, since the
ratio cancels most of what the machine's load does to both. `bench.run` measures this and
much more; this is the quick check a change that costs CPU per bundle is held to.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # `python bench/throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import drive_service, naive_writer
from bench.state import StateModel, request_names, write_state_repo
from tests.procs import start_server

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="statewriter-throughput-", dir=ROOT / "var"))
    try:
        model = StateModel()
        seed = work / "seed.git"
        write_state_repo(seed, model)
        ratios = []
        print("| round | naive writer | service | ratio |\n|---:|---:|---:|---:|")
        for round_ in range(args.rounds):
            names = request_names(args.bundles, 10_000_000 + round_ * args.bundles, tag=f"t{round_}x")
            twin = model.copy()
            commits = [(f"apply elastic-cloud {ns}/{name}\n", twin.add(ns, name)) for ns, name in names]
            naive = naive_writer(seed, work / f"naive-{round_}", commits)
            data = work / f"service-{round_}"
            shutil.copytree(seed, data / "state.git")
            server = start_server(data, timeout=600)
            try:
                drive_service(server.url, request_names(3, 20_000_000 + round_, tag="warm"), 1, "warm")
                served = drive_service(server.url, names, args.clients, "service")
            finally:
                server.stop()
            ratios.append(served.rate / naive.rate)
            print(f"| {round_ + 1} | {naive.rate:.1f}/s | {served.rate:.1f}/s | {ratios[-1]:.2f}x |",
                  flush=True)
        print(f"\nmedian ratio: {statistics.median(ratios):.2f}x ({args.clients} clients, "
              f"{args.bundles} bundles)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
