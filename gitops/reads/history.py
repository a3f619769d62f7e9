"""A request's audit trail (docs/reference.md section 7): the commits whose trailers name it,
and the reverts of those (`Statewriter-Reverts`), newest first, each with the files it
changed. One log walk from the tip, narrowed by git on the trailers' text and then matched
exactly here, within each trailer group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gitops.commitmsg import ACTIONS, parse_trailers, trailer_pairs
from gitops.errors import InvalidQuery
from gitops.reads.files import Files, files_of
from gitops.store.base import LogEntry, Reads

REVERTS = "Statewriter-Reverts"


@dataclass(frozen=True)
class HistoryEntry:
    sha: str
    time: str  # RFC 3339, UTC, to the second
    actor: str | None
    action: str | None
    reverts: str | None  # the commit a revert commit reverts
    pipelines: tuple[str, ...]  # the request's pipelines the commit names (a revert: its target's)
    destinations: tuple[str, ...]
    message: str  # the subject line
    files: Files


def request_history(
    reads: Reads, tip: str | None, promise: str, namespace: str, name: str
) -> list[HistoryEntry]:
    """Every commit of `tip`'s history whose trailers name request `namespace/name` of
    `promise`, and every revert of one of those (or of such a revert), newest first ([] for
    no tip)."""
    if tip is None:
        return []
    request = f"{namespace}/{name}"
    # a revert names the commit it reverts, not the request: both kinds in one walk
    found = list(reads.log([tip], files=True, grep_any=True,
                           grep=[f"Statewriter-Request: {request}", f"{REVERTS}: "]))
    entries: dict[str, HistoryEntry] = {}
    for commit in reversed(found):  # oldest first: a revert comes after what it reverts
        trailers = parse_trailers(commit.message)
        reverted = entries.get(_first(trailers, REVERTS) or "")
        pipelines = request_pipelines(commit.message, promise, request)
        if pipelines is not None:
            entries[commit.sha] = _entry(commit, trailers, pipelines,
                                         trailers.get("Statewriter-Destination", []))
        elif reverted is not None:
            entries[commit.sha] = _entry(commit, trailers, reverted.pipelines,
                                         reverted.destinations)
    return list(reversed(entries.values()))


def _entry(commit: LogEntry, trailers: dict[str, list[str]], pipelines: Sequence[str],
           destinations: Sequence[str]) -> HistoryEntry:
    return HistoryEntry(
        sha=commit.sha, time=iso_time(commit.time),
        actor=_first(trailers, "Statewriter-Actor"),
        action=_first(trailers, "Statewriter-Action"),
        reverts=_first(trailers, REVERTS),
        pipelines=tuple(pipelines),
        destinations=tuple(destinations),
        message=commit.message.strip().split("\n", 1)[0] if commit.message.strip() else "",
        files=files_of(commit.files or ()),
    )


def parse_action(action: str | None) -> str | None:
    """The action a history is filtered by (None: every action); InvalidQuery for one no
    commit names."""
    if not action:
        return None
    if action not in ACTIONS:
        raise InvalidQuery(f"action must be one of {', '.join(ACTIONS)}", field="action")
    return action


def request_pipelines(message: str, promise: str, request: str) -> list[str] | None:
    """The pipelines the trailers give for (promise, request); None when they don't name it.

    Trailers come in groups (Promise, Request, Pipeline...; a destination commit that
    places several bundles has one group each), so a request is matched within its group:
    promise A with request x and promise B with request y do not name B's request x."""
    promise_now: str | None = None
    inside = named = False
    pipelines: list[str] = []
    for key, value in trailer_pairs(message):
        if key == "Statewriter-Promise":
            promise_now, inside = value, False
        elif key == "Statewriter-Request":
            inside = promise_now == promise and value == request
            named = named or inside
        elif key == "Statewriter-Pipeline" and inside and value not in pipelines:
            pipelines.append(value)
    return pipelines if named else None


def iso_time(seconds: int) -> str:
    """A commit time as the reads give it: RFC 3339 in UTC, to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first(trailers: dict[str, list[str]], key: str) -> str | None:
    values = trailers.get(key)
    return values[0] if values else None
