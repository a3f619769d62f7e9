"""What each of a destination's Kustomizations last reported, as kept on the delivery branch
(one JSON file per destination), and how an event changes it. Pure: commits are known by
their position on the branch (`Positions`: the first commit is 1), so that an event for a
revision older than one already reported never moves a state back, and a replay changes
nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from gitops.delivery.events import Event

Position = Callable[[str], int | None]  # a commit's position on the branch (None: not on it)


@dataclass(frozen=True)
class Report:
    revision: str | None  # the commit (None: the event named none)
    at: datetime  # when Flux reported it
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Reported:
    """One Kustomization: the newest revision it applied, and a failure since then."""

    applied: Report | None = None
    failed: Report | None = None


Reports = Mapping[tuple[str, str], Reported]  # (namespace, name) -> what it reported


def record(reports: Reports, event: Event, position: Position) -> dict[tuple[str, str], Reported] | None:
    """`reports` with `event` taken in, or None when it changes nothing (a replay, an older
    revision, a commit not on the branch, progress that is neither applied nor failed)."""
    if not (event.applied or event.failed):
        return None
    at = position(event.revision) if event.revision else None
    if event.revision and at is None:
        return None
    key = (event.namespace, event.kustomization)
    now = reports.get(key, Reported())
    new = _applied(now, event, at, position) if event.applied else _failed(now, event, at, position)
    if new is None or new == now:
        return None
    return {**reports, key: new}


def _applied(now: Reported, event: Event, at: int | None, position: Position) -> Reported | None:
    if at is None:
        return None  # an applied revision is always named
    before = (position(now.applied.revision or "") or 0) if now.applied is not None else 0
    if before > at:
        return None
    failed = now.failed
    if failed is not None and (
            (failed.revision is None and failed.at <= event.at)
            or (failed.revision is not None and (
                (position(failed.revision) or 0) < at
                or ((position(failed.revision) or 0) == at and failed.at <= event.at)))):
        failed = None  # of an older revision, or of this one before it applied after all
    applied = now.applied if before == at else Report(event.revision, event.at)
    return Reported(applied, failed)


def _failed(now: Reported, event: Event, at: int | None, position: Position) -> Reported | None:
    if at is not None and now.applied is not None:
        applied = position(now.applied.revision or "") or 0
        if applied > at or (applied == at and now.applied.at >= event.at):
            return None  # a newer revision, or this one later, applied
    if now.failed is not None:
        before = position(now.failed.revision) if now.failed.revision else None
        if at is not None and before is not None and before > at:
            return None
        if (at is None or before is None or before == at) and now.failed.at > event.at:
            return None
    return replace(now, failed=Report(event.revision, event.at, event.reason, event.message))


# -- the record on the delivery branch ---------------------------------------------------------


def encode(reports: Reports) -> bytes:
    items = []
    for (namespace, name), reported in sorted(reports.items()):
        item: dict[str, object] = {"namespace": namespace, "name": name}
        for field, report in (("applied", reported.applied), ("failed", reported.failed)):
            if report is not None:
                item[field] = {"revision": report.revision, "at": report.at.isoformat(),
                               **({"reason": report.reason, "message": report.message}
                                  if field == "failed" else {})}
        items.append(item)
    return (json.dumps({"kustomizations": items}, indent=1, sort_keys=True) + "\n").encode()


def decode(data: bytes) -> dict[tuple[str, str], Reported]:
    raw = json.loads(data)
    found: dict[tuple[str, str], Reported] = {}
    for item in raw.get("kustomizations", []):
        reports: dict[str, Report | None] = {}
        for field in ("applied", "failed"):
            report = item.get(field)
            reports[field] = None if report is None else Report(
                report.get("revision"), datetime.fromisoformat(report["at"]),
                str(report.get("reason", "")), str(report.get("message", "")))
        found[(str(item["namespace"]), str(item["name"]))] = Reported(reports["applied"],
                                                                       reports["failed"])
    return found
