"""`statewriter revert --data DIR COMMIT` through the real command, on data folders a real
service wrote: a person's commit that left a record the service cannot read (the service
read-only on it; reverted, and a restart writes again), refused while the service runs,
refused on a later change of the same files, --force past an invariant, an unknown commit,
a merge commit, a folder without a store. Every refusal is one line and changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from gitops import layout
from gitops.owner import make_owner
from tests.procs import ROOT, branch_tip, git, running_server, statewriter_command
from tests.support import config_map, payload
from tests.test_signing import EMAIL as SIGNING_EMAIL
from tests.test_signing import make_ssh_key

RECORD = layout.owner_record_path(make_owner("shop", "team-a", "one", None))


def write(http: httpx.Client, value: str, request: str = "team-a/one") -> httpx.Response:
    return http.post("/v1/bundles", json=payload(
        "shop", request, {"a.yaml": config_map("a", "team-a", value)}, selectors={"env": "dev"}))


def statewriter(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STATEWRITER_", "GIT_"))}
    return subprocess.run([*statewriter_command(), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def revert(data: Path, commit: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return statewriter("revert", "--data", str(data), commit, "--actor", "alice", *flags)


def refused(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line a refused revert ended with."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("statewriter: revert: "), done.stderr
    return done.stderr


PERSON = ("-c", "user.name=someone", "-c", "user.email=s@example.invalid")


def by_hand(data: Path, work: Path, change: Callable[[Path], None], message: str | None) -> str:
    """What a person does to the embedded store: clone, change, commit (unless `change`
    committed itself: `message` None), push."""
    git("clone", "-q", str(data / "state.git"), str(work))
    change(work)
    if message is not None:
        git("-C", str(work), "add", "-A")
        git("-C", str(work), *PERSON, "commit", "-qm", message)
    git("-C", str(work), "push", "-q", "origin", "main")
    return git("-C", str(work), "rev-parse", "HEAD").strip()


def trailers(data: Path) -> list[str]:
    message = git(f"--git-dir={data / 'state.git'}", "log", "-1", "--format=%B", "main")
    return git("interpret-trailers", "--parse", input=message.encode()).splitlines()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A stopped service's data folder: a destination, then request team-a/one at 1, 2 and 3
    (each commit changes the same files) and the commits of the three."""
    data = tmp_path_factory.mktemp("written") / "data"
    commits = []
    with running_server(data) as server, server.client() as http:
        assert http.put("/v1/destinations/w1", json={"labels": {"env": "dev"}}).status_code == 200
        for value in ("1", "2", "3"):
            answer = write(http, value)
            assert answer.status_code == 200, answer.text
            commits.append(answer.json()["commit"])
    return data, commits


@pytest.fixture
def data(written: tuple[Path, list[str]], tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "data"
    shutil.copytree(written[0], copy, symlinks=True)
    yield copy


def test_a_persons_bad_commit_is_reverted_and_the_service_writes_again(
        data: Path, tmp_path: Path) -> None:
    bad = by_hand(data, tmp_path / "work", lambda work: (work / RECORD).write_text("{not json"),
                  "fix the record by hand")
    with running_server(data, ready_path="/healthz") as server, server.client() as http:
        assert write(http, "4").status_code == 503  # read-only on a record it cannot read
        ready = http.get("/readyz")  # in its Service for reads, saying writes are refused
        assert ready.status_code == 200 and ready.json()["writes"] is False
        assert http.get("/readyz", params={"writes": "true"}).status_code == 503
    assert branch_tip(data) == bad
    done = revert(data, bad[:10])
    assert done.returncode == 0, done.stderr
    new = branch_tip(data)
    assert new != bad and f"committed {new}" in done.stdout
    assert f"reverts: {bad}" in done.stdout and RECORD in done.stdout
    assert "findings" not in done.stdout
    assert {"Statewriter-Action: revert", f"Statewriter-Reverts: {bad}",
            "Statewriter-Actor: alice"} <= set(trailers(data))
    assert git(f"--git-dir={data / 'state.git'}", "rev-parse", f"{new}^") == f"{bad}\n"
    with running_server(data) as server, server.client() as http:
        assert http.get("/readyz", params={"writes": "true"}).status_code == 200
        answer = write(http, "4")
        assert answer.status_code == 200 and answer.json()["changed"] is True, answer.text
    verified = statewriter("verify", str(data / "state.git"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_refused_while_the_service_runs(data: Path) -> None:
    tip = branch_tip(data)
    assert tip is not None
    with running_server(data) as server:
        line = refused(revert(data, tip), 1)
        assert f"statewriter pid {server.pid}" in line and "stop the service first" in line
        assert branch_tip(data) == tip


def test_refused_when_a_later_commit_changed_its_files(
        data: Path, written: tuple[Path, list[str]]) -> None:
    _, (_, middle, last) = written
    line = refused(revert(data, middle), 1)
    assert "revert those commits first" in line and "later commits changed" in line
    assert branch_tip(data) == last
    # newest first, it goes: the last change, then the one before
    assert revert(data, last).returncode == 0
    done = revert(data, middle)
    assert done.returncode == 0, done.stderr


def test_a_revert_that_breaks_an_invariant_needs_force(data: Path, tmp_path: Path) -> None:
    # someone added a file no owner holds, someone else removed it: reverting the removal
    # would bring back an object nobody owns
    stray = "w1/resources/stray.yaml"
    by_hand(data, tmp_path / "a", lambda work: (work / stray).write_text(config_map("s", "team-a")),
            "add a stray file")
    removal = by_hand(data, tmp_path / "b", lambda work: (work / stray).unlink(), "remove it")
    line = refused(revert(data, removal), 1)
    assert "would break" in line and "--force" in line
    assert branch_tip(data) == removal
    forced = revert(data, removal, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "findings (forced past" in forced.stdout and "stray.yaml" in forced.stdout
    assert git(f"--git-dir={data / 'state.git'}", "cat-file", "-e", f"main:{stray}") == ""


def test_an_unknown_commit_is_a_usage_error(data: Path) -> None:
    tip = branch_tip(data)
    assert "no commit" in refused(revert(data, "0" * 40), 2)
    assert "no commit" in refused(revert(data, "abcd"), 2)
    assert branch_tip(data) == tip


def test_a_merge_commit_is_refused(data: Path, tmp_path: Path) -> None:
    def merge(work: Path) -> None:
        def commit(name: str) -> None:
            (work / f"{name}.txt").write_text(f"{name}\n")
            git("-C", str(work), "add", "-A")
            git("-C", str(work), *PERSON, "commit", "-qm", name)

        git("-C", str(work), "checkout", "-qb", "side")
        commit("side")
        git("-C", str(work), "checkout", "-q", "main")
        commit("main")
        git("-C", str(work), *PERSON, "merge", "-q", "--no-ff", "-m", "merge side", "side")

    merged = by_hand(data, tmp_path / "work", merge, None)
    assert "is a merge" in refused(revert(data, merged), 2)
    assert branch_tip(data) == merged


@pytest.mark.parametrize("given", ["missing", "empty", "file"])
def test_a_folder_without_a_store_is_a_usage_error_and_nothing_is_created(
        tmp_path: Path, given: str) -> None:
    folder = tmp_path / "folder"
    if given == "empty":
        folder.mkdir()
    elif given == "file":
        folder.write_text("")
    assert str(folder) in refused(revert(folder, "abcd1234"), 2)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ([] if given == "missing" else ["folder"])


def test_without_data_is_a_usage_error() -> None:
    assert "give --data DIR (or set STATEWRITER_DATA)" in refused(statewriter("revert", "abcd"), 2)


@pytest.mark.parametrize("actor", ["", "alice\nStatewriter-Action: apply"])
def test_an_actor_that_is_not_one_line_is_a_usage_error(tmp_path: Path, actor: str) -> None:
    line = refused(statewriter("revert", "--data", str(tmp_path), "abcd", "--actor", actor), 2)
    assert "--actor" in line


def test_a_signing_service_gets_its_revert_signed_by_its_config(data: Path, tmp_path: Path) -> None:
    """Flux verifies the tip of a signing service's branch: the revert, made with the service's
    config file, is signed with its key and written by its author, as its own commits are."""
    key = make_ssh_key(tmp_path, "-t", "ed25519")
    config = tmp_path / "statewriter.yaml"
    config.write_text(yaml.safe_dump({
        "author": {"name": "platform-statewriter", "email": SIGNING_EMAIL},
        "signing": {"format": "ssh", "keyFile": str(key.key_file)}}))
    tip = branch_tip(data)
    assert tip is not None
    done = revert(data, tip, "--config", str(config))
    assert done.returncode == 0, done.stderr
    new = branch_tip(data)
    assert new is not None and new != tip
    git_dir = data / "state.git"
    assert key.verify(git_dir, new).returncode == 0
    assert git(f"--git-dir={git_dir}", "log", "-1", "--format=%an <%ae>", new).strip() == \
        f"platform-statewriter <{SIGNING_EMAIL}>"
    unsigned = revert(data, new)  # without the config: the default author, no signature
    assert unsigned.returncode == 0, unsigned.stderr
    assert key.verify(git_dir, str(branch_tip(data))).returncode != 0
