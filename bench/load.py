"""The three writers measured by the benchmark: the live service (HTTP clients in threads),
a naive worktree writer, and one raw `git fast-import` stream."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.state import bundle_json, fast_import, fast_import_stream


@dataclass(frozen=True)
class Result:
    """One measurement: `count` writes in `seconds`, with per-write latencies."""

    what: str
    count: int
    seconds: float
    latencies: tuple[float, ...]
    # 1-minute load average when the measurement ended: this machine may be shared
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def drive_service(url: str, names: Sequence[tuple[str, str]], clients: int, what: str) -> Result:
    """`clients` threads, each posting its share of `names` one after the other."""
    bodies = [json.dumps(bundle_json(ns, name)).encode() for ns, name in names]
    shares = [bodies[c::clients] for c in range(clients)]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(share: list[bytes]) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=120,
                          headers={"content-type": "application/json"}) as http:
            start.wait()
            for body in share:
                sent = time.perf_counter()
                answer = http.post("/v1/bundles", content=body)
                mine.append(time.perf_counter() - sent)
                if answer.status_code != 200 or not answer.json().get("changed"):
                    with lock:
                        failures.append(f"{answer.status_code} {answer.text[:300]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(share,), daemon=True) for share in shares]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=1800)
    seconds = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{what}: {len(failures)} bundles not written, e.g. {failures[0]}")
    return Result(what, len(bodies), seconds, tuple(latencies))


def drive_for(url: str, clients: int, seconds: float, tag: str, namespace: str = "team-000") -> Result:
    """`clients` threads, each posting new requests one after the other until `seconds`
    have passed (the last answers are waited for); latencies of every answered bundle."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(number: int) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=seconds + 120,
                          headers={"content-type": "application/json"}) as http:
            start.wait()
            sent_count = 0
            while time.perf_counter() < deadline[0]:
                body = json.dumps(bundle_json(namespace, f"{tag}{number:02d}x{sent_count:05d}")).encode()
                sent_count += 1
                sent = time.perf_counter()
                answer = http.post("/v1/bundles", content=body)
                mine.append(time.perf_counter() - sent)
                if answer.status_code != 200 or not answer.json().get("changed"):
                    with lock:
                        failures.append(f"{answer.status_code} {answer.text[:300]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=seconds + 600)
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} bundles not written, e.g. {failures[0]}")
    return Result(f"{clients} clients for {seconds:.0f} s", len(latencies), elapsed, tuple(latencies))


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd or "/tmp"),
                        "LC_ALL": "C", "GIT_AUTHOR_NAME": "naive", "GIT_AUTHOR_EMAIL": "naive@x.invalid",
                        "GIT_COMMITTER_NAME": "naive", "GIT_COMMITTER_EMAIL": "naive@x.invalid"})


def naive_writer(seed: Path, work: Path, commits: Sequence[tuple[str, dict[str, bytes]]]) -> Result:
    """Per bundle: write the files into a worktree, `git add -A`, commit, push to a bare
    remote. The files are precomputed, so the naive writer does no planning at all."""
    remote = work / "naive-remote.git"
    tree = work / "naive-worktree"
    shutil.copytree(seed, remote)
    _git("clone", "-q", str(remote), str(tree))
    latencies = []
    began = time.perf_counter()
    for message, files in commits:
        sent = time.perf_counter()
        for path, content in files.items():
            target = tree / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        _git("add", "-A", cwd=tree)
        _git("commit", "-q", "-m", message, cwd=tree)
        _git("push", "-q", "origin", "HEAD:main", cwd=tree)
        latencies.append(time.perf_counter() - sent)
    seconds = time.perf_counter() - began
    return Result("naive worktree writer", len(commits), seconds, tuple(latencies))


def fast_import_writer(seed: Path, work: Path, commits: Sequence[tuple[str, dict[str, bytes]]]) -> Result:
    """The same commits through one `git fast-import` on a copy of the seeded repository."""
    target = work / "fast-import.git"
    shutil.copytree(seed, target)
    parent = (target / "refs/heads/main").read_text().strip() if (target / "refs/heads/main").exists() \
        else subprocess.run(["git", f"--git-dir={target}", "rev-parse", "main"], check=True,
                            capture_output=True, text=True).stdout.strip()
    seconds = fast_import(target, fast_import_stream(commits, parent=parent))
    return Result("git fast-import", len(commits), seconds, ())
