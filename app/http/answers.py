"""Every HTTP answer body and status code, in one place: errors from the core's one
hierarchy, and the typed results of the writer lane."""

from __future__ import annotations

from typing import Any

from app.jsonable import jsonable, owner_json
from gitops.errors import (
    Conflict,
    EncryptionRequired,
    Forbidden,
    InvalidBundle,
    InvalidDestination,
    InvalidQuery,
    LimitExceeded,
    MethodNotAllowed,
    NotFound,
    RouteNotFound,
    StatewriterError,
    StoreUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    YamlLimitExceeded,
)
from gitops.planner.results import (
    SCHEDULED,
    Applied,
    Deleted,
    DestinationDeleted,
    DestinationSaved,
    Notes,
    Result,
    RolledBack,
)
from gitops.writer import Done, Failed, Outcome, Refused

STATUS: dict[type[StatewriterError], int] = {
    YamlLimitExceeded: 413,  # a YamlError that is also over a limit: the limit decides
    InvalidBundle: 422,
    InvalidQuery: 422,
    InvalidDestination: 422,
    EncryptionRequired: 422,
    UnsupportedMediaType: 415,
    LimitExceeded: 413,
    Conflict: 409,
    NotFound: 404,
    RouteNotFound: 404,
    MethodNotAllowed: 405,
    Forbidden: 403,
    Unauthorized: 401,
    StoreUnavailable: 503,
}

Answer = tuple[int, dict[str, Any]]


def error_status(error: StatewriterError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def error_body(error: StatewriterError) -> dict[str, Any]:
    """`{"error": "<Kind>", "message": "...", ...}` with the file, document or field."""
    details = {key: jsonable(value) for key, value in error.detail.items()}
    return {"error": type(error).__name__, "message": error.message, **details}


MAX_PATH_SHOWN = 200  # characters of a client's path repeated in a refusal


def routing_refusal(status: int, method: str, path: str,
                    allowed: str | None) -> StatewriterError | None:
    """What an address no route serves (404), or serves for other methods (405, `allowed`
    from the Allow header), is refused with: an error of the one hierarchy, so that its
    body is every refusal's (None for any other status)."""
    shown = path if len(path) <= MAX_PATH_SHOWN else path[:MAX_PATH_SHOWN - 1] + "…"
    if status == 405:
        methods = [m.strip() for m in (allowed or "").split(",") if m.strip()]
        return MethodNotAllowed(f"{shown} does not take {method}; it takes "
                                f"{', '.join(methods) or 'no method'}", allowed=methods)
    if status == 404:
        return RouteNotFound(f"nothing is served at {shown} (the API: /docs)")
    return None


def answer(outcome: Outcome) -> Answer:
    if isinstance(outcome, Refused):
        return error_status(outcome.error), error_body(outcome.error)
    if isinstance(outcome, Failed):
        return 500, {"error": "InternalError",
                     "message": "unexpected error while planning or committing this request; "
                                "nothing it asked for was changed. The service log has the "
                                f"details under request id {outcome.request_id}",
                     "requestId": outcome.request_id}
    return _done(outcome)


def _done(done: Done) -> Answer:
    status, body = _result(done.result)
    body["changed"] = done.changed
    body["files"] = {"added": list(done.files.added), "changed": list(done.files.changed),
                     "removed": list(done.files.removed)}
    body.update(_notes(done.notes))
    body["commit"] = done.commit
    if done.dry_run:
        body["dryRun"] = True
    return status, body


def _placed(result: Applied | RolledBack, body: dict[str, Any]) -> Answer:
    """A write's placement: 200 once scheduled, 202 while pending, and why when it says."""
    if result.misplaced is not None:
        body["misplaced"] = result.misplaced
    if result.reason:
        body["reason"] = result.reason
    return (200 if result.state == SCHEDULED else 202), body


def _result(result: Result) -> Answer:
    if isinstance(result, Applied):
        body: dict[str, Any] = {
            "state": result.state,
            "destinations": list(result.destinations),
            **owner_json(result.owner),
        }
        return _placed(result, body)
    if isinstance(result, RolledBack):
        owner = result.restored[0].owner
        body = {"state": result.state, "destinations": list(result.destinations),
                "promise": owner.promise, "request": owner.request,
                "pipelines": [applied.owner.pipeline for applied in result.restored],
                "removed": [removed.pipeline for removed in result.removed],
                "rolledBackTo": result.commit}
        return _placed(result, body)
    if isinstance(result, Deleted):
        return 200, {"deleted": [owner_json(o) for o in result.owners],
                     "destinations": list(result.destinations)}
    if isinstance(result, DestinationSaved):
        return 200, result.destination.as_dict()
    if isinstance(result, DestinationDeleted):
        return 200, {"deleted": result.name}
    return 200, {}


def _notes(notes: Notes) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if notes.replaced:
        body["replaced"] = list(notes.replaced)
    if notes.kept:
        body["keptAtNewerGeneration"] = list(notes.kept)
    if notes.warnings:
        body["warnings"] = list(notes.warnings)
    if notes.not_placed:
        body["notPlaced"] = [{**owner_json(item.owner), "destination": item.destination,
                              "reason": item.reason} for item in notes.not_placed]
    return body


MAX_WARNING_HEADERS = 50
MAX_WARNING_HEADER = 1024  # characters of one warning's text in its header (all in the body)


def warning_headers(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The body's `warnings` as HTTP `Warning: 299 - "..."` headers, as the Kubernetes API
    sends its own (kubectl prints them): ASCII, quotes and backslashes escaped."""
    headers = []
    for warning in list(body.get("warnings") or ())[:MAX_WARNING_HEADERS]:
        text = str(warning)[:MAX_WARNING_HEADER].encode("ascii", "backslashreplace").decode()
        text = "".join(c if c.isprintable() else " " for c in text)
        text = text.replace("\\", "\\\\").replace('"', '\\"')
        headers.append(("Warning", f'299 - "{text}"'))
    return headers
