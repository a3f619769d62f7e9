"""What operators and their probes read without a token: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from app.http import metrics as prometheus
from app.http import schemas
from app.http.auth import authenticate
from app.version import VERSION
from gitops.errors import Unauthorized
from gitops.writer import Writer

router = APIRouter()


@router.get("/healthz", summary="Liveness", tags=["operations"], response_model=None,
            responses=schemas.answers(schemas.Health, 200))
async def healthz() -> dict[str, str]:
    """The process answers (with its version). Needs no token."""
    return {"status": "ok", "version": VERSION}


@router.get("/readyz", summary="Readiness", tags=["operations"], responses={
    **schemas.answers(schemas.Readiness, 200, description="Writes can succeed"),
    **schemas.answers(schemas.Readiness, 503, description="Not ready: `reason` says why")})
async def readyz(request: Request) -> JSONResponse:
    """Whether writes can succeed now, from what the writer lane last saw (never a fetch):
    the lane runs, the store is readable and writable, the remote answered at its last
    contact. Needs no token; `reason` says what kind of problem, and `detail` (hosts, paths)
    is given only to a caller with a valid token, or when auth is off."""
    writer: Writer = request.app.state.writer
    problem = writer.readiness()
    if problem is None:
        return JSONResponse({"status": "ready"})
    body = {"status": "unavailable", "reason": problem.reason}
    if _may_read(request):  # hosts and paths only for callers who may read the state
        body["detail"] = problem.detail
    return JSONResponse(body, 503)


def _may_read(request: Request) -> bool:
    try:
        authenticate(request.app.state.config, request.headers.get("authorization"))
    except Unauthorized:
        return False
    return True


@router.get("/metrics", summary="Prometheus metrics", tags=["operations"],
            response_class=schemas.MetricsResponse,
            description="The Prometheus text exposition: bundles by promise and outcome, "
                        "latencies, pushes, queue depth, objects per destination. Needs no "
                        "token.",
            responses={200: {"description": "Prometheus text format"}})
async def metrics() -> Response:
    # gauges read from the index (per destination): off the event loop
    return Response(await run_in_threadpool(prometheus.exposition),
                    media_type=prometheus.CONTENT_TYPE)
