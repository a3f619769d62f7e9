"""`statewriter push DIR` against a live service: right token, wrong token, same commit
content as the JSON form of the same bundle."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from app.cli.client import backoff
from app.cli.push import pack
from tests.fixtures.eck import request_bundle, request_files
from tests.procs import QUICK_RETRIES, ROOT, Knob, branch_tip, free_port, running_server, statewriter_command

CONFIG = """
auth:
  tokens:
    - {name: pipeline, token: s3cret, promises: [elastic-cloud], destinations: true}
"""
TOKEN = "s3cret"
SELECTORS = "- matchLabels:\n    env: dev\n"


def push_command(url: str, directory: Path, *extra: str, token: str | None = TOKEN,
                 retries: str = "2", promise: str = "elastic-cloud",
                 settings: Mapping[str, Knob] | None = None) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "STATEWRITER_TOKEN"}
    if token is not None:
        env["STATEWRITER_TOKEN"] = token
    command = [*statewriter_command(settings), "push", str(directory), "--url", url,
               "--promise", promise, "--retries", retries, *extra]
    return command, env


def push(url: str, directory: Path, *extra: str, token: str | None = TOKEN, retries: str = "2",
         promise: str = "elastic-cloud",
         settings: Mapping[str, Knob] | None = None) -> subprocess.CompletedProcess[str]:
    command, env = push_command(url, directory, *extra, token=token, retries=retries, promise=promise,
                                settings=settings)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def pipeline_dir(root: Path, name: str = "example", selectors: str | None = SELECTORS) -> Path:
    """A Kratix pipeline's folders: /kratix/output/** and /kratix/metadata/*."""
    directory = root / "kratix"
    for file, text in request_files(name).items():
        # nest some files, as helm-rendered output often is
        path = directory / "output" / ("eck-stack" if file in ("kibana.yaml", "beats.yaml") else "") / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (directory / "metadata").mkdir(parents=True, exist_ok=True)
    if selectors is not None:
        (directory / "metadata" / "destination-selectors.yaml").write_text(selectors)
    (directory / "metadata" / "status.yaml").write_text("message: rendered\n")
    return directory


def json_form(name: str = "example") -> dict[str, object]:
    files = {("eck-stack/" if file in ("kibana.yaml", "beats.yaml") else "") + file: text
             for file, text in request_files(name).items()}
    return {**request_bundle(name), "files": files, "destinationSelectors": {"env": "dev"},
            "status": {"message": "rendered"}}


def register_worker(url: str) -> None:
    response = httpx.put(f"{url}/v1/destinations/worker-1", json={"labels": {"env": "dev"}},
                         headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text


def ls_tree(root: Path, path: str) -> str:
    tip = branch_tip(root / "data")
    assert tip is not None
    done = subprocess.run(["git", "--git-dir", str(root / "data" / "state.git"), "ls-tree", "-r", tip,
                           "--", path], capture_output=True, text=True, check=True)
    return done.stdout


def test_push_writes_the_same_commit_content_as_json(tmp_path: Path) -> None:
    pushed, posted = tmp_path / "pushed", tmp_path / "posted"
    with running_server(pushed / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        url = server.url
        register_worker(url)
        done = push(url, pipeline_dir(tmp_path), "--request", "default/example")
        assert done.returncode == 0, done.stderr
        assert "state: Scheduled" in done.stdout
        assert "destinations: worker-1" in done.stdout
        assert f"commit: {server.tip()}" in done.stdout
        assert "changed: true" in done.stdout
        again = push(url, pipeline_dir(tmp_path), "--request", "default/example")
        assert again.returncode == 0, again.stderr
        assert "changed: false" in again.stdout
    with running_server(posted / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        url = server.url
        register_worker(url)
        response = httpx.post(f"{url}/v1/bundles", json=json_form(),
                              headers={"authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
    destination = ls_tree(pushed, "worker-1")
    assert "resources/default/elastic-cloud/" in destination and "/example/default/" in destination
    assert destination == ls_tree(posted, "worker-1")
    # the service's own record of the owner (digest, selectors, status) is the same too
    assert ls_tree(pushed, ".statewriter") == ls_tree(posted, ".statewriter")


def test_push_with_a_wrong_or_missing_token_fails(tmp_path: Path) -> None:
    with running_server(tmp_path / "server" / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        url = server.url
        register_worker(url)
        before = server.tip()
        directory = pipeline_dir(tmp_path)
        wrong = push(url, directory, "--request", "default/example", token="wrong")
        assert wrong.returncode == 1
        assert "HTTP 401" in wrong.stderr and "invalid token" in wrong.stderr
        missing = push(url, directory, "--request", "default/example", token=None)
        assert missing.returncode == 1
        assert "HTTP 401" in missing.stderr
        assert server.tip() == before


def test_push_reports_refusals_and_pending(tmp_path: Path) -> None:
    with running_server(tmp_path / "server" / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        url = server.url
        register_worker(url)
        directory = pipeline_dir(tmp_path, selectors="- matchLabels: {env: prod}\n")
        pending = push(url, directory, "--request", "default/pending", "--pipeline", "instance-configure")
        assert pending.returncode == 0, pending.stderr
        assert "HTTP 202" in pending.stdout and "state: Pending" in pending.stdout
        (directory / "output" / "bad.yaml").write_text("- not\n- a mapping\n")
        bad = push(url, directory, "--request", "default/bad")
        assert bad.returncode == 1
        assert "HTTP 422" in bad.stderr and "bad.yaml" in bad.stderr
        foreign = push(url, directory, promise="postgres")
        assert foreign.returncode == 1 and "HTTP 403" in foreign.stderr


def test_push_gives_up_after_its_retries(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    done = push(url, pipeline_dir(tmp_path), retries="2", settings=QUICK_RETRIES)
    assert done.returncode == 1
    assert done.stderr.count("retrying in") == 2
    assert "after 3 attempts" in done.stderr
    assert time.monotonic() - started < 10


def test_push_retries_until_the_service_comes_up(tmp_path: Path) -> None:
    """The pipeline starts before the service answers: connection refused, then success."""
    port = free_port()
    command, env = push_command(f"http://127.0.0.1:{port}", pipeline_dir(tmp_path),
                                "--request", "default/example", retries="8")
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        deadline = time.monotonic() + 30
        while "retrying in" not in (process.stderr.readline() if process.stderr else ""):
            assert time.monotonic() < deadline and process.poll() is None
        with running_server(tmp_path / "server" / "data", config_yaml=CONFIG, ready_path="/healthz",
                            port=port):
            stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "state: Pending" in stdout  # no destination registered: accepted, pending


def test_push_refuses_bad_folders_locally(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert push(url, tmp_path / "missing").returncode == 2
    directory = pipeline_dir(tmp_path)
    assert push(url, directory, "--request", "no-slash").returncode == 2
    (directory / "output" / "link.yaml").symlink_to("/etc/passwd")
    done = push(url, directory)
    assert done.returncode == 2 and "link" in done.stderr


def test_pack_is_deterministic_and_holds_only_output_and_metadata(tmp_path: Path) -> None:
    directory = pipeline_dir(tmp_path)
    (tmp_path / "kratix" / "input").mkdir()
    (tmp_path / "kratix" / "input" / "object.yaml").write_text("kind: Secret\n")
    first = pack(directory)
    assert first == pack(directory)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first))) as archive:
        names = archive.getnames()
    assert names == sorted(names, key=lambda n: (not n.startswith("output/"), n))
    assert "output/eck-stack/kibana.yaml" in names
    assert "metadata/destination-selectors.yaml" in names
    assert not any(n.startswith("input") for n in names)


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_grows_with_jitter_and_a_cap(attempt: int) -> None:
    delays = {backoff(attempt) for _ in range(20)}
    step = min(30.0, 0.5 * 2**attempt)
    assert all(step / 2 <= d <= step for d in delays)
    assert len(delays) > 1  # jittered


# -- the bundle's own commit trailers (--trailer, STATEWRITER_TRAILERS) ---------------------


def tip_trailers(root: Path) -> list[str]:
    """The tip commit's trailers as git reads them (`git interpret-trailers --parse`)."""
    git_dir = str(root / "data" / "state.git")
    message = subprocess.run(["git", "--git-dir", git_dir, "log", "-1", "--format=%B", "main"],
                             capture_output=True, text=True, check=True).stdout
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=message,
                            capture_output=True, text=True, check=True).stdout
    return parsed.splitlines()


def test_push_trailers_go_into_the_commit_after_its_group(tmp_path: Path) -> None:
    with running_server(tmp_path / "server" / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        url = server.url
        register_worker(url)
        directory = pipeline_dir(tmp_path)
        done = push(url, directory, "--request", "default/example", "--trailer",
                    "Correlation-Id=run 7", "--trailer", " Change-Request = CHG-1042 ")
        assert done.returncode == 0, done.stderr
        trailers = tip_trailers(tmp_path / "server")
        digest = next(i for i, line in enumerate(trailers)
                      if line.startswith("Statewriter-Bundle-Digest: "))
        # the bundle's own, in key order, right after its Statewriter- group
        assert trailers[digest + 1:digest + 3] == ["Change-Request: CHG-1042",
                                                   "Correlation-Id: run 7"]
        assert "Statewriter-Actor: pipeline" in trailers[:digest]
        # the history across requests shows them as the client's own
        history = httpx.get(f"{url}/v1/history", params={"limit": "1"},
                            headers={"authorization": f"Bearer {TOKEN}"}).json()
        assert history["commits"][0]["trailers"] == {"Change-Request": ["CHG-1042"],
                                                     "Correlation-Id": ["run 7"]}
        # trailers are not content: the same output again changes nothing
        again = push(url, directory, "--request", "default/example", "--trailer", "Change-Request=CHG-2")
        assert again.returncode == 0 and "changed: false" in again.stdout
        # the JSON form carries `trailers`; a `trailer` query parameter with it is refused
        refused = httpx.post(f"{url}/v1/bundles", params={"trailer": "Change-Request=CHG-3"},
                             json=json_form(), headers={"authorization": f"Bearer {TOKEN}"})
        assert refused.status_code == 422 and refused.json()["field"] == "trailer", refused.text


@pytest.mark.parametrize("trailers, expected", [
    (["Statewriter-Actor=me"], "Statewriter- trailers are the service's own"),
    (["Change-Request"], "must be KEY=VALUE"),
    (["=CHG-1"], "must be KEY=VALUE"),
    (["change-request=CHG-1"], "must match"),
    (["Change-Request="], "one non-empty line"),
    (["Change-Request=" + "x" * 257], "at most 256 characters"),
    (["Change-Request=1", "Change-Request=2"], "given twice"),
    ([f"Key-{i}=v" for i in range(17)], "at most 16 trailers"),
])
def test_push_refuses_trailers_the_service_would_refuse_before_sending(
    tmp_path: Path, trailers: list[str], expected: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: nothing may be sent
    flags = [arg for trailer in trailers for arg in ("--trailer", trailer)]
    done = push(url, pipeline_dir(tmp_path), *flags)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and expected in done.stderr, done.stderr
    assert "cannot reach" not in done.stderr
