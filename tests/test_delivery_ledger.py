"""The pure core of delivery status: events as notification-controller sends them, the rules
that keep what each Kustomization reported (hypothesis: whatever the order and the replays,
a state never moves back, and what was applied is the newest revision reported applied), and
a request's delivery from those reports."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitops.delivery import ledger
from gitops.delivery.events import (
    Event,
    check_signature,
    destination_key,
    parse_event,
    parse_revision,
    provider_token,
)
from gitops.delivery.ledger import Reported
from gitops.delivery.status import APPLIED, FAILED, PENDING, UNKNOWN, Commit, delivery, kustomizations
from gitops.destination import Destination
from gitops.errors import InvalidBundle, Unauthorized
from gitops.identity import Identity
from gitops.index import Held

SHAS = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(6)]
POSITION = {sha: i + 1 for i, sha in enumerate(SHAS)}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = ("flux-system", "kratix-workload-resources")


def event(revision: int | None, applied: bool, second: int, message: str = "") -> Event:
    return Event(KEY[1], KEY[0], applied, not applied, "r", message,
                 None if revision is None else SHAS[revision], "main", T0 + timedelta(seconds=second))


events = st.builds(event, st.one_of(st.none(), st.integers(0, 5)), st.booleans(),
                   st.integers(0, 60))


def run(sequence: list[Event]) -> Reported:
    reports: dict[tuple[str, str], Reported] = {}
    for item in sequence:
        new = ledger.record(reports, item, POSITION.get)
        if new is not None:
            reports = new
    return reports.get(KEY, Reported())


@given(st.lists(events, max_size=20))
def test_what_was_applied_never_moves_back_and_is_the_newest_applied(sequence: list[Event]) -> None:
    reports: dict[tuple[str, str], Reported] = {}
    newest = 0
    for item in sequence:
        new = ledger.record(reports, item, POSITION.get)
        if new is not None:
            reports = new
        now = reports.get(KEY, Reported()).applied
        position = POSITION[now.revision] if now and now.revision else 0
        assert position >= newest
        newest = position
        assert ledger.record(reports, item, POSITION.get) is None  # a replay changes nothing
    applied = [POSITION[e.revision] for e in sequence if e.applied and e.revision]
    assert newest == max(applied, default=0)


@given(st.lists(events, max_size=12), st.randoms())
def test_the_applied_revision_does_not_depend_on_the_order(sequence: list[Event], rnd: object) -> None:
    shuffled = list(sequence)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = run(sequence).applied, run(shuffled).applied
    assert (first and first.revision) == (second and second.revision)


def test_a_failure_older_than_what_applied_is_ignored_and_a_newer_one_kept() -> None:
    reported = run([event(3, True, 10), event(2, False, 20)])
    assert reported.failed is None
    reported = run([event(3, True, 10), event(4, False, 20, "Deployment/a/b failed")])
    assert reported.applied is not None and reported.applied.revision == SHAS[3]
    assert reported.failed is not None and reported.failed.message == "Deployment/a/b failed"
    assert run([event(3, True, 10), event(4, False, 20), event(4, True, 30)]).failed is None
    # a failure without a revision is cleared by the next success
    assert run([event(None, False, 10), event(1, True, 20)]).failed is None


def test_events_of_commits_not_on_the_branch_change_nothing() -> None:
    stray = Event(KEY[1], KEY[0], True, False, "r", "", "f" * 40, "main", T0)
    assert ledger.record({}, stray, POSITION.get) is None


def test_the_record_reads_back() -> None:
    reports = {KEY: run([event(3, True, 10), event(4, False, 20, "boom")])}
    assert ledger.decode(ledger.encode(reports)) == reports


# -- events as Flux sends them ------------------------------------------------------------------


def body(**changes: object) -> bytes:
    event = {"involvedObject": {"kind": "Kustomization", "name": "apps", "namespace": "flux-system",
                                "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
             "metadata": {"revision": f"main@sha1:{SHAS[1]}"}, "severity": "info",
             "reason": "ReconciliationSucceeded", "message": "Reconciliation finished",
             "timestamp": "2022-10-28T07:26:19Z", **changes}
    return json.dumps(event).encode()


def test_an_event_is_read_as_notification_controller_sends_it() -> None:
    parsed = parse_event(body())
    assert parsed is not None
    assert (parsed.kustomization, parsed.namespace, parsed.applied, parsed.failed) == (
        "apps", "flux-system", True, False)
    assert (parsed.revision, parsed.branch) == (SHAS[1], "main")
    assert parsed.at == datetime(2022, 10, 28, 7, 26, 19, tzinfo=UTC)
    old = parse_event(body(metadata={"kustomize.toolkit.fluxcd.io/revision": f"main/{SHAS[2]}"}))
    assert old is not None and old.revision == SHAS[2]
    progress = parse_event(body(reason="Progressing"))
    assert progress is not None and not progress.applied and not progress.failed
    failed = parse_event(body(severity="error", reason="HealthCheckFailed", metadata={}))
    assert failed is not None and failed.failed and failed.revision is None


@pytest.mark.parametrize("revision, expected", [
    (f"main@sha1:{SHAS[0]}", ("main", SHAS[0])),
    (f"release/v1@sha1:{SHAS[0]}", ("release/v1", SHAS[0])),
    (f"main/{SHAS[0]}", ("main", SHAS[0])),
    (f"sha1:{SHAS[0]}", (None, SHAS[0])),
    (SHAS[0].upper(), (None, SHAS[0])),
    ("main@sha1:xyz", ("main", None)),
    ("", (None, None)),
])
def test_revisions_in_every_form_flux_wrote(revision: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_revision(revision) == expected


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"involvedObject": 1}',
                                     body(severity=3), body(metadata="x"), b"\xff",
                                     b"[" * 100_000, b'{"a": 1' + b"0" * 5000 + b"}"])
def test_what_is_not_an_event_is_refused(payload: bytes) -> None:
    with pytest.raises(InvalidBundle):
        parse_event(payload)


def test_signatures_are_checked_as_flux_makes_them() -> None:
    token = provider_token(b"secret", "w1")
    assert token == destination_key(b"secret", "w1").hex() != provider_token(b"secret", "w2")
    payload = body()
    for name, digest in (("sha256", hashlib.sha256), ("sha512", hashlib.sha512)):
        check_signature(f"{name}={hmac.new(token.encode(), payload, digest).hexdigest()}",
                        payload, token)
    good = hmac.new(token.encode(), payload, hashlib.sha256).hexdigest()
    for header in (None, "", "sha256", "md5=" + good, "sha256=" + good[:-1] + "0",
                   f"sha256={good}x"):
        with pytest.raises(Unauthorized):
            check_signature(header, payload, token)
    with pytest.raises(Unauthorized):
        check_signature(f"sha256={good}", payload + b" ", token)


# -- a request's delivery ---------------------------------------------------------------------


def held(section: str, namespace: str = "team-a") -> Held:
    return Held(Identity("", "ConfigMap", namespace, "x"), section, "0" * 40, None, False, None)


def reports(**by_name: Reported) -> dict[tuple[str, str], Reported]:
    return {("flux-system", name.replace("_", "-")): value for name, value in by_name.items()}


def applied_at(revision: int) -> Reported:
    return Reported(ledger.Report(SHAS[revision], T0))


def test_which_kustomizations_apply_a_request() -> None:
    wide = Destination("w", {}, "w")
    iso = Destination("w", {}, "w", isolation="namespace", flux_prefix="p", flux_namespace="f")
    objects = [held("dependencies"), held("resources"), held("resources", "team-b")]
    assert kustomizations(wide, objects) == [("flux-system", "kratix-workload-dependencies"),
                                             ("flux-system", "kratix-workload-resources")]
    assert kustomizations(iso, objects) == [("f", "p-dependencies"), ("f", "p-ns-team-a"),
                                            ("f", "p-ns-team-b")]


def test_a_requests_delivery_from_what_its_kustomizations_reported() -> None:
    wide = Destination("w", {}, "w")
    objects = [held("resources")]
    commit = Commit(SHAS[2], T0)
    now = T0 + timedelta(seconds=10)

    def of(found: dict[tuple[str, str], Reported] | None, at: datetime = now) -> str:
        return delivery(wide, objects, found, commit, POSITION.get, at).state

    assert of(None) == UNKNOWN
    assert of({}) == PENDING
    assert of(reports(kratix_workload_resources=applied_at(1))) == PENDING
    assert of(reports(kratix_workload_resources=applied_at(2))) == APPLIED
    assert of(reports(kratix_workload_resources=applied_at(5))) == APPLIED
    failed = Reported(ledger.Report(SHAS[1], T0), ledger.Report(SHAS[3], T0, "Failed",
                                                                  "Deployment/a/web failed"))
    found = delivery(wide, objects, reports(kratix_workload_resources=failed), commit,
                     POSITION.get, now)
    assert (found.state, found.object, found.kustomization) == (
        FAILED, "Deployment/a/web", "kratix-workload-resources")
    # applied at its commit, then a later revision failed: still applied
    later = Reported(ledger.Report(SHAS[2], T0), ledger.Report(SHAS[4], T0, "Failed", "x"))
    assert of(reports(kratix_workload_resources=later)) == APPLIED
    assert not delivery(wide, objects, {}, commit, POSITION.get, now).overdue
    assert delivery(wide, objects, {}, commit, POSITION.get, now + timedelta(minutes=5)).overdue
