"""`GET /v1/history`, the commits across requests, against the service (the real app in this
process, tests/conftest.py; several promises, requests, destinations and clients), each
answer compared with a brute-force reading of the same repository (`git log`, `git
interpret-trailers --parse`); the `gitops.reads.audit.AuditLog` behind it on synthetic
repositories (`git fast-import`): extended as the tip moves, read again when the branch is
rewritten, its memory per commit bounded; and `statewriter history` with the same filters."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

import app.cli
import app.cli.history
from app.jsonable import jsonable
from gitops.errors import InvalidQuery
from gitops.reads.audit import AuditLog, parse_query
from gitops.store.reads import open_repository
from tests.conftest import Service, cli_reaches

CONFIG = """
auth:
  tokens:
    - {name: pipeline-a, token: tok-a, promises: [elastic-cloud]}
    - {name: pipeline-b, token: tok-b, promises: [postgres]}
    - {name: admin, token: tok-admin, promises: ["*"], destinations: true}
"""
A, B, ADMIN = "tok-a", "tok-b", "tok-admin"
ENV = {**os.environ, "LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def configmap(name: str, value: str = "v") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: {value}}}\n"


def git(repo: Path, *args: str, input: str | None = None) -> str:
    done = subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True,
                          env=ENV, input=input, check=False)
    assert done.returncode == 0, f"git {args}: {done.stderr}"
    return done.stdout


# -- the brute force: every commit of the branch, read one by one ---------------------------


@dataclass
class Commit:
    sha: str
    time: int
    trailers: list[tuple[str, str]]

    def values(self, key: str) -> list[str]:
        return [value for k, value in self.trailers if k == key]


def brute_log(repo: Path, tip: str = "main") -> list[Commit]:
    commits = []
    for line in git(repo, "log", "--format=%H %ct", tip).splitlines():
        sha, seconds = line.split()
        parsed = git(repo, "interpret-trailers", "--parse",
                     input=git(repo, "log", "-1", "--format=%B", sha))
        trailers = [tuple(t.split(": ", 1)) for t in parsed.splitlines()]
        commits.append(Commit(sha, int(seconds), [(k, v) for k, v in trailers]))
    return commits


def brute_filter(commits: list[Commit], promise: str | None = None, destination: str | None = None,
                 actor: str | None = None, action: str | None = None, since: int | None = None,
                 until: int | None = None) -> list[str]:
    return [c.sha for c in commits
            if (promise is None or promise in c.values("Statewriter-Promise"))
            and (destination is None or destination in c.values("Statewriter-Destination"))
            and (actor is None or actor in c.values("Statewriter-Actor"))
            and (action is None or action in c.values("Statewriter-Action"))
            and (since is None or c.time >= since) and (until is None or c.time <= until)]


def brute_files(repo: Path, sha: str) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    out = git(repo, "show", "--no-renames", "--name-status", "--format=", "--diff-merges=first-parent",
              sha)
    for line in out.splitlines():
        status, path = line.split("\t", 1)
        if not path.startswith(".statewriter/"):
            files[{"A": "added", "D": "removed"}.get(status[0], "changed")].append(path)
    return {key: sorted(paths) for key, paths in files.items()}


def rfc3339(seconds: int, offset_hours: int = 0) -> str:
    zone = timezone(timedelta(hours=offset_hours))
    return datetime.fromtimestamp(seconds, zone).isoformat()


# -- the service -------------------------------------------------------------------------------


def apply(service: Service, token: str, promise: str, request: str | None, env: str, *,
          pipeline: str = "default", value: str = "v", trailers: dict[str, str] | None = None) -> None:
    bundle: dict[str, Any] = {"promise": promise, "pipeline": pipeline,
                              "destinationSelectors": {"env": env},
                              "files": {"cm.yaml": configmap(
                                  f"{promise}-{(request or 'level').split('/')[-1]}", value)}}
    if request:
        namespace, name = request.split("/")
        bundle["request"] = {"namespace": namespace, "name": name}
    if trailers:
        bundle["trailers"] = trailers
    response = service.call("POST", "/v1/bundles", token, json=bundle)
    assert response.status_code in (200, 202), response.text
    assert response.json().get("changed", True), response.text


def destination(service: Service, name: str, env: str) -> None:
    response = service.call("PUT", f"/v1/destinations/{name}", ADMIN, json={"labels": {"env": env}})
    assert response.status_code == 200, response.text


def history(service: Service, token: str = A, **params: str) -> httpx.Response:
    return service.call("GET", "/v1/history", token, params=params)


def walk(service: Service, limit: int = 2, **params: str) -> list[dict[str, Any]]:
    """Every page, following `next`."""
    commits: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = history(service, **params, limit=str(limit), **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["commits"]) <= limit
        commits += body["commits"]
        cursor = body["next"]
        if cursor is None:
            return commits
        assert body["commits"], "a page that names a next page has commits"


@pytest.fixture(scope="module")
def service_config() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def service(module_in_process_service: Service) -> Service:
    """The service in this process (tests/conftest.py), and the story its log tells."""
    service = module_in_process_service
    destination(service, "worker-1", "dev")
    destination(service, "worker-2", "prod")
    apply(service, A, "elastic-cloud", "default/one", "dev", trailers={"Change-Request": "CHG-1"})
    apply(service, B, "postgres", "team-a/db", "prod", trailers={"Correlation-Id": "run-7"})
    apply(service, A, "elastic-cloud", "default/two", "prod", pipeline="instance-configure")
    apply(service, B, "postgres", "team-a/db2", "staging")  # pending: no destination yet
    destination(service, "worker-3", "staging")  # places team-a/db2
    apply(service, A, "elastic-cloud", "default/one", "dev", value="w",
          trailers={"Change-Request": "CHG-2", "Ticket": "T-9"})
    apply(service, ADMIN, "elastic-cloud", None, "dev")  # promise-level
    response = service.call("DELETE", "/v1/promises/elastic-cloud/requests/default/two", A)
    assert response.status_code == 200, response.text
    apply(service, B, "postgres", "team-a/db", "prod", value="w")
    return service


@pytest.fixture
def cli_to_service(service: Service) -> Iterator[None]:
    """`statewriter history --url` reaches the service in this process."""
    with cli_reaches(service):
        yield


# -- what it answers ---------------------------------------------------------------------------


def test_all_commits_newest_first_each_as_its_trailers_name_it(service: Service) -> None:
    reference = brute_log(service.repo)
    commits = walk(service, limit=500)
    assert [c["sha"] for c in commits] == [c.sha for c in reference]
    by_sha = {c.sha: c for c in reference}
    for commit in commits:
        truth = by_sha[commit["sha"]]
        assert commit["time"] == datetime.fromtimestamp(truth.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert commit["actor"] == (truth.values("Statewriter-Actor") or [None])[0]
        assert commit["action"] == (truth.values("Statewriter-Action") or [None])[0]
        for key, field in (("Promise", "promises"), ("Request", "requests"),
                           ("Pipeline", "pipelines"), ("Destination", "destinations")):
            assert commit[field] == list(dict.fromkeys(truth.values(f"Statewriter-{key}")))
        own: dict[str, list[str]] = {}
        for key, value in truth.trailers:
            if not key.startswith("Statewriter-"):
                own.setdefault(key, []).append(value)
        assert commit["trailers"] == own
        assert commit["files"] == brute_files(service.repo, commit["sha"])
        assert commit["summary"] == git(service.repo, "log", "-1", "--format=%s", commit["sha"]).strip()
    # the story's commits, as a person reads them
    placed = next(c for c in commits if c["action"] == "destination" and "worker-3" in c["destinations"])
    assert placed["actor"] == "admin" and placed["promises"] == ["postgres"]
    assert placed["requests"] == ["team-a/db2"]
    changed = next(c for c in commits if c["trailers"].get("Ticket"))
    assert changed["trailers"] == {"Change-Request": ["CHG-2"], "Ticket": ["T-9"]}
    assert (changed["actor"], changed["action"], changed["requests"]) == (
        "pipeline-a", "apply", ["default/one"])
    assert changed["files"]["changed"] and not changed["files"]["added"]


FILTERS: list[dict[str, str]] = [
    {"promise": "elastic-cloud"}, {"promise": "postgres"}, {"promise": "nope"},
    {"destination": "worker-1"}, {"destination": "worker-2"}, {"destination": "worker-3"},
    {"actor": "pipeline-a"}, {"actor": "pipeline-b"}, {"actor": "admin"},
    {"action": "apply"}, {"action": "delete"}, {"action": "destination"},
    {"promise": "elastic-cloud", "action": "apply", "destination": "worker-1"},
    {"promise": "postgres", "actor": "admin"}, {"actor": "pipeline-a", "action": "delete"},
    {"promise": "elastic-cloud", "actor": "pipeline-b"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_each_filter_returns_exactly_the_matching_commits(
    service: Service, filters: dict[str, str]
) -> None:
    expected = brute_filter(brute_log(service.repo), **filters)
    assert [c["sha"] for c in walk(service, limit=2, **filters)] == expected
    assert [c["sha"] for c in walk(service, limit=500, **filters)] == expected


def test_since_and_until_bound_the_commit_time(service: Service) -> None:
    reference = brute_log(service.repo)
    times = sorted({c.time for c in reference})
    middle = times[len(times) // 2]
    for offset in (0, 2, -5):  # the same instant in other offsets
        since, until = rfc3339(middle, offset), rfc3339(middle + 1, offset)
        assert [c["sha"] for c in walk(service, since=since)] == brute_filter(reference, since=middle)
        assert [c["sha"] for c in walk(service, until=until)] == brute_filter(reference, until=middle + 1)
        both = walk(service, since=since, until=until, promise="postgres")
        assert [c["sha"] for c in both] == brute_filter(reference, since=middle, until=middle + 1,
                                                        promise="postgres")
    # Z, fractions, and a '+' sent unencoded (it arrives as a space)
    zulu = datetime.fromtimestamp(middle, UTC).strftime("%Y-%m-%dT%H:%M:%S.250Z")
    assert [c["sha"] for c in walk(service, since=zulu)] == brute_filter(reference, since=middle + 1)
    plus = rfc3339(middle, 2)
    raw = service.client.get(f"/v1/history?since={plus}&limit=500",
                             headers={"authorization": f"Bearer {A}"})
    assert raw.status_code == 200, raw.text
    assert [c["sha"] for c in raw.json()["commits"]] == brute_filter(reference, since=middle)
    assert walk(service, since=rfc3339(times[-1] + 1)) == []


def test_paging_is_stable_while_new_commits_arrive(service: Service) -> None:
    before = brute_log(service.repo)
    seen: list[str] = []
    page = history(service, limit="2").json()
    seen += [c["sha"] for c in page["commits"]]
    pushed = 0
    while page["next"]:
        # a new commit on top between every two pages
        pushed += 1
        apply(service, A, "elastic-cloud", f"default/late-{pushed}", "dev")
        page = history(service, limit="2", cursor=page["next"]).json()
        assert len(page["commits"]) <= 2
        seen += [c["sha"] for c in page["commits"]]
    assert pushed >= 5
    assert seen == [c.sha for c in before]  # each exactly once, none of the new ones
    # the new ones are on top of a fresh first page
    after = brute_log(service.repo)
    assert [c["sha"] for c in walk(service, limit=500)] == [c.sha for c in after]
    assert [c.sha for c in after[pushed:]] == seen
    # and a filtered walk, with commits arriving, too
    filtered_before = brute_filter(after, promise="elastic-cloud")
    page = history(service, limit="3", promise="elastic-cloud").json()
    walked = [c["sha"] for c in page["commits"]]
    while page["next"]:
        pushed += 1
        apply(service, A, "elastic-cloud", f"default/late-{pushed}", "dev")
        page = history(service, limit="3", promise="elastic-cloud", cursor=page["next"]).json()
        walked += [c["sha"] for c in page["commits"]]
    assert walked == filtered_before


@pytest.mark.parametrize("params, field", [
    ({"since": "yesterday"}, "since"),
    ({"since": "2024-05-01"}, "since"),  # a date is not a date-time
    ({"since": "2024-05-01T10:00:00"}, "since"),  # no offset
    ({"until": "2024-13-01T10:00:00Z"}, "until"),
    ({"until": "2024-05-01T25:00:00+02:00"}, "until"),
    ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "since"),
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"limit": "-1"}, "limit"), ({"limit": "2.5"}, "limit"),
    ({"cursor": "not a cursor"}, "cursor"), ({"cursor": "AAAA"}, "cursor"),
    ({"cursor": "MTpub3Rhc2hh"}, "cursor"),  # base64 of "1:notasha"
    # well formed, naming a commit that is not on the branch
    ({"cursor": "MzpkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVm"}, "cursor"),
])
def test_malformed_parameters_are_422_naming_them(
    service: Service, params: dict[str, str], field: str
) -> None:
    response = history(service, **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "InvalidQuery" and body["field"] == field, body
    assert field in body["message"]


def test_empty_parameters_are_as_absent_and_a_token_is_needed(service: Service) -> None:
    everything = walk(service, limit=500)
    assert walk(service, limit=500, promise="", since="") == everything
    assert history(service, token=B, limit="1").status_code == 200  # any valid token reads
    assert service.call("GET", "/v1/history", None).status_code == 401
    assert service.call("GET", "/v1/history", "wrong").status_code == 401
    first = history(service, limit="1").json()
    assert first["commits"] == everything[:1] and isinstance(first["next"], str)
    assert history(service, limit="500").json()["next"] is None


# -- statewriter history --------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = app.cli.main(["history", *args])
    finally:  # main() sets up logging for its process: leave none of it to later tests
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("cli_to_service")
def test_the_cli_prints_every_page(
    service: Service, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEWRITER_TOKEN", B)
    monkeypatch.setattr(app.cli.history, "HISTORY_PAGE", 2)
    calls: list[dict[str, str]] = []
    real_call = app.cli.history.call

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(dict(kwargs.get("params") or {}))
        return real_call(*args, **kwargs)

    monkeypatch.setattr(app.cli.history, "call", counting)
    reference = brute_log(service.repo)
    expected = brute_filter(reference, promise="elastic-cloud")
    assert len(expected) > 4
    code, out, err = run_cli(capsys, "--url", service.url, "--promise", "elastic-cloud", "--json")
    assert (code, err) == (0, "")
    assert [c["sha"] for c in json.loads(out)] == expected
    assert len(calls) == (len(expected) + 1) // 2
    assert all(c["promise"] == "elastic-cloud" and c["limit"] == "2" for c in calls)
    assert "cursor" not in calls[0] and all("cursor" in c for c in calls[1:])

    code, out, err = run_cli(capsys, "--url", service.url, "--actor", "pipeline-b")
    blocks = out.rstrip("\n").split("\n\n")
    assert (code, err) == (0, "")
    assert [b.split()[0] for b in blocks] == [sha[:12] for sha in brute_filter(reference, actor="pipeline-b")]
    assert all("pipeline-b" in b.splitlines()[0] for b in blocks)
    assert "Correlation-Id: run-7" in out and "requests: team-a/db" in out

    calls.clear()
    code, out, _ = run_cli(capsys, "--url", service.url, "--limit", "3", "--json")
    assert code == 0 and [c["sha"] for c in json.loads(out)] == [c.sha for c in reference[:3]]
    assert [c["limit"] for c in calls] == ["2", "1"]

    code, out, _ = run_cli(capsys, "--url", service.url, "--promise", "nope")
    assert code == 1 and out == "no commits match these filters\n"


@pytest.mark.usefixtures("cli_to_service")
def test_the_cli_reads_a_repository_the_same_way(
    service: Service, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.cli.history, "HISTORY_PAGE", 3)
    monkeypatch.setenv("STATEWRITER_TOKEN", A)
    code, local, _ = run_cli(capsys, "--repo", str(service.repo), "--destination", "worker-1")
    assert code == 0
    code, remote, _ = run_cli(capsys, "--url", service.url, "--destination", "worker-1")
    assert code == 0 and local == remote
    # one request's history keeps its positional form
    code, out, err = run_cli(capsys, "postgres", "team-a/db", "--url", service.url, "--json")
    assert code == 0, err
    request = service.call("GET", "/v1/promises/postgres/requests/team-a/db/history", A)
    assert json.loads(out) == request.json()["commits"] and len(json.loads(out)) == 2


@pytest.mark.parametrize("args, expected", [
    (("--url", "http://127.0.0.1:1", "--since", "monday"), "--since must be an RFC 3339"),
    (("--url", "http://127.0.0.1:1", "--limit", "0"), "--limit must be at least 1"),
    (("elastic-cloud", "default/one", "--url", "http://127.0.0.1:1", "--actor", "x"),
     "--actor filter the commits across requests"),
    (("elastic-cloud", "--url", "http://127.0.0.1:1"), "--promise elastic-cloud"),
    (("--promise", "p"), "give --url (or set STATEWRITER_URL) to ask the service, or --repo"),
])
def test_cli_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err, err


def test_cli_against_a_dead_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--url", "http://127.0.0.1:1", "--retries", "0")
    assert code == 1 and out == ""
    assert err.startswith("statewriter: history: cannot reach http://127.0.0.1:1/v1/history")


# -- the log itself: synthetic repositories ---------------------------------------------------


def fast_import(repo: Path, commits: list[dict[str, Any]], branch: str = "main",
                parent: str | None = None) -> str:
    """Commits on `branch` through `git fast-import`; each `{time, trailers, files?, merge?}`.
    Returns the new tip."""
    if not repo.exists():
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(repo)],
                       check=True, env=ENV)
    lines: list[bytes] = []
    for index, commit in enumerate(commits, 1):
        trailers = "".join(f"{k}: {v}\n" for k, v in commit["trailers"])
        message = f"{commit.get('summary', f'commit {index}')}\n\nAdded:\n  x\n\n{trailers}".encode()
        lines += [f"commit refs/heads/{branch}".encode(), f"mark :{index}".encode(),
                  f"committer statewriter <s@example.invalid> {commit['time']} +0000".encode(),
                  f"data {len(message)}".encode(), message]
        if index == 1 and parent:
            lines.append(f"from {parent}".encode())
        elif index > 1:
            lines.append(f"from :{index - 1}".encode())
        if commit.get("merge"):
            lines.append(f"merge {commit['merge']}".encode())
        for path, text in commit.get("files", {f"f/{index % 7}.yaml": f"n: {index}\n"}).items():
            data = text.encode()
            lines += [f"M 644 inline {path}".encode(), f"data {len(data)}".encode(), data]
        lines.append(b"")
    subprocess.run(["git", "--git-dir", str(repo), "fast-import", "--quiet", "--force"],
                   input=b"\n".join(lines) + b"\n", check=True, env=ENV)
    return git(repo, "rev-parse", branch).strip()


def synthetic(count: int, start: int = 1_700_000_000, step: int = 60) -> list[dict[str, Any]]:
    commits = []
    for i in range(count):
        trailers = [("Statewriter-Action", "apply" if i % 9 else "delete"),
                    ("Statewriter-Promise", f"promise-{i % 5}"),
                    ("Statewriter-Request", f"team-{i % 3}/request-{i}"),
                    ("Statewriter-Pipeline", "default"),
                    ("Statewriter-Destination", f"worker-{i % 4}"),
                    ("Statewriter-Actor", f"pipeline-{i % 6}"),
                    ("Statewriter-Bundle-Digest", f"sha256:{i:064x}"),
                    ("Change-Request", f"CHG-{i}")]
        commits.append({"time": start + i * step, "trailers": trailers})
    return commits


def everything(log: AuditLog, tip: str, **params: str) -> list[str]:
    shas: list[str] = []
    cursor = None
    while True:
        page = log.page(tip, parse_query(limit="7", cursor=cursor, **params))
        shas += [c.sha for c in page.commits]
        if page.next is None:
            return shas
        cursor = page.next


def test_the_log_is_read_once_extended_as_the_tip_moves_and_read_again_when_rewritten(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "state.git"
    first = fast_import(repo, synthetic(40))
    log = AuditLog(open_repository(repo))
    assert everything(log, first) == [c.sha for c in brute_log(repo)]
    assert (log.reads, log.extensions) == (1, 0)
    page = log.page(first, parse_query(limit="5", promise="promise-2"))
    # more commits on top: one `old..new` read, the old cursor still good
    second = fast_import(repo, synthetic(15, start=1_800_000_000), parent=first)
    for params in ({}, {"promise": "promise-2"}, {"actor": "pipeline-1", "action": "delete"}):
        assert everything(log, second, **params) == brute_filter(brute_log(repo), **params)
    assert (log.reads, log.extensions) == (1, 1)
    rest = log.page(second, parse_query(limit="500", promise="promise-2", cursor=page.next))
    assert [c.sha for c in rest.commits] == brute_filter(brute_log(repo, first),
                                                             promise="promise-2")[5:]
    # a reader whose snapshot is older than the log's tip sees that tip's history
    assert everything(log, first) == [c.sha for c in brute_log(repo, first)]
    assert (log.reads, log.extensions) == (1, 1)
    # rewritten: the branch forks off 10 commits down; the log is read again whole
    base = git(repo, "rev-parse", f"{first}~10").strip()
    stale = log.page(second, parse_query(limit="3")).next
    kept = log.page(first, parse_query(limit="20")).next  # names a commit below the fork
    rewritten = fast_import(repo, synthetic(4, start=1_900_000_000), parent=base)
    assert everything(log, rewritten) == [c.sha for c in brute_log(repo)]
    assert log.reads == 2
    with pytest.raises(InvalidQuery) as refused:
        log.page(rewritten, parse_query(cursor=stale))
    assert refused.value.detail["field"] == "cursor"
    # a cursor naming a commit still on the branch goes on from it (found by its id)
    below = log.page(rewritten, parse_query(limit="500", cursor=kept))
    assert [c.sha for c in below.commits] == [c.sha for c in brute_log(repo, first)][20:]


def test_times_out_of_order_and_merges(tmp_path: Path) -> None:
    repo = tmp_path / "state.git"
    commits = synthetic(30)
    for i, commit in enumerate(commits):  # clocks that disagree
        commit["time"] = 1_700_000_000 + (i * 37 % 11) * 100
    tip = fast_import(repo, commits)
    side = fast_import(repo, synthetic(3, start=1_700_000_050), branch="side",
                       parent=git(repo, "rev-parse", f"{tip}~5").strip())
    merged = fast_import(repo, [{"time": 1_700_000_999, "merge": side, "files": {},
                                 "trailers": [("Statewriter-Action", "apply"),
                                              ("Statewriter-Actor", "merger")]}], parent=tip)
    log = AuditLog(open_repository(repo))
    reference = brute_log(repo, merged)
    assert set(everything(log, merged)) == {c.sha for c in reference}
    for since, until in ((1_700_000_300, None), (None, 1_700_000_500), (1_700_000_200, 1_700_000_600)):
        params = {"since": rfc3339(since, 1)} if since else {}
        if until:
            params["until"] = rfc3339(until, -3)
        assert sorted(everything(log, merged, **params)) == sorted(
            brute_filter(reference, since=since, until=until))
    assert everything(log, merged, actor="merger") == [merged]
    (entry,) = log.page(merged, parse_query(actor="merger")).commits
    assert jsonable(entry.files) == brute_files(repo, merged)  # against its first parent


def test_memory_per_commit_is_bounded(tmp_path: Path) -> None:
    """What the log keeps costs well under 100 bytes a commit (the ids, the times, a posting
    per value named); measured, not estimated."""
    repo = tmp_path / "state.git"
    count = 20_000
    tip = fast_import(repo, synthetic(count))
    tracemalloc.start()
    try:
        log = AuditLog(open_repository(repo))
        log.page(tip, parse_query(limit="1"))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(log) == count
    assert log.nbytes() / count < 70, log.nbytes() / count
    assert held / count < 100, held / count
    page = log.page(tip, parse_query(limit="50", promise="promise-3", actor="pipeline-1"))
    assert page.commits and all("promise-3" in c.promises and c.actor == "pipeline-1"
                                for c in page.commits)
