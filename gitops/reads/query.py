"""A query of the commits across requests (`GET /v1/history`, `statewriter history`): its
parameters as the URL gives them, read and checked (`parse_query`), and the cursor that
continues a page. Apart from the log that answers it (`gitops.reads.audit`), so that the
command line checks a query before it asks the service without loading the store."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from gitops.errors import InvalidQuery
from gitops.quoting import quoted

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
FILTERS = ("promise", "destination", "actor", "action")  # each matched against its trailer

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+ -]\d{2}:\d{2})")
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")
_CURSOR_TEXT = re.compile(r"(\d{1,12}):([0-9a-f]{40}|[0-9a-f]{64})")


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last commit it gave (its id, and its position as a hint)."""

    position: int
    sha: str

    def encode(self) -> str:
        text = f"{self.position}:{self.sha}".encode()
        return base64.urlsafe_b64encode(text).rstrip(b"=").decode()

    @staticmethod
    def decode(value: str) -> Cursor:
        problem = InvalidQuery("cursor is not one this service gave: use the `next` of the "
                               "previous page as it came", field="cursor")
        if not _CURSOR.fullmatch(value):
            raise problem
        try:
            text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
        except (binascii.Error, ValueError):
            raise problem from None
        found = _CURSOR_TEXT.fullmatch(text)
        if found is None:
            raise problem
        return Cursor(int(found.group(1)), found.group(2))


@dataclass(frozen=True)
class Query:
    """Filters combined with AND; `since` and `until` bound the commit time (both included)."""

    promise: str | None = None
    destination: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None

    def filters(self) -> list[tuple[str, str]]:
        return [(name, value) for name in FILTERS if (value := getattr(self, name)) is not None]


def parse_query(
    *,
    promise: str | None = None,
    destination: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
) -> Query:
    """A query from its parameters as the URL gives them (an empty one is as absent);
    InvalidQuery naming the parameter that cannot be used."""
    start = parse_time(since, "since") if since else None
    end = parse_time(until, "until") if until else None
    if start is not None and end is not None and start > end:
        raise InvalidQuery(f"since ({since}) is after until ({until})", field="since")
    return Query(promise or None, destination or None, actor or None, action or None,
                 start, end, parse_limit(limit) if limit else DEFAULT_LIMIT,
                 Cursor.decode(cursor) if cursor else None)


def parse_time(value: str, name: str) -> datetime:
    """An RFC 3339 date-time with its offset (`2024-05-01T10:00:00Z`, `...+02:00`). A `+`
    sent unencoded in a URL arrives as a space: it is read as the `+` it was."""
    found = _RFC3339.fullmatch(value.strip())
    problem = InvalidQuery(f"{name} must be an RFC 3339 date-time with an offset, e.g. "
                           f"2024-05-01T10:00:00Z, not {quoted(value[:64])}", field=name)
    if found is None:
        raise problem
    day, clock, fraction, offset = found.groups()
    zone = "+00:00" if offset in ("Z", "z") else "+" + offset[1:] if offset[0] == " " else offset
    try:
        when = datetime.fromisoformat(f"{day}T{clock}{zone}")
    except ValueError:
        raise problem from None
    if fraction:
        when += timedelta(microseconds=int((fraction[1:] + "000000")[:6]))
    return when


def parse_limit(value: str) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, not "
                           f"{quoted(value[:32])}", field="limit")
    return int(text)
