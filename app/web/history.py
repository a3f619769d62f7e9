"""The history across requests: the commits of the branch, newest first, filtered by promise,
destination, actor and action and paged as `GET /v1/history` pages them (the same log,
`gitops.reads.audit`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.http.audit import audit_log
from app.http.state import snapshot
from app.web.access import Page, Viewer
from app.web.render import PREFIX, page_url, render
from gitops.commitmsg import ACTIONS
from gitops.reads.audit import parse_query
from gitops.reads.history import parse_action

router = APIRouter(route_class=Page)


@router.get("/history")
async def history_page(
    request: Request, who: Viewer, promise: str | None = None, destination: str | None = None,
    actor: str | None = None, action: str | None = None, cursor: str | None = None,
) -> Response:
    parse_action(action)  # the pages offer the actions commits name, and no other
    query = parse_query(promise=promise, destination=destination, actor=actor, action=action,
                        cursor=cursor)
    tip, _, _ = await snapshot(request)
    page = await run_in_threadpool(audit_log(request).page, tip, query)
    filters = {"promise": query.promise, "destination": query.destination,
               "actor": query.actor, "action": query.action}
    return await render(
        request, "history.html", who, title="History", tip=tip, commits=page.commits,
        filters=filters, actions=ACTIONS,
        next_url=page_url("/history", **filters, cursor=page.next) if page.next else None,
        first_url=page_url("/history", **filters) if cursor else None,
        crumbs=[("Destinations", PREFIX)], nav="history")
