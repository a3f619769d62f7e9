"""The recent refused bundles, for `/ui/refused` (CONTRACT section 10): kept in memory only,
bounded, newest first. A record holds who sent what for which request and why it was
refused; never the bundle's content (a pipeline's output may carry secrets)."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import Message

from app.answers import error_body, error_status
from app.auth import Principal
from app.requestid import request_id_of
from gitops.errors import StatewriterError
from gitops.owner import DEFAULT_PIPELINE

KEEP = 200  # refusals remembered
_TEXT = 253  # characters kept of a client-given name (a DNS-1123 subdomain's length)
_MESSAGE = 2000  # characters kept of a reason
# Details of an error body worth showing beside its message; all are names, never content.
_DETAILS = ("file", "document", "field", "object", "destination", "reason", "limit")


@dataclass(frozen=True)
class RefusedBundle:
    time: datetime
    promise: str | None
    request: str | None  # "namespace/name"; None for a promise-level bundle or when unknown
    pipeline: str | None
    actor: str
    status: int
    error: str  # the error kind of the answer (Conflict, InvalidBundle...)
    message: str
    details: tuple[tuple[str, str], ...]
    request_id: str | None
    dry_run: bool

    @property
    def request_parts(self) -> tuple[str, str] | None:
        """(namespace, name) when the request is a usable pair for a link."""
        if not self.request or self.request.count("/") != 1:
            return None
        namespace, _, name = self.request.partition("/")
        return (namespace, name) if namespace and name else None


class RefusedBundles:
    """The last `keep` refusals; safe to use from any thread."""

    def __init__(self, keep: int = KEEP) -> None:
        self._items: deque[RefusedBundle] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, item: RefusedBundle) -> None:
        with self._lock:
            self._items.append(item)

    def newest_first(self) -> list[RefusedBundle]:
        with self._lock:
            return list(reversed(self._items))

    @property
    def keep(self) -> int:
        return self._items.maxlen or 0

    def __len__(self) -> int:
        return len(self._items)


def recent(state: State) -> RefusedBundles:
    """The app's list (`app.state`), made on first use."""
    found = getattr(state, "refused_bundles", None)
    if not isinstance(found, RefusedBundles):
        found = state.refused_bundles = RefusedBundles()
    return found


Endpoint = Callable[..., Awaitable[Response]]


def recorded(endpoint: Endpoint) -> Endpoint:
    """Decorate the bundle route: every answer of 400 or more, whether the route raised it
    (body, limits, validation, permission) or the writer lane answered it (a conflict),
    is remembered with the bundle's identity. FastAPI sees the route's own signature."""

    @functools.wraps(endpoint)
    async def route(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        body = _Tap(request)
        try:
            response = await endpoint(*args, **kwargs)
        except StatewriterError as error:
            await _note(request, kwargs, body, error_status(error), error_body(error))
            raise
        if response.status_code >= 400:
            answer: Any = None
            with contextlib.suppress(ValueError):
                answer = json.loads(bytes(response.body))
            if isinstance(answer, dict):
                await _note(request, kwargs, body, response.status_code, answer)
        return response

    return route


class _Tap:
    """Keeps the chunks of the request body as the route reads them (the same bytes objects
    the route reads, not copies; released with the request), so that a refusal raised while
    parsing still names the bundle it refused. The stream itself cannot be read twice."""

    def __init__(self, request: Request) -> None:
        self.chunks: list[bytes] = []
        receive = request._receive

        async def tapped() -> Message:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                self.chunks.append(message["body"])
            return message

        request._receive = tapped

    def identity(self) -> dict[str, Any]:
        """promise, request and pipeline of a JSON bundle, when the body is JSON at all."""
        try:
            payload = json.loads(b"".join(self.chunks))
        except (ValueError, RecursionError):
            return {}
        return payload if isinstance(payload, dict) else {}


async def _note(request: Request, kwargs: dict[str, Any], body: _Tap, status: int,
                answer: dict[str, Any]) -> None:
    who = kwargs.get("who")
    actor = who.name if isinstance(who, Principal) else "?"
    query = request.query_params
    if query.get("promise") is not None:  # the tarball form names its bundle in the query
        promise, pipeline = query.get("promise"), query.get("pipeline")
        namespace, name = query.get("namespace"), query.get("name")
    else:
        payload = await run_in_threadpool(body.identity)
        promise, pipeline = payload.get("promise"), payload.get("pipeline")
        given = payload.get("request")
        namespace, name = (given.get("namespace"), given.get("name")) if isinstance(given, dict) \
            else (None, None)
    request_name = f"{_text(namespace) or ''}/{_text(name) or ''}" if namespace or name else None
    details = tuple((key, _text(answer[key]) or "") for key in _DETAILS
                    if isinstance(answer.get(key), str | int) and not isinstance(answer[key], bool))
    recent(request.app.state).add(RefusedBundle(
        time=datetime.now(UTC),
        promise=_text(promise),
        request=request_name,
        pipeline=_text(pipeline) or (DEFAULT_PIPELINE if promise is not None else None),
        actor=actor,
        status=status,
        error=str(answer.get("error", "Error"))[:80],
        message=(_text(answer.get("message"), _MESSAGE) or ""),
        details=details,
        request_id=request_id_of(request.state),
        dry_run=getattr(request.state, "log_dry_run", None) is True,
    ))


def _text(value: object, limit: int = _TEXT) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

