"""The service as one app around one writer lane: the HTTP API's routers (`app.http`) and
the web pages (`app.web`), the middleware every request passes, and the handlers that
answer a refusal with the one error table (`app.http.answers`). `statewriter serve` runs it;
the tests assemble it in their own process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.config import Config
from app.http import api, audit, metrics, ops, schemas
from app.http import delivery as delivery_routes
from app.http.access import RequestLog
from app.http.answers import error_body, error_status, routing_refusal
from app.http.metrics import service_metrics
from app.http.models import invalid_parameters
from app.http.refused import RefusedBundles, note_refusal
from app.http.requestid import RequestIdMiddleware
from app.version import VERSION
from app.web import pages
from gitops.delivery.book import DELIVERY_BRANCH, DeliveryBook, Positions
from gitops.errors import StatewriterError
from gitops.notify import Notifier
from gitops.secrets import Sealer
from gitops.store import open_store
from gitops.store.signing import Signer
from gitops.writer import Writer


def open_writer(config: Config, signer: Signer | None = None) -> Writer:
    """The writer lane `statewriter serve` runs: on the store the config names (its commits
    signed by `signer`), with the service's metrics and a notifier that POSTs destinations'
    notify URLs after each publish, off the lane. The store is closed if the lane cannot
    start."""
    store = open_store(config.data, config.remote, config.branch, config.credentials,
                       timeout=config.push.timeout, github_app=config.github_app, signer=signer)
    notifier: Notifier | None = None
    try:
        notifier = Notifier(store.tree, config.notify.hmac_token_file,
                            user_agent=f"statewriter/{VERSION}", observe=metrics.notified)
        return Writer(store, config.author, min_interval=config.push.min_interval,
                      listeners=[notifier], observer=metrics.LANE)
    except BaseException:
        if notifier is not None:
            notifier.close(timeout=0)
        store.close()
        raise


def create_app(config: Config, writer: Writer, sealer: Sealer | None = None) -> FastAPI:
    """The service around `writer` (closed when the app shuts down); `sealer`, the service's
    age identity (`secrets`), encrypts Secrets for destinations that ask for it."""

    delivery = open_delivery_book(config, writer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if delivery is not None:
            delivery.close()
        writer.close()

    # /docs and /redoc from assets in the package: they work without internet access
    # FastAPI's own OpenTelemetry instrumentation is off: the service's metrics and request
    # lines are its own (app.http.metrics, app.http.access), and asking whether a tracer is configured
    # was a measurable part of every request.
    app = FastAPIOffline(title="statewriter", version=VERSION, lifespan=lifespan,
                         generate_unique_id_function=schemas.operation_id,
                         telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.config = config
    app.state.writer = writer
    app.state.sealer = sealer
    app.state.delivery = delivery
    metrics.DELIVERIES.watch(writer, delivery)
    # one log line per request; the bundle counts of /metrics and the refused bundles of
    # /ui/refused come from the same facts
    app.state.refused_bundles = RefusedBundles()
    app.add_middleware(RequestLog, observers=[service_metrics(config, writer),
                                              app.state.refused_bundles])
    app.add_middleware(RequestIdMiddleware)  # outermost: the log line has the id

    @app.exception_handler(StatewriterError)
    async def refusal(request: Request, error: StatewriterError) -> JSONResponse:
        note_refusal(request, error)
        return JSONResponse(error_body(error), status_code=error_status(error))

    @app.exception_handler(StarletteHTTPException)
    async def unrouted(request: Request, error: StarletteHTTPException) -> Response:
        # an address no route serves (404), or not for that method (405): every refusal's
        # body, not Starlette's {"detail": "Not Found"}
        headers = dict(error.headers or {})
        if error.status_code == 405:  # Starlette names the first route's methods only
            headers["Allow"] = ", ".join(allowed_methods(app, request)) or headers.get("Allow", "")
        refused = routing_refusal(error.status_code, request.method, request.url.path,
                                  headers.get("Allow"))
        if refused is None:
            return await http_exception_handler(request, error)
        note_refusal(request, refused)
        if error.status_code == 404 and pages.is_page_address(request.url.path):
            return await pages.unrouted_page(request)  # a person's browser: HTML, with the nav
        return JSONResponse(error_body(refused), status_code=error.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(request: Request, error: RequestValidationError) -> JSONResponse:
        # the body of every refusal (docs/reference.md section 6), not FastAPI's {"detail": [...]}
        refused = invalid_parameters(error.errors())
        note_refusal(request, refused)
        return JSONResponse(error_body(refused), status_code=422)

    app.include_router(ops.router)
    app.include_router(delivery_routes.events_router)
    app.include_router(delivery_routes.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/ui/static", pages.static_files(), name="ui-static")
    app.include_router(audit.router)  # GET /v1/history: the commits across requests
    if config.remote is None:
        from app.http.githttp import mount_git
        from gitops.store.http_backend import http_backend

        mount_git(app, config, http_backend(writer.store))
    schemas.install(app)  # /openapi.json, /docs, /redoc (offline: FastAPIOffline)
    return app


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods the app's routes take at the request's path."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(request.url.path):
            methods |= route.methods
    return sorted(methods)


def open_delivery_book(config: Config, writer: Writer) -> DeliveryBook | None:
    """The book of what Flux reported (docs/reference.md section 12), on its own branch of the state
    store, when `delivery` is configured."""
    if config.delivery is None:
        return None
    store = writer.store
    positions = Positions(store, store.tip)
    return DeliveryBook(store.for_branch(DELIVERY_BRANCH), positions, config.author,
                        max_staleness=writer.max_staleness, observe=metrics.delivered)
