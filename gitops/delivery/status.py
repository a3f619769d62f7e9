"""A request's delivery on one destination (docs/reference.md section 12), from what its Kustomizations
reported: `Applied` when every Kustomization holding its objects applied a revision that
contains its latest commit; `Failed` when one of them failed such a revision (and has not
applied one since); `Pending` until then; `Unknown` when Flux's events are not configured."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gitops import layout
from gitops.delivery.ledger import Position, Reported, Reports
from gitops.destination import Destination
from gitops.flux import NOTIFIED_POLL_INTERVAL, POLL_INTERVAL, child_name
from gitops.index import Held

PENDING, APPLIED, FAILED, UNKNOWN = "Pending", "Applied", "Failed", "Unknown"
STATES = (PENDING, APPLIED, FAILED, UNKNOWN)
KUSTOMIZATION_INTERVAL = timedelta(minutes=1)  # the interval of every Kustomization /flux renders
# "Deployment/team-a/web dry-run failed", "service/apps/webapp validation error": the object
# kustomize-controller names at the start of a line
_NAMED = re.compile(r"(?m)^([A-Za-z][A-Za-z0-9]*/(?:[a-z0-9][-a-z0-9]*/)?[a-z0-9][-a-z0-9.]*)\b")


@dataclass(frozen=True)
class Commit:
    sha: str
    at: datetime


@dataclass(frozen=True)
class Delivery:
    """One request on one destination."""

    destination: str
    state: str  # one of STATES
    commit: str | None  # its latest commit there (None: not known)
    committed: datetime | None
    applied: datetime | None = None  # when the last of its Kustomizations applied it
    kustomization: str | None = None  # the one that failed, or is still to apply it
    reason: str | None = None
    message: str | None = None
    object: str | None = None  # the object a failure names (Kind/namespace/name)
    overdue: bool = False  # pending for longer than Flux takes to reconcile


def kustomizations(destination: Destination, held: Iterable[Held]) -> list[tuple[str, str]]:
    """The Flux Kustomizations (namespace, name) that apply what `held` holds there."""
    prefix, namespace = destination.flux_prefix, destination.flux_namespace
    found: set[tuple[str, str]] = set()
    for item in held:
        if item.section == layout.DEPENDENCIES:
            found.add((namespace, f"{prefix}-{layout.DEPENDENCIES}"))
        elif destination.isolated:
            found.add((namespace, child_name(prefix, item.identity.namespace)))
        else:
            found.add((namespace, f"{prefix}-{layout.RESOURCES}"))
    return sorted(found)


def reconcile_time(destination: Destination) -> timedelta:
    """How long Flux may take to apply a commit: the GitRepository's poll (a Receiver, when
    the destination has a notify URL, makes it at once; its poll is then a fallback) and the
    Kustomization's interval."""
    poll = NOTIFIED_POLL_INTERVAL if destination.notify_url else POLL_INTERVAL
    return _duration(poll) + KUSTOMIZATION_INTERVAL


def delivery(destination: Destination, held: Iterable[Held], reports: Reports | None,
             commit: Commit | None, position: Position, now: datetime) -> Delivery:
    """The request's delivery on `destination`; `reports` None: events are not configured."""
    sha, committed = (commit.sha, commit.at) if commit is not None else (None, None)
    if reports is None:
        return Delivery(destination.name, UNKNOWN, sha, committed)
    if commit is None or (at := position(commit.sha)) is None:
        return Delivery(destination.name, PENDING, sha, committed)
    applied: list[datetime] = []
    failure: tuple[str, Reported] | None = None
    waiting: str | None = None
    for key in kustomizations(destination, held):
        reported = reports.get(key, Reported())
        done = reported.applied
        if done is not None and (position(done.revision or "") or 0) >= at:
            applied.append(done.at)
            continue
        failed = reported.failed
        if failed is not None and (failed.revision is None or (position(failed.revision) or 0) >= at):
            failure = failure or (key[1], reported)
        waiting = waiting or key[1]
    if failure is not None:
        name, reported = failure
        assert reported.failed is not None
        found = _NAMED.search(reported.failed.message)
        return Delivery(destination.name, FAILED, commit.sha, commit.at, None, name,
                        reported.failed.reason, reported.failed.message,
                        found.group(1) if found else None)
    if waiting is None:
        return Delivery(destination.name, APPLIED, commit.sha, commit.at,
                        max(applied) if applied else None)
    overdue = now - commit.at > reconcile_time(destination)
    return Delivery(destination.name, PENDING, commit.sha, commit.at, kustomization=waiting,
                    overdue=overdue)


def _duration(text: str) -> timedelta:
    number, unit = int(text[:-1]), text[-1]
    return timedelta(seconds=number * {"s": 1, "m": 60, "h": 3600}[unit])
