"""What operators and their probes read without a token: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
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
    **schemas.answers(schemas.Readiness, 200, description="Reads can be served; `writes` says "
                      "whether writes can succeed too"),
    **schemas.answers(schemas.Readiness, 503, description="Reads cannot be served (or, with "
                      "`?writes=true`, writes cannot succeed): `reason` says why"),
    **schemas.refusals(422)})
async def readyz(request: Request, writes: bool = Query(
        False, description="true: answer 503 whenever writes cannot succeed (a monitor that "
                           "wants writers only); by default only when reads cannot be served"),
) -> JSONResponse:
    """Whether the service can serve reads (and the git clones Flux makes), and whether
    writes can succeed too, from what the writer lane last saw (never a fetch): 200 while
    reads can be served, so a service that refuses writes (a corrupt state waiting for a
    repair, a remote that failed at its last contact, a full disk) stays in its load
    balancer; 503 when the lane stopped or the store cannot be read. Needs no token;
    `reason` says what kind of problem keeps writes (or reads) from succeeding, and `detail`
    (hosts, paths) is given only to a caller with a valid token, or when auth is off."""
    writer: Writer = request.app.state.writer
    problem = writer.readiness()
    if problem is None:
        return JSONResponse({"status": "ready", "writes": True})
    serving = problem.reads and not writes
    body: dict[str, str | bool] = {"status": "ready" if serving else "unavailable",
                                   "writes": False, "reason": problem.reason}
    if _may_read(request):  # hosts and paths only for callers who may read the state
        body["detail"] = problem.detail
    return JSONResponse(body, 200 if serving else 503)


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
