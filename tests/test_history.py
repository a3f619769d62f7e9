"""A request's history (`gitops.reads.history`, rendered as the API and the CLI render it) on
a real git repository whose commits are the planner's own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.cli.history import format_history
from app.jsonable import jsonable
from gitops import layout
from gitops.bundle import parse_bundle
from gitops.errors import NotFound
from gitops.index import Index
from gitops.owner import Owner
from gitops.planner import Plan, plan_apply, plan_delete, plan_put_destination
from gitops.reads import history
from gitops.revert import revert
from gitops.store import EmbeddedStore
from gitops.store.base import Author
from gitops.store.reads import open_repository
from gitops.tree import DictTree
from tests.conftest import in_process
from tests.fixtures.eck import request_bundle, request_files

ENV = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_AUTHOR_NAME": "statewriter", "GIT_AUTHOR_EMAIL": "statewriter@example.invalid",
       "GIT_COMMITTER_NAME": "statewriter", "GIT_COMMITTER_EMAIL": "statewriter@example.invalid"}
EXAMPLE = "worker-1/resources/" + layout.owner_folder(
    Owner("elastic-cloud", "default", "example", "default"))
KIBANA = f"{EXAMPLE}/default_Kibana.kibana.k8s.elastic.co_example.yaml"
SETTINGS = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=env or ENV)
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout


def request_history(path: Path, branch: str, promise: str, namespace: str,
                    name: str) -> list[dict[str, Any]]:
    """The history as `statewriter history --repo PATH --branch BRANCH` reads it."""
    repository = open_repository(path)
    entries: list[dict[str, Any]] = jsonable(history.request_history(
        repository, repository.resolve_branch(branch), promise, namespace, name))
    return entries


class Repo:
    """A work tree that commits each plan the way the writer would: one commit per plan,
    the plan's message, times one day apart (2024-05-01 10:00 +02:00, ...)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        git(path, "init", "--quiet", "--initial-branch=main")
        self.tree = DictTree()
        self.index = Index()
        self.day = 0

    def commit(self, plan: Plan) -> dict[str, Any]:
        assert plan.changes, "a plan that changes nothing makes no commit"
        files = dict(self.tree.files(""))
        for path, content in plan.changes.items():
            target = self.path / path
            if content is None:
                files.pop(path)
                target.unlink()
            else:
                files[path] = content
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        self.tree = DictTree(files)
        plan.index.merge_down()
        self.day += 1
        when = f"2024-05-{self.day:02d}T10:00:00+02:00"
        (self.path.parent / "message").write_text(plan.message)
        git(self.path, "add", "-A")
        git(self.path, "commit", "--quiet", "-F", str(self.path.parent / "message"),
            env={**ENV, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
        files_seen = {key: [p for p in getattr(plan.files, key) if not p.startswith(".statewriter/")]
                      for key in ("added", "changed", "removed")}
        return {"sha": git(self.path, "rev-parse", "HEAD").strip(),
                "time": f"2024-05-{self.day:02d}T08:00:00Z",
                "message": plan.message.split("\n", 1)[0],
                "files": files_seen}

    def apply(self, payload: dict[str, Any], actor: str) -> dict[str, Any]:
        return self.commit(plan_apply(self.index, self.tree, parse_bundle(payload), actor))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, dict[str, dict[str, Any]]]:
    repo = Repo(tmp_path_factory.mktemp("history") / "work")
    commits: dict[str, dict[str, Any]] = {}
    commits["register"] = repo.commit(plan_put_destination(
        repo.index, repo.tree, "worker-1", {"env": "dev"}, None, "admin"))
    commits["example"] = repo.apply(
        request_bundle("example", files={**request_files("example"), "settings.yaml": SETTINGS}),
        "alice")
    commits["other"] = repo.apply(request_bundle("other"), "bob")
    commits["extra"] = repo.apply(
        {**request_bundle("example", files={"settings.yaml": SETTINGS}), "pipeline": "extra"},
        "alice")
    files = {**request_files("example"), "settings.yaml": SETTINGS}
    files["kibana.yaml"] = files["kibana.yaml"].replace("count: 1", "count: 2")
    commits["kibana"] = repo.apply(request_bundle("example", files=files), "alice")
    commits["pending"] = repo.apply(
        request_bundle("waiting", destinationSelectors={"env": "prod"}), "dave")
    commits["worker-2"] = repo.commit(plan_put_destination(
        repo.index, repo.tree, "worker-2", {"env": "prod"}, None, "admin"))
    commits["delete"] = repo.commit(plan_delete(
        repo.index, repo.tree, "elastic-cloud", "default", "example", None, "carol"))
    # Trailers are matched within their group: this names other-promise's default/example
    # and elastic-cloud's default/waiting2, not elastic-cloud's default/example.
    git(repo.path, "commit", "--quiet", "--allow-empty", "-m",
        "destination commit\n\nStatewriter-Action: destination\n"
        "Statewriter-Promise: other-promise\nStatewriter-Request: default/example\n"
        "Statewriter-Pipeline: default\nStatewriter-Promise: elastic-cloud\n"
        "Statewriter-Request: default/waiting2\nStatewriter-Pipeline: default\n"
        "Statewriter-Destination: worker-1\nStatewriter-Actor: admin\n")
    return repo, commits


def test_request_history_newest_first_with_the_planners_files(
    story: tuple[Repo, dict[str, dict[str, Any]]],
) -> None:
    repo, commits = story
    history = request_history(repo.path, "main", "elastic-cloud", "default", "example")
    expected = [
        {**commits["delete"], "actor": "carol", "action": "delete", "reverts": None,
         "pipelines": ["default", "extra"], "destinations": ["worker-1"]},
        {**commits["kibana"], "actor": "alice", "action": "apply", "reverts": None, "pipelines": ["default"],
         "destinations": ["worker-1"]},
        {**commits["extra"], "actor": "alice", "action": "apply", "reverts": None, "pipelines": ["extra"],
         "destinations": ["worker-1"]},
        {**commits["example"], "actor": "alice", "action": "apply", "reverts": None, "pipelines": ["default"],
         "destinations": ["worker-1"]},
    ]
    assert history == expected


def test_files_added_changed_removed(story: tuple[Repo, dict[str, dict[str, Any]]]) -> None:
    repo, _ = story
    first, extra, kibana, delete = reversed(
        request_history(repo.path, "main", "elastic-cloud", "default", "example"))
    assert f"{EXAMPLE}/default_ConfigMap_settings.yaml" in first["files"]["added"]
    assert "worker-1/dependencies/_cluster/_core/Namespace_elastic-system.yaml" in first["files"]["added"]
    assert first["files"]["changed"] == ["worker-1/dependencies/kustomization.yaml",
                                         "worker-1/resources/kustomization.yaml"]
    assert first["files"]["removed"] == []
    # A second pipeline outputs settings too: it moves to _shared/ in the same commit.
    assert "worker-1/resources/_shared/default/ConfigMap_settings.yaml" in extra["files"]["added"]
    assert f"{EXAMPLE}/default_ConfigMap_settings.yaml" in extra["files"]["removed"]
    assert kibana["files"] == {"added": [], "changed": [KIBANA], "removed": []}
    assert KIBANA in delete["files"]["removed"]
    assert "worker-1/resources/_shared/default/ConfigMap_settings.yaml" in delete["files"]["removed"]
    # dependencies other requests still hold stay
    assert not any("/dependencies/" in path for path in delete["files"]["removed"])
    for entry in (first, extra, kibana, delete):
        for paths in entry["files"].values():
            assert not any(path.startswith(".statewriter/") for path in paths)


def test_a_pending_request_placed_by_a_destination_commit(
    story: tuple[Repo, dict[str, dict[str, Any]]],
) -> None:
    repo, commits = story
    placed, pending = request_history(repo.path, "main", "elastic-cloud", "default", "waiting")
    assert pending["sha"] == commits["pending"]["sha"]
    assert (pending["action"], pending["actor"], pending["destinations"]) == ("apply", "dave", [])
    assert pending["files"] == {"added": [], "changed": [], "removed": []}  # state only
    assert placed["sha"] == commits["worker-2"]["sha"]
    assert (placed["action"], placed["actor"]) == ("destination", "admin")
    assert placed["pipelines"] == ["default"]
    assert placed["destinations"] == ["worker-2"]
    waiting = layout.owner_folder(Owner("elastic-cloud", "default", "waiting", "default"))
    kibana = KIBANA.rpartition("/")[2].replace("example", "waiting")
    assert f"worker-2/resources/{waiting}/{kibana}" in placed["files"]["added"]


def test_other_requests_and_unknown_requests(story: tuple[Repo, dict[str, dict[str, Any]]]) -> None:
    repo, commits = story
    (other,) = request_history(repo.path, "main", "elastic-cloud", "default", "other")
    assert (other["sha"], other["actor"]) == (commits["other"]["sha"], "bob")
    assert request_history(repo.path, "main", "elastic-cloud", "default", "exam") == []
    assert request_history(repo.path, "main", "elastic-cloud", "team-a", "example") == []
    assert request_history(repo.path, "main", "nope", "default", "example") == []
    (manual,) = request_history(repo.path, "main", "other-promise", "default", "example")
    assert (manual["message"], manual["pipelines"]) == ("destination commit", ["default"])
    assert manual["files"] == {"added": [], "changed": [], "removed": []}


def test_bare_repository_and_branches(
    story: tuple[Repo, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    repo, _ = story
    bare = tmp_path / "state.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo.path), str(bare))
    work = request_history(repo.path, "main", "elastic-cloud", "default", "example")
    assert request_history(bare, "main", "elastic-cloud", "default", "example") == work
    # Only the branch asked for: an older branch sees the older history.
    git(bare, "branch", "before-delete", "main~2")
    older = request_history(bare, "before-delete", "elastic-cloud", "default", "example")
    assert older == work[1:]
    with pytest.raises(NotFound):
        request_history(bare, "no-such-branch", "elastic-cloud", "default", "example")
    empty = tmp_path / "empty.git"
    git(tmp_path, "init", "--quiet", "--bare", str(empty))
    assert request_history(empty, "main", "elastic-cloud", "default", "example") == []
    with pytest.raises(NotFound):
        request_history(tmp_path / "nowhere", "main", "elastic-cloud", "default", "example")


def test_root_commit_files(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "work")
    repo.commit(plan_put_destination(repo.index, repo.tree, "worker-1", {}, None, "admin"))
    # Rewrite history so the apply is the root commit.
    repo.apply(request_bundle("example"), "alice")
    root = git(repo.path, "commit-tree", "HEAD^{tree}", "-m",
               git(repo.path, "log", "-1", "--format=%B")).strip()
    git(repo.path, "update-ref", "refs/heads/main", root)
    (entry,) = request_history(repo.path, "main", "elastic-cloud", "default", "example")
    assert entry["sha"] == root
    everything = [path for path, _ in repo.tree.files("") if not path.startswith(".statewriter/")]
    assert "worker-1/dependencies/kustomization.yaml" in everything
    assert entry["files"] == {"added": everything, "changed": [], "removed": []}


def test_format_history(story: tuple[Repo, dict[str, dict[str, Any]]]) -> None:
    repo, commits = story
    entries = request_history(repo.path, "main", "elastic-cloud", "default", "example")
    text = format_history(entries)
    blocks = text.rstrip("\n").split("\n\n")
    assert len(blocks) == 4
    delete, kibana = blocks[0].splitlines(), blocks[1].splitlines()
    assert delete[0] == f"{commits['delete']['sha'][:12]}  2024-05-08T08:00:00Z  carol  delete"
    assert delete[1] == "    delete elastic-cloud default/example"
    assert delete[2] == "    pipelines: default, extra; destinations: worker-1"
    assert f"    - {KIBANA}" in delete
    assert kibana[-1] == f"    ~ {KIBANA}"
    assert f"    + {EXAMPLE}/default_ConfigMap_settings.yaml" in blocks[3].splitlines()
    assert format_history([]) == "no commits name this request\n"


def test_a_revert_shows_in_its_requests_history_and_in_the_audit(tmp_path: Path) -> None:
    """`statewriter revert` on a stopped service's store: the request's history (API) shows
    the revert, and the revert of that revert, naming what each reverts; /v1/history lists
    them under action=revert."""
    root = tmp_path / "service"
    path = "/v1/promises/elastic-cloud/requests/default/example/history"
    with in_process(root) as service:
        assert service.call("PUT", "/v1/destinations/worker-1", json={"labels": {}}).status_code == 200
        first = service.call("POST", "/v1/bundles", json=request_bundle("example")).json()["commit"]
        files = request_files("example")
        files["kibana.yaml"] = files["kibana.yaml"].replace("count: 1", "count: 2")
        answer = service.call("POST", "/v1/bundles", json=request_bundle("example", files=files))
        second = answer.json()["commit"]
        store = service.repo
    author = Author("operator", "operator@example.invalid")
    undone = revert(EmbeddedStore(store), second[:12], author, "operator")
    redone = revert(EmbeddedStore(store), undone.commit, author, "operator")

    with in_process(root) as service:
        commits = service.call("GET", path).json()["commits"]
        assert [(c["sha"], c["action"], c["reverts"]) for c in commits] == [
            (redone.commit, "revert", undone.commit), (undone.commit, "revert", second),
            (second, "apply", None), (first, "apply", None)]
        for entry in commits[:2]:
            assert (entry["actor"], entry["pipelines"], entry["destinations"]) == (
                "operator", ["default"], ["worker-1"])
        assert commits[1]["files"]["changed"] == [KIBANA]
        audit = service.call("GET", "/v1/history", params={"action": "revert"}).json()["commits"]
        assert [(c["sha"], c["reverts"], c["actor"]) for c in audit] == [
            (redone.commit, undone.commit, "operator"), (undone.commit, second, "operator")]
        shown = format_history(commits).split("\n\n")
        assert shown[1].splitlines()[0].endswith("operator  revert")
        assert shown[1].splitlines()[2].startswith(f"    reverts: {second}; pipelines: default")
        applies = service.call("GET", "/v1/history", params={"action": "apply"}).json()["commits"]
        assert [c["sha"] for c in applies] == [second, first]
        assert {c["reverts"] for c in applies} == {None}
    # another request's history has none of them
    assert request_history(store, "main", "elastic-cloud", "default", "other") == []
