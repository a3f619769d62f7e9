"""Rolling a request back end to end: a real `statewriter serve` (tests/procs.py), the real
`statewriter rollback` command as its own process, git reading the store. Post v1, post v2,
roll back to v1's commit: the files are v1's, `git log` shows the rollback commit with its
trailers, `statewriter verify` finds the store clean; and the refusals (a commit that is not
an id, unknown, not on the branch; a promise the token may not write; a request without
output then; a conflict) change nothing."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops import layout
from tests.conftest import Service
from tests.fixtures.eck import request_bundle
from tests.procs import ROOT, git, running_server, statewriter_command

TOKEN, OTHER, ADMIN = "s3cret", "0ther", "adm1n"
CONFIG = f"""
auth:
  tokens:
    - {{name: pipeline, token: {TOKEN}, promises: [elastic-cloud], destinations: true}}
    - {{name: other-team, token: {OTHER}, promises: [postgres]}}
    - {{name: admin, token: {ADMIN}, promises: ["*"]}}
"""
PROMISE = "elastic-cloud"
ENV = ("STATEWRITER_TOKEN", "STATEWRITER_URL", "PROMISE", "REQUEST", "PIPELINE")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("rollback")
    with running_server(root / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        service = Service.of(server, TOKEN)
        response = service.call("PUT", "/v1/destinations/worker-1", json={"labels": {"env": "dev"}})
        assert response.status_code == 200, response.text
        yield service
        service.close()


def statewriter(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ENV}
    if token is not None:
        environment["STATEWRITER_TOKEN"] = token
    return subprocess.run([*statewriter_command(), *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def rollback(service: Service, request: str, commit: str, *extra: str,
             token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    return statewriter("rollback", "--url", service.url, "--promise", PROMISE, "--request",
                       request, "--commit", commit, "--retries", "1", *extra, token=token)


def post(service: Service, name: str, **changes: str | None) -> str:
    """The ECK bundle of request default/`name`, with files changed (None: left out)."""
    bundle: dict[str, Any] = request_bundle(name, destinationSelectors={"env": "dev"})
    files = {**bundle["files"], **changes}
    bundle["files"] = {file: text for file, text in files.items() if text is not None}
    response = service.call("POST", "/v1/bundles", json=bundle)
    assert response.status_code == 200, response.text
    commit: str = response.json()["commit"]
    return commit


def tree(service: Service, commit: str, path: str) -> dict[str, str]:
    """path -> blob id of every file below `path` at `commit`."""
    out = git(f"--git-dir={service.repo}", "ls-tree", "-r", commit, "--", path)
    return {line.split("\t")[1]: line.split()[2] for line in out.splitlines()}


def record(service: Service, commit: str, name: str) -> dict[str, Any]:
    path = f"{layout.OWNERS_DIR}/{PROMISE}/default/{layout.shard(name)}/{name}/default.json"
    found: dict[str, Any] = json.loads(git(f"--git-dir={service.repo}", "show", f"{commit}:{path}"))
    return found


V2 = {"elasticsearch.yaml": ("apiVersion: elasticsearch.k8s.elastic.co/v1\nkind: Elasticsearch\n"
                             "metadata:\n  name: {name}\nspec:\n  version: 8.15.0\n  nodeSets:\n"
                             "  - name: default\n    count: 3\n"),
      "extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n"}


def test_post_v1_post_v2_roll_back_to_v1(service: Service, tmp_path: Path) -> None:
    v1 = post(service, "shop")
    v2 = post(service, "shop", **{"elasticsearch.yaml": V2["elasticsearch.yaml"].format(name="shop"),
                                  "extra.yaml": V2["extra.yaml"], "kibana.yaml": None})
    assert tree(service, v2, "worker-1") != tree(service, v1, "worker-1")

    done = rollback(service, "default/shop", v1[:10])

    assert done.returncode == 0, done.stderr
    tip = service.tip()
    assert tip is not None and tip != v2
    assert "statewriter rollback: HTTP 200 Scheduled" in done.stdout
    assert f"commit: {tip}" in done.stdout and "changed: true" in done.stdout
    assert f"rolledBackTo: {v1}" in done.stdout and "pipelines: default" in done.stdout
    # the files are v1's, byte for byte (nothing else changed meanwhile)
    assert tree(service, tip, "worker-1") == tree(service, v1, "worker-1")
    now, then = record(service, tip, "shop"), record(service, v1, "shop")
    assert now.pop("serial") > then.pop("serial") and now == then
    # one commit, with its trailers
    assert git(f"--git-dir={service.repo}", "rev-parse", f"{tip}~1").strip() == v2
    message = git(f"--git-dir={service.repo}", "log", "-1", "--format=%B", tip)
    assert message.startswith(f"rollback {PROMISE} default/shop to {v1[:12]}\n")
    trailers = git(f"--git-dir={service.repo}", "log", "-1",
                   "--format=%(trailers:only,unfold)", tip).splitlines()
    for line in ("Statewriter-Action: rollback", f"Statewriter-Rollback-To: {v1}",
                 f"Statewriter-Promise: {PROMISE}", "Statewriter-Request: default/shop",
                 "Statewriter-Pipeline: default", "Statewriter-Destination: worker-1",
                 "Statewriter-Actor: pipeline"):
        assert line in trailers, (line, trailers)
    # the store is clean, as Flux clones it
    verified = statewriter("verify", f"{service.url}/git/state.git")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the history and the audit log say what it was
    history = statewriter("history", PROMISE, "default/shop", "--url", service.url)
    assert history.returncode == 0, history.stderr
    assert history.stdout.startswith(f"{tip[:12]}  ") and "pipeline  rollback" in history.stdout
    audit = service.call("GET", "/v1/history", params={"action": "rollback"})
    assert [c["sha"] for c in audit.json()["commits"]] == [tip]
    assert audit.json()["commits"][0]["summary"] == f"rollback {PROMISE} default/shop to {v1[:12]}"

    again = statewriter("rollback", PROMISE, "default/shop", "--to", v1, "--url", service.url)
    assert again.returncode == 0, again.stderr
    assert "changed: false" in again.stdout and service.tip() == tip


def test_a_dry_run_answers_and_writes_nothing(service: Service) -> None:
    v1 = post(service, "dry")
    post(service, "dry", **{"extra.yaml": V2["extra.yaml"]})
    before = service.tip()
    done = rollback(service, "default/dry", v1, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dryRun: true" in done.stdout and "changed: true" in done.stdout
    assert "files: 0 added, 2 changed, 1 removed" in done.stdout
    assert service.tip() == before


def test_refusals_change_nothing(service: Service) -> None:
    v1 = post(service, "kept")
    post(service, "kept", **{"extra.yaml": V2["extra.yaml"]})
    before = post(service, "later")  # a request without output at v1
    # a commit object in the store, but not on the branch (another branch's, a rewrite's)
    root = git(f"--git-dir={service.repo}", "rev-parse", f"{v1}^{{tree}}").strip()
    side = git("-c", "user.name=Person", "-c", "user.email=person@example.org",
               f"--git-dir={service.repo}", "commit-tree", root, "-p", v1, "-m", "aside").strip()

    cases = [  # (arguments, token, exit status, what stderr says)
        (("default/kept", "not-a-sha"), TOKEN, 2, "statewriter: rollback: --commit must be a commit id"),
        (("default/kept", "deadbeef" * 5), TOKEN, 1, "HTTP 422: commit: there is no commit"),
        (("default/kept", side), TOKEN, 1, "HTTP 422: commit: commit " + side[:12]
         + " is not on the branch's history"),
        (("default/kept", v1), OTHER, 1, "HTTP 403"),
        (("default/kept", v1), "wrong", 1, "HTTP 401"),
        (("default/later", v1), TOKEN, 1, "HTTP 404: request default/later of promise "
         f"elastic-cloud had no output at {v1[:12]}"),
    ]
    for (request, commit), token, status, said in cases:
        done = rollback(service, request, commit, token=token)
        assert done.returncode == status, (request, commit, done.stdout, done.stderr)
        assert said in done.stderr, done.stderr
    assert service.tip() == before


def test_a_conflict_with_what_another_promise_wrote_since_is_409(service: Service) -> None:
    owned = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  by: {by}\n"
    v1 = post(service, "claimed", **{"owned.yaml": owned.format(by="elastic")})
    post(service, "claimed")
    other = {"promise": "postgres", "request": {"namespace": "default", "name": "thief"},
             "destinationSelectors": {"env": "dev"}, "files": {"o.yaml": owned.format(by="pg")}}
    assert service.call("POST", "/v1/bundles", ADMIN, json=other).status_code == 200
    before = service.tip()

    response = service.call("POST", f"/v1/promises/{PROMISE}/requests/default/claimed/rollback",
                            json={"commit": v1})

    assert response.status_code == 409, response.text
    assert response.json()["owners"] == [
        {"promise": "postgres", "request": "default/thief", "pipeline": "default"}]
    assert service.tip() == before
