"""Where a bundle's intake CPU goes: `python -m bench.cpu` (a script, not a test).

Issue 10 asks whether parsing belongs in a process pool and whether faster JSON libraries
pay. Measured in one process on the bench's ECK bundles (the body a pipeline posts, 13
documents), each figure the median of `--rounds` rounds of `--bundles` distinct bundles:

- decoding the body: `app.bodies.strict_json` (the stdlib with the duplicate-key and NaN
  hooks the contract needs) against plain `json.loads` and `orjson.loads` (when installed:
  orjson has no hook for duplicate keys, so it could only be a first pass);
- the whole intake, `app.bodies.json_bundle` (decode, strict model, YAML parse, refusals,
  digests): cold (every file text new) and warm (the CRD and operator files every request of
  a promise sends, parsed once: `gitops.bundle.parse_file`);
- what a process pool would add to move the parsed bundle back: `pickle` out and in.

Prints milliseconds per bundle and each figure as a share of the warm intake.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/cpu.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.bodies import json_bundle, strict_json
from app.config import Config
from bench.state import bundle_json

# optional: measured only when installed
orjson = importlib.import_module("orjson") if importlib.util.find_spec("orjson") else None


def per_bundle(step: Callable[[bytes], Any], bodies: list[bytes], rounds: int) -> float:
    """Median over rounds of the CPU time per body, in milliseconds."""
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for body in bodies:
            step(body)
        times.append((time.process_time() - started) / len(bodies) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    config = Config()
    bodies = [json.dumps(bundle_json(f"team-{i % 100:03d}", f"r{i}")).encode()
              for i in range(args.bundles)]
    counter = iter(range(10**9))

    def cold(body: bytes) -> Any:
        # every file made unique: a comment line changes the text, not the objects
        data = json.loads(body)
        tag = next(counter)
        data["files"] = {name: f"# {tag}\n{text}" for name, text in data["files"].items()}
        return json_bundle(json.dumps(data).encode(), config)

    json_bundle(bodies[0], config)  # warm the parse cache (a file is kept from its 2nd sighting)
    json_bundle(bodies[1], config)
    warm = per_bundle(lambda body: json_bundle(body, config), bodies, args.rounds)
    parsed = [json_bundle(body, config) for body in bodies]
    rows: list[tuple[str, float]] = [
        ("body: strict_json (stdlib + hooks)", per_bundle(strict_json, bodies, args.rounds)),
        ("body: json.loads", per_bundle(json.loads, bodies, args.rounds)),
    ]
    if orjson is not None:
        rows.append(("body: orjson.loads", per_bundle(orjson.loads, bodies, args.rounds)))
    cold_copy = [json.dumps(json.loads(b)).encode() for b in bodies]
    rows += [
        ("intake, warm (json_bundle)", warm),
        ("intake, cold (every file new; includes re-encoding)", per_bundle(cold, cold_copy, args.rounds)),
        ("process pool: pickle the bundle out and in",
         per_bundle(lambda i: pickle.loads(pickle.dumps(parsed[int(i)])),
                    [str(i).encode() for i in range(len(parsed))], args.rounds)),
    ]
    print(f"{len(bodies)} ECK bundles of {statistics.mean(map(len, bodies)) / 1024:.1f} KiB, "
          f"median of {args.rounds} rounds, CPU ms per bundle:\n")
    print("| step | ms | share of the warm intake |\n|---|---:|---:|")
    for what, ms in rows:
        print(f"| {what} | {ms:.3f} | {ms / warm:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
