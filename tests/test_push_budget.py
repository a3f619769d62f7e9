"""The push budget (docs/reference.md section 8, `push.minInterval`) and "too many requests" back-off,
against real remotes: a bare repository whose post-receive hook records every push, and a
git HTTP server that answers 429 before it lets pushes through."""

from __future__ import annotations

import base64
import functools
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitops import planner
from gitops.bundle import parse_bundle
from gitops.store import RemoteStore
from gitops.writer import Done, Writer
from tests.fixtures.eck import request_bundle
from tests.procs import init_bare, owned_requests, running_server
from tests.test_store import http_git_server

DEST = "worker-1"
# push.minInterval for the test (the product's default is 0): small, so that the test waits
# a few intervals, not long ones; what it asserts is in intervals
INTERVAL = 0.5
INTERVALS = 6  # how long the clients write, in intervals
HOOK = """#!/bin/sh
# one line per push that reached the branch: when, and how many commits it brought
while read old new ref; do
  count=$(git rev-list --count "$new" ${old%%0000000000000000000000000000000000000000} 2>/dev/null)
  echo "$(date +%s.%N) $count" >> "$GIT_DIR/pushes.log"
done
"""


def remote_with_hook(path: Path) -> Path:
    init_bare(path)
    hook = path / "hooks" / "post-receive"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    return path


def pushes(remote: Path) -> list[tuple[float, int]]:
    log = remote / "pushes.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(float(when), int(count or 0)) for when, _, count in (ln.partition(" ") for ln in lines)]


def test_min_interval_holds_changes_back_and_ships_them_together(tmp_path: Path) -> None:
    remote = remote_with_hook(tmp_path / "remote.git")
    config = tmp_path / "statewriter.yaml"
    config.write_text(f"push: {{minInterval: {INTERVAL}}}\n")
    acks: list[tuple[str, str]] = []
    lock = threading.Lock()
    with running_server(tmp_path / "data", remote.as_uri(), config=config) as server:
        with server.client() as http:
            assert http.put(f"/v1/destinations/{DEST}", json={"labels": {}}).status_code == 200
        deadline = time.monotonic() + INTERVALS * INTERVAL

        def client(number: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for i in range(1000):  # bounded; the deadline ends it first
                    if time.monotonic() > deadline:
                        return
                    name = f"c{number:02d}-{i:03d}"
                    answer = http.post("/v1/bundles", json=request_bundle(name))
                    assert answer.status_code == 200, answer.text
                    with lock:
                        acks.append(("default", name))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    seen = pushes(remote)
    assert set(acks) <= owned_requests(remote)  # every acknowledged bundle is on the remote
    assert len(acks) >= 4 * len(seen)  # many bundles ride one push
    times = [when for when, _ in seen]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= INTERVAL - 0.1 for gap in gaps), gaps  # at most one push every INTERVAL
    assert sum(count for _, count in seen[1:]) >= len(acks)  # one commit per bundle


@pytest.fixture
def limited_forge(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """A git HTTP server that answers the first two pushes with 429 Too Many Requests."""
    root = tmp_path / "forge"
    init_bare(root / "state.git")
    authorization = "Basic " + base64.b64encode(b"bot:tok3n").decode()
    server = http_git_server(root, {authorization})
    counts = {"429": 0, "pushes": 0}
    handler: Any = server.RequestHandlerClass
    serve = handler.cgi

    def limited(self: Any) -> None:
        if self.command == "POST" and self.path.endswith("git-receive-pack"):
            if counts["429"] < 2:
                counts["429"] += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(429)
                self.send_header("Content-Length", "0")
                self.send_header("Retry-After", "1")
                self.end_headers()
                return
            counts["pushes"] += 1
        serve(self)

    handler.cgi = limited
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://bot:tok3n@127.0.0.1:{server.server_port}/state.git", counts
    finally:
        server.shutdown()
        server.server_close()


def test_too_many_requests_is_backed_off_and_nothing_is_lost(
    tmp_path: Path, limited_forge: tuple[str, dict[str, int]]
) -> None:
    url, counts = limited_forge
    # back-offs of 0.05 s and 0.1 s (the service's: 1-2 s, then 2-4 s): the same doubling, shorter
    writer = Writer(RemoteStore(url, tmp_path / "cache"), rate_limit_step=0.05)
    try:
        put = writer.submit(functools.partial(planner.plan_put_destination, name=DEST,
                                              labels={}, path=None, actor="t"))
        outcome = put.result(timeout=120)
        bundle = parse_bundle(request_bundle("example"))
        second = writer.submit(functools.partial(planner.plan_apply, bundle=bundle, actor="t"))
        written = second.result(timeout=120)
    finally:
        writer.close()
    assert isinstance(outcome, Done) and isinstance(written, Done) and written.changed
    assert counts == {"429": 2, "pushes": 2}  # both refused pushes were retried, later
