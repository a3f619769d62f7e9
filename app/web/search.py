"""The search by object: which requests (and promise-level bundles) own an object, by its
kind and name (and namespace), on every destination. A shared dependency has several owners:
each is listed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.http.state import snapshot
from app.web.access import Page, Viewer
from app.web.render import PREFIX, render
from gitops.reads.search import MAX_OBJECTS, find_objects, parse_search
from gitops.reads.summaries import consistent

router = APIRouter(route_class=Page)


@router.get("/search")
async def search_page(request: Request, who: Viewer, kind: str | None = None,
                      name: str | None = None, namespace: str | None = None) -> Response:
    query = parse_search(kind, name, namespace)
    tip, index, _ = await snapshot(request)
    result = None
    if query is not None:
        result = await run_in_threadpool(consistent, lambda: find_objects(index, query))
    return await render(
        request, "search.html", who, title="Find an object", tip=tip, query=query,
        terms={"kind": (kind or "").strip(), "name": (name or "").strip(),
               "namespace": (namespace or "").strip()},
        result=result, max_objects=MAX_OBJECTS, crumbs=[("Destinations", PREFIX)],
        nav="search")
