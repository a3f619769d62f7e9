"""The writer lane isolates each job (docs/reference.md section 6 v2): an unexpected error while
planning or committing one bundle answers that bundle alone; the rest of its group is
planned again without it and published. Over the in-memory store (tests/fakes.py, which
refuses the paths git's trees cannot hold as the real stores do): git is not what is tested
here (tests/test_concurrency.py has the lane over a real repository)."""

from __future__ import annotations

import functools
import logging
import threading

import pytest

from app.http.answers import answer
from gitops import planner
from gitops.bundle import parse_bundle
from gitops.index import Index
from gitops.planner import Plan
from gitops.planner.results import Retried
from gitops.tree import Tree
from gitops.writer import Done, Failed, Operation, Writer
from tests import support
from tests.fakes import FakeStore
from tests.procs import OWNERS

DESTINATION = "worker-1"


def _apply(name: str) -> Operation:
    bundle = parse_bundle(support.payload("p1", f"team-a/{name}", {"cm.yaml": support.config_map(name)},
                                          selectors={"env": "dev"}))
    return functools.partial(planner.plan_apply, bundle=bundle, actor="tester")


def _fails_while_planning(index: Index, tree: Tree) -> Plan:
    raise RuntimeError("a bug in planning")


def _fails_while_committing(index: Index, tree: Tree) -> Plan:
    return Plan({"a/../escape.yaml": b"x"}, index.child(), "bad", Retried())  # refused by the store


def owned_requests(tree: Tree) -> set[tuple[str, str]]:
    """(namespace, name) of every request with an owner record (as tests.procs reads them
    from git: `<owners>/<promise>/<namespace>/<shard>/<name>/<pipeline>.json`)."""
    found = set()
    for path, _ in tree.files(OWNERS):
        parts = path[len(OWNERS) + 1:].split("/")
        if len(parts) == 5:
            found.add((parts[1], parts[3]))
    return found


def test_an_unexpected_error_answers_its_job_alone_and_the_group_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    writer = Writer(store)
    inside, release = threading.Event(), threading.Event()

    def hold_the_lane(index: Index, tree: Tree) -> Plan:
        inside.set()
        assert release.wait(30)
        return planner.plan_put_destination(index, tree, DESTINATION, {"env": "dev"}, None, "t")

    try:
        first = writer.submit(hold_the_lane)
        assert inside.wait(30)  # the lane is busy: what follows queues up as one group
        futures = [
            writer.submit(_apply("one")),
            writer.submit(_fails_while_planning, request_id="planning-bug"),
            writer.submit(_apply("two")),
            writer.submit(_fails_while_committing, request_id="commit-bug"),
            writer.submit(_apply("three")),
        ]
        with caplog.at_level(logging.ERROR, logger="statewriter.writer"):
            release.set()
            outcomes = [future.result(timeout=60) for future in futures]
        assert answer(first.result(timeout=60))[0] == 200
    finally:
        writer.close()

    good = [outcomes[0], outcomes[2], outcomes[4]]
    assert all(isinstance(o, Done) and o.changed for o in good), good
    assert outcomes[1] == Failed("planning-bug") and outcomes[3] == Failed("commit-bug")
    status, body = answer(outcomes[1])
    assert status == 500 and body["requestId"] == "planning-bug"
    assert "planning-bug" in body["message"]
    logged = [r.getMessage() for r in caplog.records]
    assert any("planning-bug" in m for m in logged) and any("commit-bug" in m for m in logged)
    tree = store.tree(store.refresh())
    assert owned_requests(tree) == {("team-a", "one"), ("team-a", "two"), ("team-a", "three")}
    index = Index.load(tree)
    assert not any("escape" in path for path, _ in tree.files(""))
    assert index.request_destination("p1", "team-a", "three") == DESTINATION
