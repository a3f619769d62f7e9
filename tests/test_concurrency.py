"""Concurrency against real servers: many clients on one server, several server processes
on one remote (file:// and git daemon), and a person committing to the branch meanwhile.

Every server is a real `statewriter serve` subprocess on 127.0.0.1 using real git. The
property checked everywhere: every 2xx answer's request is on the branch, its commit is
an ancestor of the branch tip, the repository is fsck-clean and `statewriter verify`
passes on a clone.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.http.answers import answer
from gitops import planner
from gitops.bundle import Bundle, parse_bundle
from gitops.index import Index
from gitops.store import EmbeddedStore
from gitops.tree import Tree
from gitops.writer import Operation, Outcome, Writer
from tests import support
from tests.fixtures.eck import crds, request_bundle, request_files
from tests.procs import (
    Server,
    fsck,
    git,
    git_daemon,
    init_bare,
    owned_requests,
    start_server,
    verify_clone,
)

DESTINATION = "worker-1"
LABELS = {"environment": "dev"}
RETRIES = 6  # a client retries 5xx and dropped connections, as `statewriter push` does


@dataclass
class Acks:
    """What the servers acknowledged: (namespace, name) -> commit."""

    commits: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, key: tuple[str, str], commit: str) -> None:
        with self.lock:
            self.commits[key] = commit

    def fail(self, why: str) -> None:
        with self.lock:
            self.failures.append(why)


def bundle(namespace: str, name: str) -> dict[str, object]:
    return request_bundle(name, namespace, destinationSelectors=dict(LABELS))


def register_destination(server: Server) -> None:
    with server.client() as client:
        answer = client.put(f"/v1/destinations/{DESTINATION}", json={"labels": LABELS})
    assert answer.status_code == 200, answer.text


def post_all(url: str, names: list[tuple[str, str]], acks: Acks) -> None:
    """One client: send each bundle in turn, retrying transient failures (bounded)."""
    with httpx.Client(base_url=url, timeout=120) as client:
        for namespace, name in names:
            why = "never sent"
            for _ in range(RETRIES):
                try:
                    answer = client.post("/v1/bundles", json=bundle(namespace, name))
                except httpx.TransportError as error:
                    why = repr(error)
                    continue
                if 200 <= answer.status_code < 300:
                    acks.record((namespace, name), answer.json()["commit"])
                    why = ""
                    break
                why = f"{answer.status_code} {answer.text[:300]}"
                if answer.status_code < 500:
                    break
            if why:
                acks.fail(f"{namespace}/{name}: {why}")


def run_clients(plan: list[tuple[str, list[tuple[str, str]]]]) -> Acks:
    """Run one thread per (server url, names) and wait for all of them."""
    acks = Acks()
    with ThreadPoolExecutor(len(plan)) as pool:
        for future in [pool.submit(post_all, url, names, acks) for url, names in plan]:
            future.result(timeout=300)
    return acks


def names_for(client: int, count: int, tag: str = "r") -> list[tuple[str, str]]:
    return [(f"team-{client % 4}", f"{tag}-c{client:02d}-{i:02d}") for i in range(count)]


def assert_all_published(git_dir: Path | str, acks: Acks, workdir: Path, url: str) -> None:
    """Every acknowledged request (and its commit) is on the branch; the repo is valid."""
    assert not acks.failures, acks.failures[:5]
    present = owned_requests(git_dir)
    missing = set(acks.commits) - present
    assert not missing, f"{len(missing)} acknowledged requests missing, e.g. {sorted(missing)[:5]}"
    history = set(git(f"--git-dir={git_dir}", "rev-list", "main").split())
    lost = {key: sha for key, sha in acks.commits.items() if sha not in history}
    assert not lost, f"acknowledged commits not in the branch: {list(lost.items())[:5]}"
    fsck(git_dir)
    result = verify_clone(url, workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def rejected_publishes(server: Server) -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("statewriter_push_rejections_total "))


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def _start(stack: ExitStack, data: Path, remote: str | None = None) -> Server:
    server = start_server(data, remote)
    stack.callback(server.stop)
    return server


def test_sixteen_clients_on_one_embedded_server(tmp_path: Path, servers: ExitStack) -> None:
    server = _start(servers, tmp_path / "data")
    register_destination(server)
    acks = run_clients([(server.url, names_for(c, 10)) for c in range(16)])

    assert len(acks.commits) == 160
    repo = tmp_path / "data" / "state.git"
    server.stop()  # its background repack may be swapping packs: fsck a quiet repository
    assert_all_published(repo, acks, tmp_path, str(repo))
    # one commit per accepted change, none empty: the destination plus 160 requests
    assert git(f"--git-dir={repo}", "rev-list", "--count", "main").strip() == "161"
    assert len(set(acks.commits.values())) == 160


@pytest.mark.parametrize("transport", ["file", "daemon"])
@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_on_one_remote(
    tmp_path: Path, servers: ExitStack, transport: str, replicas: int
) -> None:
    base = tmp_path / "remotes"
    base.mkdir()
    remote_dir = init_bare(base / "state.git")
    if transport == "file":
        url = remote_dir.as_uri()
    else:
        url = servers.enter_context(git_daemon(base)).url("state.git")

    first = _start(servers, tmp_path / "data-0", url)
    register_destination(first)
    group = [first] + [_start(servers, tmp_path / f"data-{i}", url) for i in range(1, replicas)]
    # two clients per replica, all writing at once, each to its own requests
    plan = [(group[c % replicas].url, names_for(c, 6)) for c in range(2 * replicas)]
    acks = run_clients(plan)

    assert len(acks.commits) == 12 * replicas
    assert_all_published(remote_dir, acks, tmp_path, url)
    # and each replica still answers writes after the contention, from the same tip
    more = run_clients([(server.url, names_for(90 + i, 1, "after")) for i, server in enumerate(group)])
    acks.commits.update(more.commits)
    assert_all_published(remote_dir, acks, tmp_path, url)
    # the replicas really competed: all but the last publisher had a stale tip for "after"
    assert sum(rejected_publishes(server) for server in group) >= replicas - 1


def test_outside_commit_is_absorbed(tmp_path: Path, servers: ExitStack) -> None:
    remote_dir = init_bare(tmp_path / "remote.git")
    url = remote_dir.as_uri()
    server = _start(servers, tmp_path / "data", url)
    register_destination(server)
    acks = run_clients([(server.url, names_for(0, 3))])

    person = tmp_path / "person"
    git("clone", "-q", url, str(person))
    (person / "README.md").write_text("# State of the fleet\n\nWritten by a person.\n")
    git("add", "README.md", cwd=person)
    git("-c", "user.name=Person", "-c", "user.email=person@example.invalid",
        "commit", "-q", "-m", "docs: add a README", cwd=person)
    git("push", "-q", "origin", "HEAD:main", cwd=person)
    person_commit = git("rev-parse", "HEAD", cwd=person).strip()

    # writes right after the outside commit: the service's tip is stale, it must re-plan
    more = run_clients([(server.url, names_for(c, 4, "next")) for c in range(1, 4)])
    acks.commits.update(more.commits)
    assert not more.failures and len(more.commits) == 12

    # a second outside commit while clients are writing
    def person_edits() -> None:
        git("pull", "-q", "--rebase", "origin", "main", cwd=person)
        (person / "README.md").write_text("# State of the fleet\n\nEdited while writes go on.\n")
        git("-c", "user.name=Person", "-c", "user.email=person@example.invalid",
            "commit", "-q", "-am", "docs: edit the README", cwd=person)
        for _ in range(10):  # bounded: the branch moves under the person too
            try:
                git("push", "-q", "origin", "HEAD:main", cwd=person)
                return
            except RuntimeError:
                git("pull", "-q", "--rebase", "origin", "main", cwd=person)
        raise AssertionError("the person could not push in 10 tries")

    with ThreadPoolExecutor(1) as pool:
        edit = pool.submit(person_edits)
        during = run_clients([(server.url, names_for(c, 4, "during")) for c in range(4, 7)])
        edit.result(timeout=120)
    acks.commits.update(during.commits)
    acks.failures.extend(during.failures)
    final = run_clients([(server.url, names_for(9, 2, "final"))])
    acks.commits.update(final.commits)

    assert_all_published(remote_dir, acks, tmp_path, url)
    readme = git(f"--git-dir={remote_dir}", "show", "main:README.md")
    assert "Edited while writes go on." in readme
    history = git(f"--git-dir={remote_dir}", "rev-list", "main").split()
    assert person_commit in history


# -- the lane catching up with a moved branch, in-process --------------------------------------


def _apply(namespace: str, name: str, **extra: object) -> Operation:
    payload = request_bundle(name, namespace, destinationSelectors=dict(LABELS), **extra)
    return functools.partial(_plan_apply, bundle=parse_bundle(payload))


def _plan_apply(index: Index, tree: Tree, *, bundle: Bundle) -> planner.Plan:
    return planner.plan_apply(index, tree, bundle, "tester")


def _index_state(index: Index) -> dict[str, dict[object, object]]:
    return {name: dict(getattr(index, name).items())
            for name in ("destinations", "owners", "objects", "requests", "cluster_kinds", "kept")}


def test_lane_catches_up_with_only_the_changed_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another writer moves the branch (adds, changes, deletes requests, updates a
    destination); the lane re-plans on the new tip after reading only what changed, and
    its index is exactly what a full load of the new tip gives."""
    repo = tmp_path / "state.git"
    ours, theirs = Writer(EmbeddedStore(repo)), Writer(EmbeddedStore(repo))
    try:
        def put_destination(writer: Writer, name: str, labels: dict[str, str]) -> None:
            operation = functools.partial(planner.plan_put_destination, name=name, labels=labels,
                                          path=None, actor="tester")
            status, body = answered(writer.submit(lambda i, t: operation(i, t)))
            assert status == 200, body

        put_destination(ours, DESTINATION, LABELS)
        for name in ("a", "b", "c"):
            assert answered(ours.submit(_apply("team-0", name)))[0] == 200
        # the other writer starts from the published tip and moves the branch a lot
        for name in ("d", "e"):
            assert answered(theirs.submit(_apply("team-1", name)))[0] == 200
        changed = theirs.submit(_apply("team-0", "a", status={"phase": "changed"}))
        assert answered(changed)[1]["changed"]
        gone = theirs.submit(functools.partial(
            planner.plan_delete, promise="elastic-cloud", namespace="team-0", name="b",
            pipeline=None, actor="tester"))
        assert answered(gone)[0] == 200
        # newer CRDs whose writer then leaves: the kept generation travels too
        newer = {**request_files("g"), "elastic-crds.yaml": crds("2.9.0")}
        assert answered(theirs.submit(_apply("team-1", "g", files=newer, promiseGeneration=3)))[0] == 200
        gone_newer = theirs.submit(functools.partial(
            planner.plan_delete, promise="elastic-cloud", namespace="team-1", name="g",
            pipeline=None, actor="tester"))
        assert answered(gone_newer)[0] == 200
        put_destination(theirs, DESTINATION, {**LABELS, "zone": "b"})
        put_destination(theirs, "worker-2", {"environment": "prod"})

        with caplog.at_level(logging.INFO, logger="statewriter.writer"):
            caplog.clear()  # only what this write logs
            status, body = answered(ours.submit(_apply("team-2", "f", promiseGeneration=2)))
        assert status == 200 and body["changed"], body
        assert len(body["keptAtNewerGeneration"]) == 4  # seen through the catch-up
        assert any("advanced state to" in r.getMessage() for r in caplog.records)
        assert not any("loaded state at" in r.getMessage() for r in caplog.records)

        tip, index, tree = ours.snapshot()
        assert tip == ours.store.refresh()
        assert _index_state(index) == _index_state(Index.load(tree))
        assert {r.owner.name for r in index.owners.values()} == {"a", "c", "d", "e", "f"}
        assert len(dict(index.kept.items())) == 4  # the four CRDs at generation 3
    finally:
        ours.close()
        theirs.close()


def answered(future: Future[Outcome]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body the service gives for a job of the writer lane."""
    return answer(future.result(timeout=60))


def test_lane_commits_the_follow_up_placement_in_the_same_publish(tmp_path: Path) -> None:
    """A change that frees a request a conflict kept out gets a second commit, placing it,
    published together with the first; the answer names the first."""
    repo = tmp_path / "state.git"
    writer = Writer(EmbeddedStore(repo))
    try:
        gone, tip = support.a_conflict_freed_by_a_delete(writer, DESTINATION, LABELS)
        assert git(f"--git-dir={repo}", "rev-parse", f"{tip}~1").strip() == gone
        assert "Statewriter-Request: team-0/two" in git(f"--git-dir={repo}", "log", "-1", tip)
    finally:
        writer.close()
