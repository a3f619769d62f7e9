"""A promise's page: its requests with their delivery, filtered by namespace, destination and
delivery state and paged as `GET /v1/promises/{promise}/requests` pages them (the same read,
`gitops.reads.listing`), and its promise-level bundles when it has any. A promise has a
page whenever something of it is stored."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.http.delivery import deliveries
from app.http.state import snapshot
from app.web.access import Page, Viewer
from app.web.render import PREFIX, promise_url, render
from gitops.delivery.status import STATES
from gitops.errors import NotFound
from gitops.index import OwnerRecord
from gitops.reads.delivery import RequestDelivery
from gitops.reads.listing import RequestPage, list_requests, parse_listing
from gitops.reads.promises import promise_overview
from gitops.reads.requests import RequestState, request_state
from gitops.reads.summaries import consistent

router = APIRouter(route_class=Page)


@router.get("/promises/{promise}")
async def promise_page(
    request: Request, who: Viewer, promise: str, namespace: str | None = None,
    destination: str | None = None, state: str | None = None, limit: str | None = None,
    cursor: str | None = None,
) -> Response:
    query = parse_listing(namespace, destination, state, limit, cursor)
    tip, index, tree = await snapshot(request)
    overview = await run_in_threadpool(consistent, lambda: promise_overview(index, promise))
    if overview is None:
        raise NotFound(f"Promise {promise} has no requests and no promise-level bundles stored.")

    def read() -> tuple[RequestPage, RequestState | None, RequestDelivery | None]:
        page = list_requests(index, promise, query,
                             lambda chunk: deliveries(request, index, tree, tip, chunk))
        own: list[OwnerRecord] = index.request_owners(promise)
        if not own:
            return page, None, None
        (delivery,) = deliveries(request, index, tree, tip, [own])
        return page, request_state(tip, index, own), delivery

    page, level, level_delivery = await run_in_threadpool(read)
    filters = {"namespace": query.namespace, "destination": query.destination,
               "state": query.state, "limit": limit}
    return await render(
        request, "promise.html", who, title=f"Promise {promise}", tip=tip, promise=promise,
        overview=overview, requests=page.requests, filters=filters, states=STATES,
        next_url=promise_url(promise, **filters, cursor=page.next) if page.next else None,
        first_url=promise_url(promise, **filters) if cursor else None,
        level=level, level_delivery=level_delivery,
        crumbs=[("Destinations", PREFIX)], here=f"Promise {promise}", nav="destinations",
    )
