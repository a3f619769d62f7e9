"""Every command that calls the service finds it at STATEWRITER_URL when --url is not given,
and says "set STATEWRITER_TOKEN" when the service answers 401 to a call without a token:
each run as its own process against a real service with tokens on, and with only the
libraries the work-writer image installs (tests/test_kratix.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.eck import request_bundle
from tests.procs import ROOT, Server, free_port, running_server
from tests.test_kratix import only_the_image
from tests.test_push import CONFIG, TOKEN, pipeline_dir, register_worker

# Each client command, with what it needs besides the service's URL and the token: it exits 0
# when it reached the service with a token (the request team-a/example is stored, at COMMIT)
CLIENTS = {
    "push": ["push", "{dir}", "--promise", "elastic-cloud", "--request", "team-a/pushed"],
    "delete": ["delete", "--promise", "elastic-cloud", "--request", "team-a/never-written"],
    "rollback": ["rollback", "elastic-cloud", "team-a/example", "--to", "{commit}"],
    "history of a request": ["history", "elastic-cloud", "team-a/example"],
    "history across requests": ["history", "--limit", "1"],
    "validate": ["validate", "{dir}", "--destination", "worker-1", "--promise", "elastic-cloud"],
    "kratix": ["kratix"],
}
KRATIX = {"KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_PROMISE_NAME": "elastic-cloud",
          "KRATIX_OBJECT_NAMESPACE": "team-a", "KRATIX_OBJECT_NAME": "from-kratix"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    root = tmp_path_factory.mktemp("client-env")
    with running_server(root / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        register_worker(server.url)
        posted = httpx.post(f"{server.url}/v1/bundles", headers={"authorization": f"Bearer {TOKEN}"},
                            json=request_bundle("example", namespace="team-a",
                                                destinationSelectors={"env": "dev"}))
        assert posted.status_code == 200, posted.text
        yield server, posted.json()["commit"]


def client(args: list[str], env: dict[str, str], tmp_path: Path,
           commit: str = "") -> subprocess.CompletedProcess[str]:
    """`statewriter ARGS` with the image's libraries only, `env` and nothing of the tests' own
    STATEWRITER_* variables."""
    folder = pipeline_dir(tmp_path)
    given = [arg.format(dir=folder, commit=commit) for arg in args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STATEWRITER_", "KRATIX_"))}
    return subprocess.run([*only_the_image(), *given], cwd=ROOT,
                          env={**clean, "KRATIX_DIR": str(folder), **KRATIX, **env},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", CLIENTS)
def test_the_service_is_found_at_statewriter_url(
        service: tuple[Server, str], tmp_path: Path, name: str) -> None:
    server, commit = service
    done = client(CLIENTS[name], {"STATEWRITER_URL": server.url, "STATEWRITER_TOKEN": TOKEN},
                  tmp_path, commit)
    assert done.returncode == 0, done.stderr
    assert "HTTP 401" not in done.stderr


@pytest.mark.parametrize("name", CLIENTS)
def test_a_401_without_a_token_says_to_set_statewriter_token(
        service: tuple[Server, str], tmp_path: Path, name: str) -> None:
    server, commit = service
    before = server.tip()
    done = client(CLIENTS[name], {"STATEWRITER_URL": server.url}, tmp_path, commit)
    assert done.returncode == 1, done.stderr
    first = done.stderr.splitlines()[0]
    assert "HTTP 401" in first and "set STATEWRITER_TOKEN" in first, done.stderr
    assert server.tip() == before


def test_a_wrong_token_is_not_told_to_be_set(service: tuple[Server, str], tmp_path: Path) -> None:
    server, _ = service
    done = client(CLIENTS["push"], {"STATEWRITER_URL": server.url, "STATEWRITER_TOKEN": "wrong"},
                  tmp_path)
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr and "set STATEWRITER_TOKEN" not in done.stderr


def test_url_comes_before_statewriter_url(service: tuple[Server, str], tmp_path: Path) -> None:
    server, _ = service
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = client([*CLIENTS["history across requests"], "--url", server.url, "--retries", "0"],
                  {"STATEWRITER_URL": nowhere, "STATEWRITER_TOKEN": TOKEN}, tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", [name for name in CLIENTS if name != "kratix"])
def test_a_statewriter_url_that_is_no_url_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    done = client(CLIENTS[name], {"STATEWRITER_URL": "statewriter:8080"}, tmp_path, "abcd1234")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert "STATEWRITER_URL 'statewriter:8080' must be an http:// or https:// URL" in done.stderr


@pytest.mark.parametrize("name", [name for name in CLIENTS if name != "kratix"])
def test_no_url_at_all_is_one_line_and_exit_2(tmp_path: Path, name: str) -> None:
    done = client(CLIENTS[name], {}, tmp_path, "abcd1234")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert "STATEWRITER_URL" in done.stderr
