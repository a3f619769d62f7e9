"""One line per HTTP request, once it is answered (`"event": "request"`, logger
`statewriter.access`): its id (`X-Request-ID`), method, path, status, duration, the caller
(`actor`), and what the routes noted: promise, request, outcome, commit. Never a header, a
query, a body: tokens and bundle content (secrets among them) stay out. The same facts
(`Finished`) go to the request log's observers: the bundle metrics and the refused bundles.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("statewriter.access")
# What probes and scrapers ask every few seconds: their lines are debug, not info (a
# failure is still a warning)
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def note(request: Request, /, **facts: str | bool | None) -> None:
    """What a route knows about its request, for the request's log line (and its metrics):
    `actor`, `promise`, `request` ("namespace/name"), `pipeline`, `commit`, `changed`,
    `dry_run`, and for a refusal `error` and `reason` (`app.http.refused.note_refusal`)."""
    for key, value in facts.items():
        setattr(request.state, f"log_{key}", value)


@dataclass(frozen=True)
class Finished:
    """One answered HTTP request, as its log line tells it."""

    request_id: str | None
    method: str
    path: str
    status: int
    duration_ms: float
    actor: str | None
    promise: str | None
    request: str | None
    outcome: str
    commit: str | None
    dry_run: bool = False
    pipeline: str | None = None
    error: str | None = None  # a refusal's kind (Conflict, InvalidBundle...)
    reason: str | None = None  # ... and its message
    details: tuple[tuple[str, str], ...] = ()  # ... and what it names (file, field, object)


_FINISHED_FIELDS = dataclasses.fields(Finished)


def outcome(status: int, changed: bool | None = None) -> str:
    """A request's outcome from its status (and, for a write, whether it changed the branch):
    the bundle outcomes of /metrics for POST /v1/bundles."""
    if status == 202:
        return "pending"
    if status < 300:
        return {True: "written", False: "unchanged", None: "ok"}[changed]
    if status in (401, 403):
        return "refused_auth"
    if status == 404:
        return "not_found"
    if status == 409:
        return "conflict"
    if status >= 500:
        return "failed"
    return "invalid"  # 400, 413, 415, 422


Observer = Callable[[Finished], None]


class RequestLog:
    """ASGI middleware: one `statewriter.access` line per HTTP request once it is answered,
    then each observer hears the same facts (inside the request-id middleware, so the id
    is known)."""

    def __init__(self, app: ASGIApp, observers: Iterable[Observer] = ()) -> None:
        self.app = app
        self.observers = list(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._finish(scope, status, (time.perf_counter() - started) * 1000)

    def _finish(self, scope: Scope, status: int, duration_ms: float) -> None:
        state: dict[str, Any] = scope.get("state", {})

        def fact(key: str) -> str | None:
            value = state.get(f"log_{key}")
            return value if isinstance(value, str) else None

        # a route's own notes, else what its path names (/v1/promises/{promise}/requests/...)
        params: dict[str, Any] = scope.get("path_params", {})
        namespace, name = params.get("namespace"), params.get("name")
        request = fact("request") or (f"{namespace}/{name}" if params.get("promise") and isinstance(
            namespace, str) and isinstance(name, str) else None)
        promise = fact("promise") or params.get("promise")
        changed = state.get("log_changed")
        finished = Finished(
            request_id=state.get("request_id"), method=scope["method"], path=scope["path"],
            status=status, duration_ms=round(duration_ms, 1), actor=fact("actor"),
            promise=promise if isinstance(promise, str) else None, request=request,
            outcome=outcome(status, changed if isinstance(changed, bool) else None),
            commit=fact("commit"), dry_run=state.get("log_dry_run") is True,
            pipeline=fact("pipeline"), error=fact("error"), reason=fact("reason"),
            details=state.get("log_details") or ())
        # its fields are plain values: asdict's deep copy of them is a fifth of this method
        line = {field.name: getattr(finished, field.name) for field in _FINISHED_FIELDS}
        for optional in ("dry_run", "pipeline", "error", "reason", "details"):
            if not line[optional]:
                del line[optional]
        if "details" in line:
            line["details"] = dict(finished.details)
        access.log(_level(finished), "%s %s %d", finished.method, finished.path, status,
                   extra={"event": "request", **line})
        for observer in self.observers:
            try:
                observer(finished)
            except Exception:  # metrics never fail an answer
                access.exception("a request observer failed")


def _level(finished: Finished) -> int:
    if finished.status >= 500:
        return logging.WARNING
    return logging.DEBUG if finished.path in PROBES else logging.INFO
