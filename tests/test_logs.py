"""The service's log against a real server: one JSON line per request with its id, caller,
bundle, outcome and commit, never a token or a bundle's content; `X-Request-ID` echoed or
generated on every answer; `--log-format text`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.http.access import RequestLog
from app.http.requestid import RequestIdMiddleware
from app.logs import chosen_format
from tests.conftest import Service
from tests.procs import ROOT, Server, running_server, wait_until
from tests.support import config_map, manifest, payload

TOKEN = "pipeline-token-4b1d"
CONFIG = f"""\
auth:
  tokens:
    - {{name: pipeline, token: {TOKEN}, promises: [shop]}}
    - {{name: admin, token: admin-token-77, promises: ["*"], destinations: true}}
"""
SECRETS = ("hunter2-db-password", "cm-api-key-0xfeed")
BUNDLE = payload("shop", "default/a", {
    "secret.yaml": manifest("v1", "Secret", "db", "default", stringData={"password": SECRETS[0]}),
    "cm.yaml": config_map("settings", "default", value=SECRETS[1]),
})
GENERATED = re.compile(r"[0-9a-f]{32}")


def lines(server: Server) -> list[dict[str, Any]]:
    """Every line the server logged, each one JSON object (one being written is left out)."""
    text = server.log.read_text()
    found = []
    for line in text[:text.rfind("\n") + 1].splitlines():
        entry = json.loads(line)  # a line that is not JSON fails here
        assert isinstance(entry, dict)
        found.append(entry)
    return found


def request_line(server: Server, request_id: str) -> dict[str, Any]:
    def logged() -> dict[str, Any] | None:  # written once the answer is out
        return next((entry for entry in lines(server) if entry.get("event") == "request"
                     and entry.get("request_id") == request_id), None)

    found: dict[str, Any] = wait_until(logged, 20, f"the log line of request {request_id}")
    return found


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Server]:
    config = tmp_path / "statewriter.yaml"
    config.write_text(CONFIG)
    with running_server(tmp_path / "data", config=config, ready_path="/healthz") as server:
        yield server


def test_one_json_line_per_request_without_secrets(service: Server) -> None:
    with service.client() as http:
        put = http.put("/v1/destinations/dev", json={"labels": {}},
                       headers={"Authorization": "Bearer admin-token-77"})
        assert put.status_code == 200, put.text
        assert GENERATED.fullmatch(put.headers["x-request-id"])  # none given: one made up
        written = http.post("/v1/bundles", json=BUNDLE,
                            headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "trace-42"})
        assert written.status_code == 200, written.text
        assert written.headers["x-request-id"] == "trace-42"
        refused = http.post("/v1/bundles", json=BUNDLE)  # no token, no id
        assert refused.status_code == 401
        unknown = http.get("/v1/promises/shop/requests/default/nope",
                           headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "trace-43"})
        assert unknown.status_code == 404
        assert unknown.headers["x-request-id"] == "trace-43"
        invalid = http.post("/v1/bundles", json={**BUNDLE, "files": {"x.yaml": "a: [\n"}},
                            headers={"Authorization": f"Bearer {TOKEN}"})
        assert invalid.status_code == 422
    generated = refused.headers["x-request-id"]
    assert GENERATED.fullmatch(generated)
    assert GENERATED.fullmatch(invalid.headers["x-request-id"]) and invalid.headers[
        "x-request-id"] != generated

    line = request_line(service, "trace-42")
    assert line["level"] == "info" and line["logger"] == "statewriter.access"
    assert {key: line[key] for key in ("method", "path", "status", "actor", "promise", "request",
                                       "outcome", "commit")} == {
        "method": "POST", "path": "/v1/bundles", "status": 200, "actor": "pipeline",
        "promise": "shop", "request": "default/a", "outcome": "written",
        "commit": written.json()["commit"]}
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])

    registered = request_line(service, put.headers["x-request-id"])
    assert (registered["actor"], registered["outcome"], registered["commit"]) == (
        "admin", "written", put.json()["commit"])
    no_token = request_line(service, generated)
    assert (no_token["status"], no_token["outcome"], no_token["actor"]) == (401, "refused_auth", None)
    not_found = request_line(service, "trace-43")
    assert (not_found["outcome"], not_found["promise"], not_found["request"]) == (
        "not_found", "shop", "default/nope")
    failed = request_line(service, invalid.headers["x-request-id"])
    assert (failed["outcome"], failed["promise"], failed["request"]) == ("invalid", "shop", "default/a")
    # the line names the refusal as the answer does: its kind, its reason and what it names
    assert (failed["error"], failed["reason"]) == ("InvalidBundle", invalid.json()["message"])
    assert failed["details"]["file"] == "x.yaml" and failed["pipeline"] == "default"
    assert "error" not in line and "reason" not in line  # an accepted bundle has none

    # start-up and publish events are structured too
    entries = lines(service)
    start = next(entry for entry in entries if entry.get("event") == "start")
    assert start["address"] == f"127.0.0.1:{service.port}"
    assert any(entry.get("event") == "publish" and entry["commit"] == written.json()["commit"]
               for entry in entries)
    # uvicorn's own lines come through the same formatter, and it logs no access lines of its own
    assert any(entry["logger"].startswith("uvicorn") for entry in entries)
    assert not any(entry["logger"] == "uvicorn.access" for entry in entries)

    text = service.log.read_text()
    for secret in (*SECRETS, TOKEN, "admin-token-77"):
        assert secret not in text


def test_log_format_text(tmp_path: Path) -> None:
    """The flag wins over the environment."""
    with running_server(tmp_path / "data", ready_path="/healthz", extra_args=("--log-format", "text"),
                        env={"STATEWRITER_LOG_FORMAT": "json"}) as server, server.client() as http:
        assert http.get("/v1/destinations", headers={"X-Request-ID": "text-1"}).status_code == 200

        def logged() -> str | None:
            text = server.log.read_text()
            return next((line for line in text[:text.rfind("\n") + 1].splitlines()
                         if "request_id=text-1" in line), None)

        line: str = wait_until(logged, 20, "the text log line of the request")
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z INFO statewriter\.access GET /v1/destinations "
                    r"200 event=request request_id=text-1 method=GET path=/v1/destinations "
                    r"status=200 ", line)
    assert "outcome=ok" in line.split() and "promise=" not in line  # no field without a value
    assert "path=/healthz" not in server.log.read_text()  # the start's probes: debug lines
    assert not any(entry.startswith("{") for entry in server.log.read_text().splitlines())


def test_probes_and_scrapes_are_logged_at_debug(in_process_service: Service,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="statewriter.access")
    for path in ("/healthz", "/readyz", "/metrics", "/v1/destinations", "/readyz?writes=true"):
        assert in_process_service.call("GET", path).status_code == 200
    levels = {vars(record)["path"]: record.levelno for record in caplog.records
              if record.name == "statewriter.access"}
    assert levels == {"/healthz": logging.DEBUG, "/readyz": logging.DEBUG,
                      "/metrics": logging.DEBUG, "/v1/destinations": logging.INFO}


def test_an_unexpected_error_is_answered_with_its_request_id(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_middleware(RequestLog)
    app.add_middleware(RequestIdMiddleware)

    async def ask() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://statewriter") as client:
            return (await client.get("/boom", headers={"X-Request-ID": "trace-500"}),
                    await client.get("/boom"))

    caplog.set_level(logging.INFO, logger="statewriter.access")
    given, generated = asyncio.run(ask())
    assert (given.status_code, given.headers["x-request-id"]) == (500, "trace-500")
    assert given.json() == {"error": "InternalError", "requestId": "trace-500", "message":
                            "unexpected error; the service log has the details under request id "
                            "trace-500"}
    assert generated.status_code == 500 and GENERATED.fullmatch(generated.headers["x-request-id"])
    logged = [record for record in caplog.records if record.name == "statewriter.access"]
    assert [(vars(r)["request_id"], r.levelname, vars(r)["outcome"]) for r in logged] == [
        ("trace-500", "WARNING", "failed"), (generated.headers["x-request-id"], "WARNING", "failed")]


def test_log_format_choice() -> None:
    assert chosen_format(None, {}) == "json"
    assert chosen_format(None, {"STATEWRITER_LOG_FORMAT": "text"}) == "text"
    assert chosen_format("json", {"STATEWRITER_LOG_FORMAT": "text"}) == "json"
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "0"], cwd=ROOT,
                          env={"STATEWRITER_LOG_FORMAT": "yaml", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == ("statewriter: STATEWRITER_LOG_FORMAT='yaml': the log format is json "
                           "or text\n")


def test_a_refusal_of_the_writer_lane_is_logged_and_listed_from_its_typed_outcome(
    service: Server,
) -> None:
    """A conflict is planned on the writer lane: its log line and its row on /ui/refused come
    from the lane's typed refusal, as a refusal raised before the lane comes from its error."""
    pipeline = {"Authorization": f"Bearer {TOKEN}"}
    with service.client() as http:
        assert http.put("/v1/destinations/dev", json={"labels": {}},
                        headers={"Authorization": "Bearer admin-token-77"}).status_code == 200
        first = payload("shop", "default/a", {"cm.yaml": config_map("shared", "default")})
        assert http.post("/v1/bundles", json=first, headers=pipeline).status_code == 200
        clash = payload("shop", "default/b", {"cm.yaml": config_map("shared", "default", value="2")},
                        pipeline="render")
        conflict = http.post("/v1/bundles", json=clash, headers={**pipeline, "X-Request-ID": "c-1"})
        assert conflict.status_code == 409
        unknown = http.post("/v1/bundles", json={**first, "surprise": 1},
                            headers={**pipeline, "X-Request-ID": "c-2"})
        assert unknown.status_code == 422
        page = http.get("/ui/refused", headers=pipeline)
    line = request_line(service, "c-1")
    assert (line["error"], line["reason"], line["pipeline"]) == (
        "Conflict", conflict.json()["message"], "render")
    assert line["details"]["object"] == "ConfigMap default/shared"
    early = request_line(service, "c-2")  # refused before the body was a bundle: still named
    assert (early["error"], early["promise"], early["request"]) == ("InvalidBundle", "shop", "default/a")
    assert page.status_code == 200
    for text in ("default/b", "render", "409", "ConfigMap default/shared", "surprise"):
        assert text in page.text
