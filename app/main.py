"""The HTTP shell: routers, middleware and the error table around one writer lane."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from app import api, audit, ops, ui
from app.answers import error_body, error_status
from app.config import Config
from app.requestid import RequestIdMiddleware
from app.version import VERSION
from gitops.errors import StatewriterError
from gitops.secrets import Sealer
from gitops.writer import Writer


def create_app(config: Config, writer: Writer, sealer: Sealer | None = None) -> FastAPI:
    """The service around `writer` (closed when the app shuts down); `sealer`, the service's
    age identity (`secrets`), encrypts Secrets for destinations that ask for it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        writer.close()

    # /docs and /redoc from assets in the package: they work without internet access
    app = FastAPIOffline(title="statewriter", version=VERSION, lifespan=lifespan)
    app.state.config = config
    app.state.writer = writer
    app.state.sealer = sealer
    app.add_middleware(RequestIdMiddleware)

    @app.exception_handler(StatewriterError)
    async def refusal(_: Request, error: StatewriterError) -> JSONResponse:
        return JSONResponse(error_body(error), status_code=error_status(error))

    app.include_router(ops.router)
    app.include_router(api.router)
    app.include_router(ui.router)
    app.mount("/ui/static", ui.static_files(), name="ui-static")
    app.include_router(audit.router)  # GET /v1/history: the commits across requests
    if config.remote is None:
        from app.githttp import mount_git

        mount_git(app, config)
    return app
