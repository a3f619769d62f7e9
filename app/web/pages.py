"""Read-only web pages at /ui (docs/reference.md section 10): server-rendered with Jinja2, no
JavaScript, no asset from elsewhere, the same tokens as the API.

This module holds the pages of the state as it is (destinations, a request with its
delivery, refused bundles, one commit) and gathers the others into `router`: signing in
(`app.web.login`), a promise with its requests (`app.web.promises`), the search by object
(`app.web.search`) and the history across requests (`app.web.history`). Who may look, and
how a refusal becomes an error page, is `app.web.access`; how a page is rendered,
`app.web.render`. The pages read the same fresh snapshot as the /v1 GETs, and the same read
models (`gitops.reads`); commits are read with git, the store's one way, bounded in time
and size.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import State

from app.http.delivery import deliveries
from app.http.refused import recent
from app.http.state import snapshot
from app.web import history, login, promises, search
from app.web.access import Page, Viewer
from app.web.access import is_page_address as is_page_address  # (app.main answers unrouted
from app.web.access import unrouted_page as unrouted_page  # addresses under /ui with them)
from app.web.render import PREFIX, destination_url, promise_url, render, request_url
from gitops.commitmsg import ACTIONS
from gitops.errors import NotFound
from gitops.quoting import quoted
from gitops.reads.commits import MAX_DIFF_BYTES, MAX_DIFF_FILES, MAX_DIFF_LINES, MAX_STAT_FILES, commit_view
from gitops.reads.history import parse_action, request_history
from gitops.reads.requests import RequestState, request_state, waiting_for
from gitops.reads.summaries import Summaries, consistent, dependency_rows

STATIC = Path(__file__).resolve().parent / "static"
REQUESTS_PER_PAGE = 200
MAX_HISTORY = 200

router = APIRouter(prefix=PREFIX, route_class=Page, include_in_schema=False)


def static_files() -> StaticFiles:
    """The stylesheet, mounted at /ui/static (no token needed: the login page uses it)."""
    return StaticFiles(directory=STATIC)


def _summaries(state: State) -> Summaries:
    found = getattr(state, "ui_summaries", None)
    if not isinstance(found, Summaries):
        found = state.ui_summaries = Summaries()
    return found


_SHA = re.compile(r"[0-9a-f]{4,40}")


@router.get("")
async def home(request: Request, who: Viewer) -> Response:
    tip, index, _ = await snapshot(request)
    summary = await run_in_threadpool(_summaries(request.app.state).get, tip, index)
    return await render(request, "index.html", who, title="Destinations", tip=tip,
                        summary=summary, refused=len(recent(request.app.state)),
                        nav="destinations")


@router.get("/destinations/{name}")
async def destination_page(
    request: Request, who: Viewer, name: str,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    tip, index, _ = await snapshot(request)
    summary = await run_in_threadpool(_summaries(request.app.state).get, tip, index)
    view = summary.destinations.get(name)
    if view is None:
        raise NotFound(f"There is no destination {quoted(name)}.")
    dependencies = await run_in_threadpool(consistent, lambda: dependency_rows(index, view))
    pages = max(1, -(-len(view.requests) // REQUESTS_PER_PAGE))
    page = min(page, pages)
    start = (page - 1) * REQUESTS_PER_PAGE
    return await render(
        request, "destination.html", who, title=f"Destination {name}", tip=tip, view=view,
        dependencies=dependencies, requests=view.requests[start:start + REQUESTS_PER_PAGE],
        page=page, pages=pages, first=start + 1,
        crumbs=[("Destinations", PREFIX)], here=name, nav="destinations",
    )


@router.get("/promises/{promise}/requests/{namespace}/{name}")
async def request_page(request: Request, who: Viewer, promise: str, namespace: str,
                       name: str, action: str | None = None) -> Response:
    """The request's pipelines and objects, its delivery on each destination (or the
    selectors it waits for), recent refusals, and its history (filtered by `action`)."""
    chosen = parse_action(action)
    tip, index, tree = await snapshot(request)
    records = index.request_owners(promise, namespace, name)
    state = request_state(tip, index, records) if records else None
    delivery = None
    if records:
        (delivery,) = await run_in_threadpool(deliveries, request, index, tree, tip, [records])
    history = await run_in_threadpool(request_history, request.app.state.writer.store, tip,
                                      promise, namespace, name)
    refusals = [r for r in recent(request.app.state).newest_first()
                if r.promise == promise and r.request == f"{namespace}/{name}"]
    if state is None and not history and not refusals:
        raise NotFound(f"Request {namespace}/{name} of promise {promise} is not stored, "
                       "and no commit names it.")
    shown = [entry for entry in history if chosen in (None, entry.action)]
    return await render(
        request, "request.html", who, title=f"{namespace}/{name}", tip=tip, promise=promise,
        namespace=namespace, name=name, state=state, delivery=delivery,
        waiting=waiting_for(records), history=shown[:MAX_HISTORY],
        more_history=max(0, len(shown) - MAX_HISTORY), all_history=len(history),
        action=chosen, actions=ACTIONS, refusals=refusals,
        crumbs=request_crumbs(promise, state), nav="destinations",
    )


def request_crumbs(promise: str, state: RequestState | None) -> list[tuple[str, str]]:
    """Destinations, the one destination a request is on (when it is on one), its promise."""
    crumbs = [("Destinations", PREFIX)]
    if state is not None and len(state.destinations) == 1:
        crumbs.append((state.destinations[0], destination_url(state.destinations[0])))
    crumbs.append((f"Promise {promise}", promise_url(promise)))
    return crumbs


@router.get("/refused")
async def refused_page(request: Request, who: Viewer) -> Response:
    found = recent(request.app.state)
    return await render(request, "refused.html", who, title="Refused bundles",
                        refused=found.newest_first(), keep=found.keep,
                        crumbs=[("Destinations", PREFIX)], nav="refused")


@router.get("/commits/{sha}")
async def commit_page(request: Request, who: Viewer, sha: str) -> Response:
    if not _SHA.fullmatch(sha):
        raise NotFound(f"{quoted(sha)} is not a commit id.")
    tip, _, _ = await snapshot(request)
    if tip is None:
        raise NotFound("The state store has no commits yet.")
    commit = await run_in_threadpool(commit_view, request.app.state.writer.store, tip, sha)
    crumbs = [("Destinations", PREFIX)]
    crumbs.extend((f"{ns}/{name}", request_url(promise, ns, name))
                  for promise, ns, name in commit.requests[:1])
    return await render(request, "commit.html", who, title=f"Commit {commit.sha[:12]}",
                        tip=tip, commit=commit, crumbs=crumbs, limits={
                            "files": MAX_DIFF_FILES, "lines": MAX_DIFF_LINES,
                            "stat": MAX_STAT_FILES, "kib": MAX_DIFF_BYTES // 1024},
                        nav="destinations")


for _pages in (login.router, promises.router, search.router, history.router):
    router.include_router(_pages)
