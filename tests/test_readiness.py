"""Readiness, fresh reads on every replica, and a corrupt state kept up read-only (docs/reference.md
section 6 v2), against real servers, real git remotes and real clones."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitops import layout
from gitops.owner import Owner
from gitops.store import EmbeddedStore
from gitops.store.base import Author
from gitops.writer import MIN_FREE_BYTES, disk_problem
from tests.fixtures.eck import request_bundle
from tests.procs import FRESH_READS, init_bare, running_server, verify_clone, wait_until
from tests.test_store import http_git_server

DEST = "worker-1"


def _setup(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.put(f"/v1/destinations/{DEST}", json={"labels": {"env": "dev"}}).status_code == 200
        assert http.post("/v1/bundles", json=request_bundle("example")).status_code == 200


@pytest.fixture
def counted_remote(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A forge-like http remote that counts the git requests it serves."""
    init_bare(tmp_path / "remotes" / "state.git")
    authorization = "Basic " + base64.b64encode(b"bot:tok3n").decode()
    server = http_git_server(tmp_path / "remotes", {authorization})
    seen: list[str] = []
    handler: Any = server.RequestHandlerClass
    serve = handler.cgi

    def counting(self: Any) -> None:
        seen.append(self.path)
        serve(self)

    handler.cgi = counting
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://bot:tok3n@127.0.0.1:{server.server_port}/state.git", seen
    finally:
        server.shutdown()
        server.server_close()


def test_readiness_probes_never_contact_the_remote(tmp_path: Path,
                                                   counted_remote: tuple[str, list[str]]) -> None:
    remote, seen = counted_remote
    with running_server(tmp_path / "data", remote) as server:
        _setup(server.url)
        before = len(seen)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(50):
                ready = http.get("/readyz")
                assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert len(seen) == before  # no fetch per probe


def test_a_replica_that_has_not_written_reads_what_another_acknowledged(tmp_path: Path) -> None:
    remote = init_bare(tmp_path / "remote.git").as_uri()
    with running_server(tmp_path / "a", remote) as first, \
            running_server(tmp_path / "b", remote, keywords=FRESH_READS) as second, \
            httpx.Client(base_url=second.url, timeout=30) as reader:
        assert reader.get("/v1/destinations").json() == {"destinations": []}
        _setup(first.url)

        def seen() -> bool:
            return reader.get("/v1/promises/elastic-cloud/requests/default/example").status_code == 200

        wait_until(seen, 15, "the second replica serving the first one's request")
        assert [d["name"] for d in reader.get("/v1/destinations").json()["destinations"]] == [DEST]
        assert reader.get(f"/v1/destinations/{DEST}/flux").status_code == 200
        history = reader.get("/v1/promises/elastic-cloud/requests/default/example/history")
        assert history.status_code == 200 and history.json()["commits"][0]["action"] == "apply"


def test_a_remote_outage_is_not_ready_until_the_remote_answers_again(tmp_path: Path) -> None:
    remote = init_bare(tmp_path / "remote.git")
    with running_server(tmp_path / "data", remote.as_uri()) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        _setup(server.url)
        hidden = tmp_path / "away.git"
        remote.rename(hidden)
        write = http.post("/v1/bundles", json=request_bundle("second"))
        assert write.status_code == 503
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"]
        assert str(remote) not in ready.json()["reason"]  # a reason, never a host or a path
        assert "away.git" not in ready.text and str(remote) in ready.json()["detail"]
        hidden.rename(remote)
        assert http.post("/v1/bundles", json=request_bundle("second")).status_code == 200
        assert http.get("/readyz").status_code == 200


def test_a_corrupt_state_record_keeps_the_service_up_read_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo = data / "state.git"
    with running_server(data) as server:
        _setup(server.url)
    record = layout.owner_record_path(Owner("elastic-cloud", "default", "example", "default"))
    good = _commit(repo, {record: b"{not json"})  # a person's broken commit

    with running_server(data, ready_path="/healthz", keywords=FRESH_READS) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 503 and record in ready.json()["detail"]
        assert record not in ready.json()["reason"]
        assert [d["name"] for d in http.get("/v1/destinations").json()["destinations"]] == [DEST]
        refused = http.post("/v1/bundles", json=request_bundle("second"))
        assert refused.status_code == 503 and record in refused.json()["message"]
        clone = verify_clone(f"{server.url}/git/state.git", tmp_path)  # Flux's source stays up
        assert record in clone.stdout  # verify names the broken record
        # a person repairs it (reverting the broken commit): writes resume without a restart
        _commit(repo, {record: good})

        def writes() -> bool:
            return http.post("/v1/bundles", json=request_bundle("second")).status_code == 200

        wait_until(writes, 20, "writes after the repair")
        assert http.get("/readyz").status_code == 200


def test_a_record_broken_while_the_service_runs_refuses_the_next_write_as_unavailable(
        tmp_path: Path) -> None:
    """A person's broken commit lands while the service runs: the write whose publish finds
    the branch moved is refused as the state's corruption (503), never as a conflict of its
    own, and nothing it asked for is written."""
    data = tmp_path / "data"
    repo = data / "state.git"
    record = layout.owner_record_path(Owner("elastic-cloud", "default", "example", "default"))
    with running_server(data) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        _setup(server.url)
        _commit(repo, {record: b"{not json"})
        broken = EmbeddedStore(repo)
        try:
            tip = broken.tip()
        finally:
            broken.close()
        for name in ("second", "third"):
            refused = http.post("/v1/bundles", json=request_bundle(name))
            assert refused.status_code == 503, refused.text
            assert record in refused.json()["message"]
        assert _tip(repo) == tip


def _tip(repo: Path) -> str | None:
    store = EmbeddedStore(repo)
    try:
        return store.tip()
    finally:
        store.close()


def _commit(repo: Path, files: dict[str, bytes]) -> bytes:
    """Commit `files` on top of main (as a person would push it); returns what the first file
    held before."""
    store = EmbeddedStore(repo)
    try:
        tip = store.tip()
        assert tip is not None
        (path,) = list(files)[:1]
        before = store.tree(tip).read(path)
        assert before is not None
        head = store.commit(tip, dict(files), "a person's commit", Author("person", "p@example.org"))
        assert store.publish(tip, head)
        return before
    finally:
        store.close()


def test_a_nearly_full_disk_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert disk_problem(tmp_path) is None
    real = os.statvfs

    class Full:
        def __init__(self, stat: os.statvfs_result) -> None:
            self.f_frsize = stat.f_frsize
            self.f_bavail = (MIN_FREE_BYTES // stat.f_frsize) - 1

    monkeypatch.setattr(os, "statvfs", lambda path: Full(real(path)))
    problem = disk_problem(tmp_path)
    assert problem is not None and str(tmp_path) in problem and "MiB free" in problem
    monkeypatch.undo()
    assert disk_problem(tmp_path / "missing") is not None
