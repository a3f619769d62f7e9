"""The service's log: one place that configures it, and one line per HTTP request.

Every line is one JSON object by default (`time`, `level`, `logger`, `message`, and the
fields of its event), or `time level logger message key=value...` with
`statewriter serve --log-format text` or `STATEWRITER_LOG_FORMAT=text`. A request's line
(`"event": "request"`) names its id (`X-Request-ID`), method, path, status, duration, the
caller (`actor`), and what the routes noted: promise, request, outcome, commit. Never a
header, a query, a body: tokens and bundle content (secrets among them) stay out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORMATS = ("json", "text")
ENVIRONMENT = "STATEWRITER_LOG_FORMAT"
# What a LogRecord holds of its own: anything else on it came as `extra` fields (but
# uvicorn's copy of its message with terminal colours)
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}

access = logging.getLogger("statewriter.access")


def chosen_format(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The flag's format, else the environment's, else JSON; ValueError for an unknown one."""
    chosen = flag or environ.get(ENVIRONMENT) or "json"
    if chosen not in FORMATS:
        raise ValueError(f"{ENVIRONMENT}={chosen!r}: the log format is json or text")
    return chosen


def configure(format: str) -> None:
    """Send every logger's records (uvicorn's too, see app.http.server) to stderr in `format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []  # through the root's handler, formatted alike
        logging.getLogger(name).propagate = True


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event fields a record carries (given as `extra`)."""
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


def _time(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower(),
                                "logger": record.name, "message": record.getMessage()}
        line.update(fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{key}={_text(value)}" for key, value in fields(record).items()
                         if value is not None)
        line = f"{_time(record)} {record.levelname} {record.name} {record.getMessage()}"
        line = f"{line} {extra}" if extra else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _text(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


# -- one line per request -------------------------------------------------------------------


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
        access.log(logging.WARNING if status >= 500 else logging.INFO, "%s %s %d",
                   finished.method, finished.path, status, extra={"event": "request", **line})
        for observer in self.observers:
            try:
                observer(finished)
            except Exception:  # metrics never fail an answer
                access.exception("a request observer failed")
