"""A soak test: `python -m bench.soak [--minutes 10]` (a script, not a test; not in CI).

Two replicas (`statewriter serve` processes, each with its own data folder) share one
remote (a bare repository over `git daemon` on 127.0.0.1). For the whole run:

- writers post new bundles and update existing ones, spread over both replicas;
- readers GET requests that were acknowledged, from the *other* replica (fresh reads);
- four pollers ask both replicas' `/readyz` as fast as they answer (the probes of a
  Kubernetes deployment, much more often).

It reports, for the first and the last minute, the write throughput, the p50/p99 of writes
and reads, every non-2xx answer, and each replica's RSS; at the end it checks that every
acknowledged write is on the remote's branch (nothing acknowledged is lost) and that
`statewriter verify` finds the branch clean.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

if __package__ in (None, ""):  # `python bench/soak.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.state import LABELS, bundle_json
from tests.procs import Server, git_daemon, init_bare, owned_requests, start_server, verify_clone

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 60.0  # seconds per reported window
FRESH = 5.0  # docs/reference.md section 6: a read reflects the branch as it was at most this long ago


@dataclass
class Window:
    writes: list[float] = field(default_factory=list)  # latencies, seconds
    reads: list[float] = field(default_factory=list)
    probes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    rss: dict[str, int] = field(default_factory=dict)  # replica -> KiB at the window's end


@dataclass
class Soak:
    replicas: list[Server]
    began: float = field(default_factory=time.monotonic)
    windows: dict[int, Window] = field(default_factory=dict)
    acked: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)
    acked_at: dict[tuple[str, str], float] = field(default_factory=dict)  # monotonic time
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def window(self) -> Window:
        number = int((time.monotonic() - self.began) // WINDOW)
        with self.lock:
            return self.windows.setdefault(number, Window())

    def fail(self, what: str, response: httpx.Response | Exception) -> None:
        status = response.status_code if isinstance(response, httpx.Response) else type(response).__name__
        self.window().failures[f"{what} {status}"] += 1


def _names(writer: int) -> Iterator[tuple[str, str]]:
    for number in itertools.count():
        yield f"team-{writer % 8}", f"soak-{writer}-{number:06d}"


def writer(soak: Soak, number: int) -> None:
    rng = random.Random(number)
    mine: list[tuple[str, str]] = []
    names = _names(number)
    clients = [r.client(timeout=120) for r in soak.replicas]
    try:
        while not soak.stop.is_set():
            update = mine and rng.random() < 0.3
            namespace, name = rng.choice(mine) if update else next(names)
            body = bundle_json(namespace, name)
            if update:
                body["status"] = {"phase": f"update-{rng.randrange(1 << 30)}"}
            http = rng.choice(clients)
            sent = time.perf_counter()
            try:
                answer = http.post("/v1/bundles", content=json.dumps(body),
                                   headers={"content-type": "application/json"})
            except httpx.HTTPError as error:
                soak.fail("write", error)
                continue
            took = time.perf_counter() - sent
            if answer.status_code != 200:
                soak.fail("write", answer)
                continue
            soak.window().writes.append(took)
            if not update:
                mine.append((namespace, name))
                with soak.lock:
                    soak.acked.append((namespace, name))
                    soak.acked_at[(namespace, name)] = time.monotonic()
    finally:
        for http in clients:
            http.close()


def reader(soak: Soak, number: int) -> None:
    rng = random.Random(1000 + number)
    clients = [r.client(timeout=60) for r in soak.replicas]
    try:
        while not soak.stop.is_set():
            with soak.lock:
                known = soak.acked[rng.randrange(len(soak.acked))] if soak.acked else None
            if known is None:
                soak.stop.wait(0.05)
                continue
            namespace, name = known
            sent = time.perf_counter()
            try:
                answer = rng.choice(clients).get(
                    f"/v1/promises/elastic-cloud/requests/{namespace}/{name}")
            except httpx.HTTPError as error:
                soak.fail("read", error)
                continue
            if answer.status_code == 404 and time.monotonic() - soak.acked_at[known] < FRESH:
                soak.window().failures["read 404 within 5 s of the ack (allowed)"] += 1
                continue
            if answer.status_code != 200:
                soak.fail("read", answer)
                continue
            soak.window().reads.append(time.perf_counter() - sent)
    finally:
        for http in clients:
            http.close()


def poller(soak: Soak, number: int) -> None:
    clients = [r.client(timeout=10) for r in soak.replicas]
    try:
        for http in itertools.cycle(clients):
            if soak.stop.is_set():
                return
            try:
                answer = http.get("/readyz")
            except httpx.HTTPError as error:
                soak.fail("readyz", error)
                continue
            if answer.status_code != 200:
                soak.fail("readyz", answer)
            soak.window().probes += 1
    finally:
        for http in clients:
            http.close()


def _rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _percentile(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f} ms"


def report(soak: Soak, minutes: float) -> str:
    full = int(minutes * 60 // WINDOW)  # a last window the deadline cut short is left out
    numbers = sorted(n for n in soak.windows if n < max(full, 1))
    shown = [numbers[0], numbers[-1]] if len(numbers) > 1 else numbers
    lines = ["| minute | writes/s | write p50 | write p99 | read p50 | read p99 | probes/s | "
             "non-2xx | RSS a | RSS b |", "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for number in shown:
        w = soak.windows[number]
        failures = ", ".join(f"{k}: {v}" for k, v in sorted(w.failures.items())) or "none"
        lines.append(
            f"| {number + 1} | {len(w.writes) / WINDOW:.1f} | {_percentile(w.writes, 0.5)} | "
            f"{_percentile(w.writes, 0.99)} | {_percentile(w.reads, 0.5)} | "
            f"{_percentile(w.reads, 0.99)} | {w.probes / WINDOW:.0f} | {failures} | "
            f"{w.rss.get('a', 0) / 1024:.0f} MiB | {w.rss.get('b', 0) / 1024:.0f} MiB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--pollers", type=int, default=4)
    args = parser.parse_args(argv)
    (ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="statewriter-soak-", dir=ROOT / "var") as temp, \
            ExitStack() as stack:
        work = Path(temp)
        init_bare(work / "remotes" / "state.git")
        daemon = stack.enter_context(git_daemon(work / "remotes"))
        remote = daemon.url("state.git")
        replicas = [start_server(work / name, remote) for name in ("a", "b")]
        for server in replicas:
            stack.callback(server.stop)
        with replicas[0].client() as http:
            answer = http.put("/v1/destinations/worker-1", json={"labels": dict(LABELS)})
            assert answer.status_code == 200, answer.text
        soak = Soak(replicas)
        threads = [threading.Thread(target=role, args=(soak, n), daemon=True)
                   for role, count in ((writer, args.writers), (reader, args.readers),
                                       (poller, args.pollers)) for n in range(count)]
        for thread in threads:
            thread.start()
        deadline = soak.began + args.minutes * 60
        while time.monotonic() < deadline:
            soak.stop.wait(min(WINDOW / 4, max(0.0, deadline - time.monotonic())))
            window = soak.window()
            window.rss = {"a": _rss_kib(replicas[0]), "b": _rss_kib(replicas[1])}
            print(f"{(time.monotonic() - soak.began) / 60:.1f} min: {len(soak.acked)} requests "
                  f"acknowledged", flush=True)
        soak.stop.set()
        for thread in threads:
            thread.join(timeout=180)
        table = report(soak, args.minutes)
        missing = set(soak.acked) - owned_requests(work / "remotes" / "state.git")
        verified = verify_clone(remote, work)
        summary = (f"{args.minutes:g} minutes, {args.writers} writers, {args.readers} readers, "
                   f"{args.pollers} readiness pollers, two replicas on one git daemon remote: "
                   f"{len(soak.acked)} requests acknowledged, {len(missing)} missing from the "
                   f"remote, verify {'ok' if verified.returncode == 0 else 'FAILED'}")
    print(summary)
    print(table)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "soak.md").write_text(f"{summary}\n\n{table}\n")
    return 0 if not missing and verified.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
