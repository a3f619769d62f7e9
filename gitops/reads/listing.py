"""`GET /v1/promises/{promise}/requests`: a promise's requests with their delivery, in
namespace/name order, filtered and paged with an opaque cursor (the last request of a page:
requests made meanwhile never shift or repeat the pages that follow)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gitops import names
from gitops.delivery.status import STATES
from gitops.errors import InvalidQuery
from gitops.index import Index, OwnerRecord
from gitops.quoting import quoted
from gitops.reads.delivery import RequestDelivery

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
_CHUNK = 500  # requests whose delivery is read at once (one walk of the log for their commits)


@dataclass(frozen=True)
class ListingQuery:
    namespace: str | None
    destination: str | None
    state: str | None  # a delivery state (the request's summary: RequestDelivery.state)
    limit: int
    after: tuple[str, str] | None  # the cursor: the last (namespace, name) of the page before


@dataclass(frozen=True)
class ListedRequest:
    request: str  # namespace/name
    state: str  # Scheduled when every pipeline is placed, else Pending
    destinations: tuple[str, ...]
    pipelines: tuple[str, ...]
    delivery: RequestDelivery


@dataclass(frozen=True)
class RequestPage:
    requests: tuple[ListedRequest, ...]
    next: str | None


def parse_listing(namespace: str | None = None, destination: str | None = None,
                  state: str | None = None, limit: str | None = None,
                  cursor: str | None = None) -> ListingQuery:
    """The query as the URL gives it; InvalidQuery naming what cannot be used."""
    if namespace and not names.is_label(namespace):
        raise InvalidQuery(f"namespace {quoted(namespace[:64])} is not a DNS-1123 label", field="namespace")
    if state and state not in STATES:
        raise InvalidQuery(f"state must be one of {', '.join(STATES)}", field="state")
    count = DEFAULT_LIMIT
    if limit:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise InvalidQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
        count = int(limit)
    return ListingQuery(namespace or None, destination or None, state or None, count,
                        _decode_cursor(cursor) if cursor else None)


def list_requests(index: Index, promise: str, query: ListingQuery,
                  deliveries: Callable[[Sequence[Sequence[OwnerRecord]]], list[RequestDelivery]]
                  ) -> RequestPage:
    """A page of `promise`'s requests matching `query`; `deliveries` reads the delivery of a
    chunk of requests (their records) at once."""
    keys = sorted((ns, name) for (p, ns, name), _ in index.requests.items()
                  if p == promise and name and (query.namespace in (None, ns))
                  and (query.after is None or (ns, name) > query.after))
    found: list[ListedRequest] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = []
        for ns, name in keys[start:start + _CHUNK]:
            records = index.request_owners(promise, ns, name)
            if records and (query.destination is None or any(
                    query.destination in r.destinations for r in records)):
                chunk.append(((ns, name), records))
        for (key, records), delivery in zip(chunk, deliveries([r for _, r in chunk]), strict=True):
            if query.state is not None and delivery.state != query.state:
                continue
            if len(found) == query.limit:
                return RequestPage(tuple(found), _encode_cursor(_key(found[-1])))
            found.append(_listed(key, records, delivery))
    return RequestPage(tuple(found), None)


def _listed(key: tuple[str, str], records: Sequence[OwnerRecord],
            delivery: RequestDelivery) -> ListedRequest:
    return ListedRequest(
        f"{key[0]}/{key[1]}", "Scheduled" if all(r.destinations for r in records) else "Pending",
        tuple(sorted({d for r in records for d in r.destinations})),
        tuple(sorted(r.owner.pipeline for r in records)), delivery)


def _key(listed: ListedRequest) -> tuple[str, str]:
    namespace, _, name = listed.request.partition("/")
    return namespace, name


def _encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}/{key[1]}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    namespace, slash, name = text.partition("/")
    if not slash or not namespace or not name:
        raise InvalidQuery("cursor is not one this service gave", field="cursor")
    return namespace, name
