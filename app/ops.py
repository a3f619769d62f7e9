"""What operators and their probes read without a token: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.version import VERSION
from gitops.writer import Writer

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": VERSION}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Whether writes can succeed now, from what the writer lane last saw (never a fetch)."""
    writer: Writer = request.app.state.writer
    problem = writer.readiness()
    if problem is not None:
        return JSONResponse({"status": "unavailable", "reason": problem}, 503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
