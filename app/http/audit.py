"""`GET /v1/history` (docs/reference.md section 6): the commits across requests, newest first,
filtered by their trailers (section 7) and paged with an opaque cursor.

Served from the tip the lane knows, as fresh as every read (`app.http.state.snapshot`), by one
`gitops.audit.AuditLog` per service: built with one `git log` at the first call, extended
with `git log <old>..<new>` when the tip has moved, so no call reads the whole history
again. Needs a valid token when auth is on, like every /v1 route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.http import schemas
from app.http.auth import authenticated
from app.http.state import snapshot
from app.jsonable import jsonable
from gitops.commitmsg import ACTION_NAMES
from gitops.reads.audit import DEFAULT_LIMIT, MAX_LIMIT, AuditLog, parse_query

router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])

_DESCRIPTION = f"""Every commit of the state store's branch, newest first, as each names
itself in its trailers: `{{sha, time, actor, action, reverts, summary, promises, requests,
pipelines, destinations, trailers, files}}`, where `reverts` is the commit a revert commit
reverts (`statewriter revert`), `trailers` the clients' own (e.g.
`{{"Change-Request": ["CHG-1042"]}}`) and `files` the files added, changed and removed
(the service's `.statewriter/` records left out).

The filters combine with AND; `promise` and `destination` match a commit any of whose
trailer groups names them. `since` and `until` are RFC 3339 date-times with an offset and
bound the commit time, both included. At most `limit` commits (1-{MAX_LIMIT}, default
{DEFAULT_LIMIT}) come in one answer; when more match, `next` is the cursor of the next page:
send it as `cursor` with the same filters. A cursor names the last commit of its page, so
commits made meanwhile never shift or repeat the pages that follow. A parameter that cannot
be used is a 422 naming it."""


def audit_log(request: Request) -> AuditLog:
    """The service's one log (made at its first use; the event loop makes it, no race)."""
    state = request.app.state
    log: AuditLog | None = getattr(state, "audit_log", None)
    if log is None:
        log = AuditLog(request.app.state.writer.store)
        state.audit_log = log
    return log


@router.get("/history", summary="The commits across requests", description=_DESCRIPTION,
            tags=["history"], responses={**schemas.answers(schemas.CommitPage, 200),
                                         **schemas.refusals(401, 422, 503)})
async def get_commits(
    request: Request,
    promise: str | None = Query(None, description="commits naming this promise"),
    destination: str | None = Query(None, description="commits naming this destination"),
    actor: str | None = Query(None, description="commits made for this client (token name)"),
    action: str | None = Query(None, description=ACTION_NAMES),
    since: str | None = Query(None, description="RFC 3339, e.g. 2024-05-01T00:00:00Z"),
    until: str | None = Query(None, description="RFC 3339, e.g. 2024-05-31T23:59:59+02:00"),
    limit: str | None = Query(None, description=f"1-{MAX_LIMIT}, default {DEFAULT_LIMIT}"),
    cursor: str | None = Query(None, description="the `next` of the previous page"),
) -> Any:
    query = parse_query(promise=promise, destination=destination, actor=actor, action=action,
                        since=since, until=until, limit=limit, cursor=cursor)
    tip, _, _ = await snapshot(request)
    page = await run_in_threadpool(audit_log(request).page, tip, query)
    return {"commits": jsonable(page.commits), "next": page.next}
