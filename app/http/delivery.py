"""Delivery status over HTTP (docs/reference.md section 12): Flux's events for a destination, signed
with that destination's own key instead of a token (`events_router`), and the requests of a
promise with their delivery (`router`, behind the token like every /v1 read)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.http import schemas
from app.http.access import note
from app.http.auth import authenticated
from app.http.bodies import read_body
from app.http.state import config_of, snapshot
from app.jsonable import jsonable
from gitops.delivery.book import DeliveryBook
from gitops.delivery.events import MAX_EVENT_BYTES, check_signature, parse_event, provider_token
from gitops.errors import NotFound
from gitops.index import Index, OwnerRecord
from gitops.quoting import quoted
from gitops.reads.delivery import RequestDelivery, record_commits, request_delivery
from gitops.reads.listing import DEFAULT_LIMIT, MAX_LIMIT, list_requests, parse_listing
from gitops.tree import Tree

router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])
events_router = APIRouter(prefix="/v1")  # signed by the destination's key, not a token
log = logging.getLogger("statewriter.delivery")


def book_of(request: Request) -> DeliveryBook | None:
    book: DeliveryBook | None = request.app.state.delivery
    return book


def deliveries(request: Request, index: Index, tree: Tree, tip: str | None,
               requests: Sequence[Sequence[OwnerRecord]]) -> list[RequestDelivery]:
    """The delivery of each request (its pipelines' records); runs git: call off the loop."""
    book = book_of(request)
    store = request.app.state.writer.store
    commits = record_commits(store, tree, tip, [r for records in requests for r in records])
    return [request_delivery(index, records, commits, book) for records in requests]


@events_router.post(
    "/destinations/{name}/events", summary="Flux's events for a destination",
    tags=["destinations"],
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "description": "an Event of Flux's notification-controller "
                                                    "(generic-hmac Provider)"}}}},
        "security": [{schemas.FLUX_HMAC: []}]},
    responses={**schemas.answers(schemas.EventTaken, 200),
               **schemas.refusals(401, 404, 413, 422, 503, why={
                   401: "X-Signature does not match the body and the destination's key.",
                   404: "No such destination, or delivery events are not configured."})},
)
async def post_events(request: Request, name: str) -> JSONResponse:
    """What Flux's notification-controller posts for the destination's Kustomizations (the
    Provider and Alert `GET /v1/destinations/{name}/flux` renders). Authenticated by
    `X-Signature: sha256=<hex>`, the HMAC of the body with the destination's own key, not by
    a token. A replay, or an event for a revision older than one already reported, changes
    nothing."""
    book, config = book_of(request), config_of(request)
    if book is None or config.delivery is None:
        raise NotFound("delivery events are not configured (delivery.hmacTokenFile)")
    body = await read_body(request, MAX_EVENT_BYTES)
    _, index, _ = await snapshot(request)
    if index.destinations.get(name) is None:
        raise NotFound(f"no destination {quoted(name)}")
    check_signature(request.headers.get("x-signature"), body,
                    provider_token(config.delivery.secret, name))
    event = parse_event(body)
    if event is None:
        return JSONResponse({"recorded": False, "reason": "not a Kustomization's event"})
    if event.branch is not None and event.branch != config.branch:
        return JSONResponse({"recorded": False, "reason": f"revision of branch {event.branch}"})
    recorded = await run_in_threadpool(lambda: book.record(name, event).result(timeout=60))
    note(request, destination=name, kustomization=event.kustomization, revision=event.revision)
    reason = None if recorded else "changes nothing (a replay, an older revision, progress, or a " \
                                    "commit not on the branch)"
    return JSONResponse({"recorded": recorded, **({"reason": reason} if reason else {})})


@router.get(
    "/promises/{promise}/requests", summary="A promise's requests", tags=["requests"],
    responses={**schemas.answers(schemas.RequestPage, 200), **schemas.refusals(401, 422, 503)})
async def get_requests(
    request: Request, promise: str,
    namespace: str | None = Query(None, description="only this namespace's requests"),
    destination: str | None = Query(None, description="only requests placed on it"),
    state: str | None = Query(None, description="Applied, Failed, Pending or Unknown: the "
                                                "request's delivery summed up"),
    limit: str | None = Query(None, description=f"1-{MAX_LIMIT}, default {DEFAULT_LIMIT}"),
    cursor: str | None = Query(None, description="the `next` of the previous page"),
) -> Any:
    """Its requests in namespace/name order, each with its state, destinations, pipelines and
    delivery (per destination: Pending, Applied, Failed with Flux's reason and message, or
    Unknown when Flux's events are not configured). At most `limit` per answer; `next` is the
    cursor of the next page (send it with the same filters)."""
    query = parse_listing(namespace, destination, state, limit, cursor)
    tip, index, tree = await snapshot(request)

    def page() -> Any:
        return list_requests(index, promise, query,
                             lambda chunk: deliveries(request, index, tree, tip, chunk))

    found = await run_in_threadpool(page)
    return {"promise": promise, "requests": jsonable(found.requests), "next": found.next}
