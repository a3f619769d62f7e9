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
from gitops.writer import MIN_FREE_BYTES, Writer, disk_problem
from tests.conftest import Service
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
                assert ready.status_code == 200
                assert ready.json() == {"status": "ready", "writes": True}
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


def test_a_remote_outage_refuses_writes_until_the_remote_answers_again(tmp_path: Path) -> None:
    remote = init_bare(tmp_path / "remote.git")
    with running_server(tmp_path / "data", remote.as_uri()) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        _setup(server.url)
        hidden = tmp_path / "away.git"
        remote.rename(hidden)
        write = http.post("/v1/bundles", json=request_bundle("second"))
        assert write.status_code == 503
        ready = http.get("/readyz")  # still in its Service: the outage is the remote's
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready" and ready.json()["writes"] is False
        assert ready.json()["reason"] and str(remote) not in ready.json()["reason"]
        assert "away.git" not in ready.text and str(remote) in ready.json()["detail"]
        writers = http.get("/readyz", params={"writes": "true"})  # a monitor of writes
        assert writers.status_code == 503 and writers.json()["status"] == "unavailable"
        assert writers.json()["reason"] == ready.json()["reason"]
        hidden.rename(remote)
        assert http.post("/v1/bundles", json=request_bundle("second")).status_code == 200
        for params in ({}, {"writes": "true"}):
            ready = http.get("/readyz", params=params)
            assert ready.status_code == 200 and ready.json() == {"status": "ready", "writes": True}


def test_a_corrupt_state_record_keeps_the_service_up_read_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo = data / "state.git"
    with running_server(data) as server:
        _setup(server.url)
    record = layout.owner_record_path(Owner("elastic-cloud", "default", "example", "default"))
    good = _commit(repo, {record: b"{not json"})  # a person's broken commit

    with running_server(data, ready_path="/healthz", keywords=FRESH_READS) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        ready = http.get("/readyz")  # reads and /git go on: it stays in its Service
        assert ready.status_code == 200 and ready.json()["writes"] is False
        assert record in ready.json()["detail"] and record not in ready.json()["reason"]
        assert http.get("/readyz?writes=true").status_code == 503
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
        assert http.get("/readyz?writes=true").json() == {"status": "ready", "writes": True}


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


def test_a_full_disk_refuses_writes_and_keeps_serving_reads(
        in_process_service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    service = in_process_service
    assert service.call("PUT", f"/v1/destinations/{DEST}", json={"labels": {}}).status_code == 200
    real = os.statvfs

    class Full:
        def __init__(self, stat: os.statvfs_result) -> None:
            self.f_frsize = stat.f_frsize
            self.f_bavail = 0

    monkeypatch.setattr(os, "statvfs", lambda path: Full(real(path)))
    ready = service.call("GET", "/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["writes"] is False
    assert ready.json()["reason"] == "the data folder cannot take writes"
    assert "MiB free" in ready.json()["detail"]  # auth is off: anyone may read
    assert service.call("GET", f"/v1/destinations/{DEST}").status_code == 200
    writers = service.call("GET", "/readyz", params={"writes": "true"})
    assert writers.status_code == 503 and writers.json()["status"] == "unavailable"
    monkeypatch.undo()
    assert service.call("GET", "/readyz?writes=true").json() == {"status": "ready", "writes": True}


def test_a_store_that_cannot_be_read_takes_the_service_out(in_process_service: Service) -> None:
    service = in_process_service
    moved = service.repo.with_name("moved.git")
    service.repo.rename(moved)  # e.g. its volume went away
    try:
        for params in ({}, {"writes": "true"}):
            ready = service.call("GET", "/readyz", params=params)
            assert ready.status_code == 503, ready.text
            assert ready.json()["status"] == "unavailable" and ready.json()["writes"] is False
            assert ready.json()["reason"] == "the state store cannot be read"
            assert str(service.repo) in ready.json()["detail"]
    finally:
        moved.rename(service.repo)
    assert service.call("GET", "/readyz").json() == {"status": "ready", "writes": True}


def test_a_stopped_writer_lane_serves_no_reads(tmp_path: Path) -> None:
    writer = Writer(EmbeddedStore(init_bare(tmp_path / "state.git")))
    assert writer.readiness() is None
    writer.close()
    unready = writer.readiness()
    assert unready is not None and unready.reads is False
    assert unready.reason == "the writer lane stopped"


def test_a_readiness_query_that_cannot_be_used_is_refused(in_process_service: Service) -> None:
    refused = in_process_service.call("GET", "/readyz", params={"writes": "perhaps"})
    assert refused.status_code == 422
    assert refused.json()["error"] == "InvalidQuery" and refused.json()["field"] == "writes"
