"""Refusals: what a refused request is noted with (the refusal's kind, its reason and its
details, from the typed error, never re-read from the wire), for its log line and for
`/ui/refused`'s list of the recent refused bundles (docs/reference.md section 10).

The list is kept in memory only, bounded, newest first, and filled by a `RequestLog`
observer from the same facts as the log line: who sent what for which request, and why it
was refused; never the bundle's content (a pipeline's output may carry secrets).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from starlette.datastructures import State

from app.http.access import Finished, note
from app.http.answers import error_body
from gitops.errors import StatewriterError

KEEP = 200  # refusals remembered
_TEXT = 253  # characters kept of a client-given name (a DNS-1123 subdomain's length)
_MESSAGE = 2000  # characters kept of a reason
# Details of an error worth showing beside its message; all are names, never content.
_DETAILS = ("file", "document", "field", "object", "destination", "reason", "limit")


def note_refusal(request: Request, error: StatewriterError) -> None:
    """Note a refusal for the request's log line (and so for `/ui/refused`)."""
    body = error_body(error)
    details = tuple((key, _text(body[key]) or "") for key in _DETAILS
                    if isinstance(body.get(key), str | int) and not isinstance(body[key], bool))
    note(request, error=type(error).__name__, reason=_text(error.message, _MESSAGE))
    request.state.log_details = details


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
    """The last `keep` refused bundles; safe to use from any thread. A `RequestLog` observer:
    it keeps every refused `POST /v1/bundles` the log line tells of."""

    def __init__(self, keep: int = KEEP) -> None:
        self._items: deque[RefusedBundle] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def __call__(self, finished: Finished) -> None:
        if finished.method != "POST" or finished.path != "/v1/bundles" or finished.status < 400:
            return
        self.add(RefusedBundle(
            time=datetime.now(UTC), promise=_text(finished.promise),
            request=_text(finished.request, 2 * _TEXT + 1), pipeline=_text(finished.pipeline),
            actor=finished.actor or "?", status=finished.status,
            error=finished.error or ("InternalError" if finished.status >= 500 else "Error"),
            message=finished.reason or "", details=finished.details,
            request_id=finished.request_id, dry_run=finished.dry_run))

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
    """The app's list (`app.state.refused_bundles`, made with the app)."""
    found: RefusedBundles = state.refused_bundles
    return found


def _text(value: object, limit: int = _TEXT) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
