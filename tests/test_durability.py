"""Crash safety: SIGKILL the service mid-load, restart it on the same data folder, and
prove that every acknowledged request is on the branch, git fsck is clean, the tree
verifies and writes continue. Unacknowledged work may be lost (the client retries)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.fixtures.eck import request_bundle
from tests.procs import Server, fsck, git, init_bare, owned_requests, start_server, verify_clone, wait_until

DESTINATION = "worker-1"
LABELS = {"environment": "dev"}
CLIENTS = 6
PER_CLIENT = 40  # bound on each client's bundles; the kill comes long before


class Load:
    """Client threads writing distinct bundles until the server goes away."""

    def __init__(self, url: str, tag: str) -> None:
        self.url = url
        self.tag = tag
        self.acked: dict[tuple[str, str], str] = {}
        self.errors: list[str] = []
        self.in_flight: list[tuple[str, str]] = []  # sent, never answered
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(c,), daemon=True)
                         for c in range(CLIENTS)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def join(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
            assert not thread.is_alive()

    def _client(self, number: int) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            for i in range(PER_CLIENT):
                if self._stop.is_set():
                    return
                namespace, name = f"team-{number}", f"{self.tag}-c{number}-{i:02d}"
                body = request_bundle(name, namespace, destinationSelectors=dict(LABELS))
                try:
                    answer = client.post("/v1/bundles", json=body)
                except httpx.TransportError:
                    with self._lock:  # the server died under us: unacknowledged
                        self.in_flight.append((namespace, name))
                    return
                if 200 <= answer.status_code < 300:
                    with self._lock:
                        self.acked[(namespace, name)] = answer.json()["commit"]
                else:
                    with self._lock:
                        self.errors.append(f"{name}: {answer.status_code} {answer.text[:200]}")


def kill_mid_load(server: Server, tag: str, after: int) -> Load:
    """Run the load and SIGKILL the server once `after` answers were acknowledged."""
    load = Load(server.url, tag).start()
    wait_until(lambda: load.count() >= after or server.proc.poll() is not None, 120,
               f"{after} acknowledged answers")
    server.kill()
    load.join()
    assert not load.errors, load.errors[:5]
    assert load.count() >= after
    return load


def check_store(published: Path, workdir: Path, acked: dict[tuple[str, str], str]) -> None:
    present = owned_requests(published)
    missing = set(acked) - present
    assert not missing, f"acknowledged but lost: {sorted(missing)[:5]} ({len(missing)} in all)"
    history = set(git(f"--git-dir={published}", "rev-list", "main").split())
    assert not {sha for sha in acked.values() if sha not in history}
    fsck(published)
    result = verify_clone(str(published), workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("mode", ["embedded", "remote"])
def test_sigkill_mid_load_loses_nothing_acknowledged(tmp_path: Path, mode: str) -> None:
    data = tmp_path / "data"
    remote: str | None = None
    if mode == "remote":
        published = init_bare(tmp_path / "remote.git")
        remote = published.as_uri()
    else:
        published = data / "state.git"

    server = start_server(data, remote)
    try:
        with server.client() as client:
            answer = client.put(f"/v1/destinations/{DESTINATION}", json={"labels": LABELS})
            assert answer.status_code == 200, answer.text
        acked: dict[tuple[str, str], str] = {}
        in_flight: list[tuple[str, str]] = []
        # two kill points: early (few commits, lane just warmed) and later under full load
        for round_, after in enumerate((3, 25)):
            load = kill_mid_load(server, f"k{round_}", after)
            acked.update(load.acked)
            in_flight += load.in_flight
            server = start_server(data, remote)  # same --data: recovers from what is there
            check_store(published, tmp_path, acked)
            if mode == "remote":
                fsck(data / "cache.git")

        # writes continue: a new bundle, and the clients' retries of what was in flight
        assert in_flight
        with server.client() as client:
            for namespace, name in [("team-9", "after-restart"), *in_flight]:
                body = request_bundle(name, namespace, destinationSelectors=dict(LABELS))
                answer = client.post("/v1/bundles", json=body)
                assert answer.status_code == 200, answer.text
                acked[(namespace, name)] = answer.json()["commit"]
            again = client.post("/v1/bundles", json=request_bundle(
                "after-restart", "team-9", destinationSelectors=dict(LABELS)))
            assert again.status_code == 200 and again.json()["changed"] is False
        check_store(published, tmp_path, acked)
    finally:
        server.stop()
