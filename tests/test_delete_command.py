"""`statewriter delete` against a live service: right token, wrong token, an idempotent
re-run, one pipeline, identity from the environment (the work-writer image's delete action,
as Kratix runs it, is in tests/test_kratix.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping

import pytest

from tests.conftest import Service
from tests.fixtures.eck import request_bundle
from tests.procs import QUICK_RETRIES, ROOT, Knob, free_port, running_server, statewriter_command
from tests.test_push import CONFIG, TOKEN, ls_tree, register_worker

IDENTITY_ENV = ("STATEWRITER_TOKEN", "STATEWRITER_URL", "PROMISE", "REQUEST", "PIPELINE")
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {k: v}\n"


def write(service: Service, name: str, pipeline: str = "default",
          files: dict[str, str] | None = None) -> None:
    payload = request_bundle(name, pipeline=pipeline, destinationSelectors={"env": "dev"})
    if files is not None:
        payload["files"] = files
    response = service.call("POST", "/v1/bundles", json=payload)
    assert response.status_code == 200, response.text


def pipelines(service: Service, request: str, promise: str = "elastic-cloud") -> list[str]:
    """The pipelines stored for `request` ([] when the service knows none)."""
    response = service.call("GET", f"/v1/promises/{promise}/requests/{request}")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return sorted(p["pipeline"] for p in response.json()["pipelines"])


def files_of(service: Service, path: str) -> str:
    """`git ls-tree -r` of `path` at the service's branch tip."""
    return ls_tree(service.data.parent, path)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A real `statewriter serve`: `statewriter delete` runs as its own process."""
    root = tmp_path_factory.mktemp("delete")
    with running_server(root / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        register_worker(server.url)
        service = Service.of(server, TOKEN)
        yield service
        service.close()


def delete(*args: str, url: str | None = None, token: str | None = TOKEN, retries: str = "2",
           env: dict[str, str] | None = None,
           settings: Mapping[str, Knob] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `statewriter delete`, with only the identity variables given in `env`."""
    environment = {k: v for k, v in os.environ.items() if k not in IDENTITY_ENV}
    environment.update(env or {})
    if token is not None:
        environment["STATEWRITER_TOKEN"] = token
    command = [*statewriter_command(settings), "delete", "--retries", retries, *args]
    if url is not None:
        command += ["--url", url]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60, check=False)


def test_delete_removes_the_request_and_a_rerun_succeeds(service: Service) -> None:
    write(service, "gone")
    assert "/gone/default/" in files_of(service, "worker-1")
    done = delete("--promise", "elastic-cloud", "--request", "default/gone", url=service.url)
    assert done.returncode == 0, done.stderr
    assert "HTTP 200" in done.stdout
    assert f"commit: {service.tip()}" in done.stdout
    assert "changed: true" in done.stdout and "pipelines: default" in done.stdout
    assert pipelines(service, "default/gone") == []
    assert "/gone/" not in files_of(service, "worker-1")

    before = service.tip()
    again = delete("--promise", "elastic-cloud", "--request", "default/gone", url=service.url)
    assert again.returncode == 0, again.stderr
    assert "nothing to delete" in again.stdout and "default/gone" in again.stdout
    assert service.tip() == before


def test_delete_with_a_wrong_or_missing_token_fails(service: Service) -> None:
    write(service, "kept")
    before = service.tip()
    args = ("--promise", "elastic-cloud", "--request", "default/kept")
    wrong = delete(*args, url=service.url, token="wrong")
    assert wrong.returncode == 1
    assert "HTTP 401" in wrong.stderr and "invalid token" in wrong.stderr
    missing = delete(*args, url=service.url, token=None)
    assert missing.returncode == 1
    assert "HTTP 401" in missing.stderr and "missing bearer token" in missing.stderr
    assert service.tip() == before
    assert pipelines(service, "default/kept") == ["default"]


def test_delete_outside_the_token_scope_is_403(service: Service) -> None:
    done = delete("--promise", "postgres", "--request", "default/kept", url=service.url)
    assert done.returncode == 1
    assert "HTTP 403" in done.stderr and "may not write promise 'postgres'" in done.stderr


def test_delete_one_pipeline_keeps_the_others(service: Service) -> None:
    write(service, "two", pipeline="instance-configure")
    write(service, "two", pipeline="extra", files={"extra.yaml": CONFIGMAP})
    args = ("--promise", "elastic-cloud", "--request", "default/two", "--pipeline", "extra")
    done = delete(*args, url=service.url)
    assert done.returncode == 0, done.stderr
    assert "pipelines: extra" in done.stdout
    assert pipelines(service, "default/two") == ["instance-configure"]
    again = delete(*args, url=service.url)
    assert again.returncode == 0 and "nothing to delete" in again.stdout
    assert pipelines(service, "default/two") == ["instance-configure"]


def test_delete_reads_its_identity_from_the_environment(service: Service) -> None:
    write(service, "from-env", pipeline="instance-configure")
    write(service, "from-env", pipeline="extra", files={"extra.yaml": CONFIGMAP})
    env = {"STATEWRITER_URL": service.url, "PROMISE": "elastic-cloud", "REQUEST": "default/from-env"}
    one = delete(env={**env, "PIPELINE": "extra"})
    assert one.returncode == 0, one.stderr
    assert pipelines(service, "default/from-env") == ["instance-configure"]
    every = delete(env=env)
    assert every.returncode == 0, every.stderr
    assert pipelines(service, "default/from-env") == []


def test_a_404_that_is_not_statewriters_fails(service: Service) -> None:
    """A wrong URL must not pass for "already deleted": the objects would stay forever."""
    write(service, "wrong-url")
    done = delete("--promise", "elastic-cloud", "--request", "default/wrong-url",
                  url=f"{service.url}/not-statewriter")
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr
    assert pipelines(service, "default/wrong-url") == ["default"]


@pytest.mark.parametrize(("args", "why"), [
    (("--request", "default/x"), "--promise"),
    (("--promise", "elastic-cloud"), "--request"),
    (("--promise", "elastic-cloud", "--request", "no-slash"), "NS/NAME"),
    (("--promise", "elastic-cloud", "--request", "../x"), "namespace"),
    (("--promise", "elastic-cloud", "--request", "default/a/b"), "NS/NAME"),
    (("--promise", "Elastic", "--request", "default/x"), "promise"),
    (("--promise", "elastic-cloud", "--request", "default/x", "--pipeline", "a_b"), "pipeline"),
])
def test_delete_refuses_bad_arguments_locally(args: tuple[str, ...], why: str) -> None:
    done = delete(*args, url=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 2, done.stderr
    assert why in done.stderr


def test_delete_needs_a_url() -> None:
    done = delete("--promise", "elastic-cloud", "--request", "default/x")
    assert done.returncode == 2 and "STATEWRITER_URL" in done.stderr


def test_delete_gives_up_after_its_retries() -> None:
    started = time.monotonic()
    done = delete("--promise", "elastic-cloud", "--request", "default/x",
                  url=f"http://127.0.0.1:{free_port()}", settings=QUICK_RETRIES)  # nothing listens
    assert done.returncode == 1
    assert done.stderr.count("retrying in") == 2
    assert "after 3 attempts" in done.stderr
    assert time.monotonic() - started < 10


def test_delete_help_says_it_is_idempotent() -> None:
    done = subprocess.run([sys.executable, "-m", "app.cli", "delete", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    assert "Idempotent" in done.stdout and "exits 0" in done.stdout
