"""Where a bundle's intake CPU goes: `python -m bench.cpu` (a script, not a test).

Issue 10 asks whether parsing belongs in a process pool and whether faster JSON libraries
pay. Measured in one process on the bench's ECK bundles (the body a pipeline posts, 13
documents), each figure the median of `--rounds` rounds of `--bundles` distinct bundles:

- decoding the body: `app.http.bodies.strict_json` (the stdlib with the duplicate-key and NaN
  hooks the contract needs) against plain `json.loads` and `orjson.loads` (when installed:
  orjson has no hook for duplicate keys, so it could only be a first pass);
- the whole intake, `app.http.bodies.json_bundle` (decode, strict model, YAML parse, refusals,
  digests) of a new request (the CRD and operator files every request of a promise sends are
  parsed once, `gitops.bundle.parse_file`; its own files are new), of a re-post (every file
  seen before) and cold (every file text new);
- a process pool: a request's own files parsed here against handed to `--workers` processes
  (8 threads submitting), counting this process's CPU only (what the service's one core of
  Python pays); and a whole parsed bundle pickled out and in;
- validation before commit (`gitops.validate.objects.check_object`), per object: a request's
  own objects (what every new request pays: its Elasticsearch, Kibana and Beat against the
  ECK CRDs' compiled schemas and rules), and the shared ones (CRDs, the operator) checked
  cold, every cache emptied first (what the first request of a promise pays once: compiling
  each CRD's schema, checking the CRD itself and the built-in kinds' schemas).

Prints milliseconds per bundle and each figure as a share of a new request's intake.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import importlib.util
import json
import multiprocessing
import pickle
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/cpu.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Config
from app.http.bodies import json_bundle, strict_json
from bench.state import bundle_json
from gitops import caches
from gitops.bundle import Limits, parse_file
from gitops.identity import CRD_GROUP, CRD_KIND
from gitops.validate import builtin
from gitops.validate.crds import CustomKind, custom_kind
from gitops.validate.objects import FLUX_GROUPS, FLUX_NAMESPACE, Target, check_object

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


def per_round(measure: Callable[[int], float], rounds: int) -> float:
    """Median over rounds of `measure(round)` (CPU ms per bundle)."""
    return statistics.median(measure(r) for r in range(rounds))


def bodies_of(count: int, tag: str) -> list[bytes]:
    """`count` ECK bundles of new requests: their own files new, the CRDs and operator not."""
    return [json.dumps(bundle_json(f"team-{i % 100:03d}", f"{tag}{i}")).encode()
            for i in range(count)]


OWN_FILES = ("beats.yaml", "elasticsearch.yaml", "kibana.yaml")  # a request's own, in bench.state


def parse_own(texts: tuple[str, ...]) -> list[Any]:
    """A process pool's task: parse a request's own files (`gitops.bundle.parse_file`)."""
    return [parse_file(text, Limits().parsing) for text in texts]


def pool_cpu(bundles: int, rounds: int, workers: int) -> tuple[float, float]:
    """CPU ms per bundle of parsing a request's own files here, and of handing them to a
    pool of `workers` processes (8 threads submitting, as 8 clients' requests would): this
    process's share only, which is what the service's one core of Python would pay."""
    def own(r: int) -> list[tuple[str, ...]]:
        found = []
        for i in range(bundles):
            files = bundle_json("team-001", f"pool{r}x{i}")["files"]
            assert isinstance(files, dict)
            found.append(tuple(files[f] for f in OWN_FILES))
        return found

    def here(r: int) -> float:
        texts = own(r)
        started = time.process_time()
        for item in texts:
            parse_own(item)
        return (time.process_time() - started) / len(texts) * 1000

    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(parse_own, own(-1)[:20]))  # the workers are up and warm

        def handed(r: int) -> float:
            texts = own(rounds + r)
            started = time.process_time()
            threads = [threading.Thread(target=lambda share: [pool.submit(parse_own, t).result()
                                                              for t in share],
                                        args=(texts[k::8],)) for k in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return (time.process_time() - started) / len(texts) * 1000

        return per_round(here, rounds), per_round(handed, rounds)


def validation_cpu(bundles: list[Any], rounds: int) -> tuple[float, float]:
    """CPU ms per object of validating a request's own objects (warm) and the shared ones
    (cold), median over rounds."""
    crds = [d.doc for d in bundles[0].documents if d.doc["kind"] == CRD_KIND
            and d.doc["apiVersion"].startswith(CRD_GROUP + "/")]

    def kind_of(group: str, kind: str) -> CustomKind | None:
        for crd in crds:
            found = custom_kind(crd, builtin.NEWEST)
            if found is not None and found.group == group and found.kind == kind:
                return found
        return None

    target = Target("bench", builtin.NEWEST, FLUX_GROUPS, None, FLUX_NAMESPACE, kind_of,
                    lambda name: True)
    own = [d.doc for b in bundles for d in b.documents if d.file in OWN_FILES]
    shared = [d.doc for d in bundles[0].documents if d.file not in OWN_FILES]
    for doc in (*own, *shared):  # the CRDs compiled, the built-in kinds' file read: once
        check_object(doc, target)
    warm, cold = [], []
    for _ in range(rounds):
        started = time.process_time()
        for doc in own:
            check_object(doc, target)
        warm.append((time.process_time() - started) / len(own) * 1000)
        caches.clear()
        started = time.process_time()
        for doc in shared:
            check_object(doc, target)
        cold.append((time.process_time() - started) / len(shared) * 1000)
    return statistics.median(warm), statistics.median(cold)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="process pool size")
    args = parser.parse_args()
    config = Config()
    counter = iter(range(10**9))

    def cold(body: bytes) -> Any:
        # every file made unique: a comment line changes the text, not the objects
        data = json.loads(body)
        tag = next(counter)
        data["files"] = {name: f"# {tag}\n{text}" for name, text in data["files"].items()}
        return json_bundle(json.dumps(data).encode(), config)

    for body in bodies_of(2, "warmup"):  # the shared files are kept from their 2nd sighting
        json_bundle(body, config)

    def new_requests(r: int) -> float:
        return per_bundle(lambda body: json_bundle(body, config), bodies_of(args.bundles, f"n{r}x"), 1)

    intake = per_round(new_requests, args.rounds)
    bodies = bodies_of(args.bundles, "r")
    parsed = [json_bundle(body, config) for body in bodies]
    rows: list[tuple[str, float]] = [
        ("body: strict_json (stdlib + hooks)", per_bundle(strict_json, bodies, args.rounds)),
        ("body: json.loads", per_bundle(json.loads, bodies, args.rounds)),
    ]
    if orjson is not None:
        rows.append(("body: orjson.loads", per_bundle(orjson.loads, bodies, args.rounds)))
    here, handed = pool_cpu(args.bundles, args.rounds, args.workers)
    rows += [
        ("intake of a new request (json_bundle: its own files new, the shared ones kept)", intake),
        ("intake of a re-post (every file seen before)",
         per_bundle(lambda body: json_bundle(body, config), bodies, args.rounds)),
        ("intake, cold (every file new; includes re-encoding)", per_bundle(cold, bodies, args.rounds)),
        ("a request's own files (3) parsed in this process", here),
        (f"... handed to a pool of {args.workers} processes: this process's CPU", handed),
        ("a whole parsed bundle pickled out and in",
         per_bundle(lambda i: pickle.loads(pickle.dumps(parsed[int(i)])),
                    [str(i).encode() for i in range(len(parsed))], args.rounds)),
    ]
    own_objects, shared_cold = validation_cpu(parsed, args.rounds)
    rows += [
        ("validation, per object of a request's own (CRDs compiled)", own_objects),
        ("validation, per shared object (CRD, operator) checked cold, paid once per promise",
         shared_cold),
    ]
    print(f"{len(bodies)} ECK bundles of {statistics.mean(map(len, bodies)) / 1024:.1f} KiB, "
          f"median of {args.rounds} rounds, CPU ms per bundle:\n")
    print("| step | ms | share of a new request's intake |\n|---|---:|---:|")
    for what, ms in rows:
        print(f"| {what} | {ms:.3f} | {ms / intake:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
