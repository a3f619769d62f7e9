"""`/metrics` after known traffic against a real server: bundle outcomes by promise (an
unknown promise is `other`), the lane's histograms and push counters, the queue depth, the
per-destination gauges read from the index, and notify deliveries."""

from __future__ import annotations

import json
import platform
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.http.metrics import encryption_operation, notified
from app.version import VERSION
from gitops.notify import DELIVERED, FAILED, RETRIED
from tests.procs import Server, running_server, wait_until
from tests.support import config_map, payload

CONFIG = """\
auth:
  tokens:
    - {name: pipeline, token: pipeline-token, promises: [shop]}
    - {name: admin, token: admin-token, promises: ["*"], destinations: true}
"""
PIPELINE = {"Authorization": "Bearer pipeline-token"}
ADMIN = {"Authorization": "Bearer admin-token"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client) -> Samples:
    answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, label: str) -> set[str]:
    return {dict(labels)[label] for _, labels in samples if label in dict(labels)}


class Receiver:
    """A Flux Receiver stand-in that accepts every POST and keeps the commits it was told."""

    def __init__(self) -> None:
        self.url = ""
        self.commits: list[str] = []


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Accept(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.commits.append(json.loads(body)["commit"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/secret-path"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Server]:
    config = tmp_path / "statewriter.yaml"
    config.write_text(CONFIG)
    with running_server(tmp_path / "data", config=config, ready_path="/healthz") as server:
        yield server


def test_build_info_and_no_created_series(service: Server) -> None:
    with service.client() as http:
        assert http.put("/v1/destinations/dev", json={"labels": {}}, headers=ADMIN).status_code == 200
        text = http.get("/metrics").text
        samples = scrape(http)
    assert value(samples, "statewriter_build_info", version=VERSION,
                 python=platform.python_version()) == 1
    assert [name for name, _ in samples if name.startswith("statewriter_build_info")] == [
        "statewriter_build_info"]  # one series
    assert "statewriter_push_attempts_total" in text and "statewriter_plan_seconds_count" in text
    assert "_created" not in text  # not beside any counter or histogram


def test_metrics_count_known_traffic(service: Server, receiver: Receiver) -> None:
    a = payload("shop", "default/a", {"cm.yaml": config_map("a", "default") +
                                      "---\n" + config_map("shared", "default", value="a")})
    b = payload("shop", "default/b", {"cm.yaml": config_map("shared", "default", value="b")})
    with service.client() as http:
        assert scrape(http)[("statewriter_writer_queue_depth", frozenset())] == 0
        put = http.put("/v1/destinations/dev", json={"labels": {"env": "dev"},
                                                     "notify": {"url": receiver.url}}, headers=ADMIN)
        assert put.status_code == 200, put.text
        answers = [
            http.post("/v1/bundles", json=a, headers=PIPELINE),  # written
            http.post("/v1/bundles", json=a, headers=PIPELINE),  # unchanged
            http.post("/v1/bundles", json=b, headers=PIPELINE),  # conflict: "shared" differs
            http.post("/v1/bundles", json=payload("shop", "default/c", {"x.yaml": "a: [\n"}),
                      headers=PIPELINE),  # invalid
            http.post("/v1/bundles", json=payload("shop", "default/p", {"cm.yaml": config_map("p")},
                                                  selectors={"env": "prod"}),
                      headers=PIPELINE),  # pending: no destination matches
            http.post("/v1/bundles", json=payload("invented-1", "default/x"), headers={}),
            http.post("/v1/bundles", json=payload("invented-2", "default/x"),
                      headers={"Authorization": "Bearer wrong"}),
            http.post("/v1/bundles", json=payload("invented-3", "default/x",
                                                  {"cm.yaml": config_map("x")}),
                      headers=PIPELINE),  # a valid token, not for this promise
            http.post("/v1/bundles?dryRun=true", json=a, headers=PIPELINE),  # not counted
        ]
        statuses = [answer.status_code for answer in answers]
        assert statuses == [200, 200, 409, 422, 202, 401, 401, 403, 200], [a.text for a in answers]
        assert answers[0].json()["changed"] and not answers[1].json()["changed"]


        # POSTed off the lane (waiting ones coalesce), a's commit last; counted once answered
        last = answers[0].json()["commit"]

        def delivered() -> Samples | None:
            found = scrape(http)
            count = value(found, "statewriter_notify_deliveries_total", destination="dev")
            return found if last in receiver.commits and count == len(receiver.commits) else None

        samples = wait_until(delivered, 20, "the notification of a's commit, counted")

    def bundles(promise: str, outcome: str) -> float:
        return value(samples, "statewriter_bundles_total", promise=promise, outcome=outcome)

    assert {outcome: bundles("shop", outcome) for outcome in
            ("written", "unchanged", "pending", "conflict", "invalid", "refused_auth", "failed")} \
        == {"written": 1, "unchanged": 1, "pending": 1, "conflict": 1, "invalid": 1,
            "refused_auth": 0, "failed": 0}
    assert bundles("other", "refused_auth") == 3
    # callers without a right to a promise never mint label values
    assert label_values(samples, "promise") == {"shop", "other"}

    # the lane: six operations planned (PUT, written, unchanged, conflict, pending, dry run),
    # three commits, each published alone, none rejected
    assert value(samples, "statewriter_plan_seconds_count") == 6
    assert value(samples, "statewriter_commit_seconds_count") == 3
    assert value(samples, "statewriter_commits_published_total") == 3
    assert value(samples, "statewriter_push_attempts_total") == 3
    assert value(samples, "statewriter_push_seconds_count") == 3
    assert value(samples, "statewriter_commits_per_push_count") == 3
    assert value(samples, "statewriter_commits_per_push_sum") == 3
    assert value(samples, "statewriter_push_rejections_total") == 0
    assert value(samples, "statewriter_push_rate_limited_total") == 0
    assert value(samples, "statewriter_request_seconds_count") == 6
    assert value(samples, "statewriter_last_push_success_timestamp_seconds") > 0

    # read from the index at scrape time
    assert value(samples, "statewriter_writer_queue_depth") == 0
    assert value(samples, "statewriter_destination_objects", destination="dev") == 2
    assert value(samples, "statewriter_destination_owners", destination="dev") == 1
    assert value(samples, "statewriter_pending_bundles") == 1
    assert value(samples, "statewriter_notify_failures_total", destination="dev") == 0


def test_notify_and_encryption_counters_by_destination() -> None:
    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"destination": "unit", **labels}) or 0.0

    names = ("statewriter_notify_deliveries_total", "statewriter_notify_retries_total",
             "statewriter_notify_failures_total")
    before = [count(name) for name in names]
    for outcome in (DELIVERED, RETRIED, RETRIED, FAILED):
        notified("unit", outcome)
    assert [count(name) - was for name, was in zip(names, before, strict=True)] == [1, 2, 1]

    encrypted = count("statewriter_encryption_operations_total", outcome="encrypted")
    encryption_operation("unit")
    assert count("statewriter_encryption_operations_total", outcome="encrypted") == encrypted + 1
