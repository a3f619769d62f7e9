"""The HTTP shell: parse, authorise, hand the operation to the writer lane, answer."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.answers import answer, error_body, error_status
from app.auth import Principal, authenticate
from app.config import Config
from app.requestid import RequestIdMiddleware, request_id_of
from gitops import layout, planner
from gitops.bundle import Bundle, make_owner, parse_bundle
from gitops.errors import (
    InvalidBundle,
    LimitExceeded,
    NotFound,
    StatewriterError,
    UnsupportedMediaType,
)
from gitops.flux import flux_manifests
from gitops.history import request_history
from gitops.index import Index, ObjectKey, OwnerRecord
from gitops.planner import Policy
from gitops.store import open_store
from gitops.store.remote import Credentials
from gitops.tarbundle import GZIP_MEDIA_TYPES, read_tar_bundle
from gitops.tree import Tree
from gitops.writer import Operation, Outcome, Writer

log = logging.getLogger("statewriter.http")

BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["promise", "files"],
    "properties": {
        "promise": {"type": "string"},
        "request": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
        },
        "pipeline": {"type": "string"},
        "destinationSelectors": {"type": "object", "additionalProperties": {"type": "string"}},
        "files": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "object"},
        "promiseGeneration": {"type": "integer", "minimum": 0},
    },
}
DESTINATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "path": {"type": "string"},
    },
}


def create_app(config: Config) -> FastAPI:
    policy = Policy(config.protect_from_prune)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        credentials = Credentials(**config.remote_credentials) if config.remote_credentials else None
        store = open_store(config.data, config.remote, config.branch, credentials)
        app.state.writer = Writer(store, config.author)
        yield
        app.state.writer.close()

    app = FastAPI(title="statewriter", version="1", lifespan=lifespan)
    app.add_middleware(RequestIdMiddleware)

    def writer(request: Request) -> Writer:
        result: Writer = request.app.state.writer
        return result

    @app.exception_handler(StatewriterError)
    async def refusal(_: Request, error: StatewriterError) -> JSONResponse:
        return JSONResponse(error_body(error), status_code=error_status(error))

    def principal(request: Request) -> Principal:
        return authenticate(config, request.headers.get("authorization"))

    async def run(request: Request, operation: Operation, dry_run: bool = False) -> JSONResponse:
        future = writer(request).submit(operation, dry_run, request_id_of(request.state))
        outcome: Outcome = await asyncio.wrap_future(future)
        status, body = answer(outcome)
        return JSONResponse(body, status_code=status)

    # -- bundles ------------------------------------------------------------------------

    @app.post(
        "/v1/bundles",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": BUNDLE_SCHEMA},
            "application/gzip": {"schema": {"type": "string", "format": "binary"}},
        }}},
        responses={200: {}, 202: {}, 401: {}, 403: {}, 409: {}, 413: {}, 415: {}, 422: {}},
    )
    async def post_bundle(
        request: Request,
        dryRun: bool = False,
        promise: str | None = Query(None, description="tarball form: the promise"),
        namespace: str | None = Query(None, description="tarball form: the request's namespace"),
        name: str | None = Query(None, description="tarball form: the request's name"),
        pipeline: str | None = Query(None, description="tarball form: the pipeline"),
        promiseGeneration: int | None = Query(
            None, ge=0, description="tarball form: the promise generation that rendered it"
        ),
    ) -> JSONResponse:
        who = principal(request)
        media_type = _media_type(request)
        if media_type in GZIP_MEDIA_TYPES:
            # The identity is known before the body: refuse a foreign promise unread.
            owner = make_owner(promise, namespace, name, pipeline)
            who.require_promise(owner.promise)
            body = await _read_body(request, config.limits.max_bundle_bytes)
            bundle = await run_in_threadpool(
                _bounded_parse, read_tar_bundle, body, owner, config.limits, None, promiseGeneration
            )
        else:
            _require_json(media_type)
            body = await _read_body(request, config.limits.max_bundle_bytes)
            bundle = await run_in_threadpool(_bounded_parse, _parse_json_body, body, config)
        who.require_promise(bundle.promise)
        operation = functools.partial(_apply, bundle=bundle, actor=who.name, policy=policy)
        return await run(request, operation, dryRun)

    # -- requests and promises ------------------------------------------------------------

    @app.get("/v1/promises/{promise}/requests/{namespace}/{name}")
    async def get_request(request: Request, promise: str, namespace: str, name: str) -> Any:
        principal(request)
        tip, index, _ = writer(request).snapshot()
        records = index.request_owners(promise, namespace, name)
        if not records:
            raise NotFound(f"no request {namespace}/{name} of promise {promise}")
        return _owner_state(tip, index, records)

    @app.delete("/v1/promises/{promise}/requests/{namespace}/{name}")
    async def delete_request(
        request: Request, promise: str, namespace: str, name: str, pipeline: str | None = None
    ) -> JSONResponse:
        who = principal(request)
        who.require_promise(promise)
        operation = functools.partial(_delete, promise=promise, namespace=namespace, name=name,
                                      pipeline=pipeline, actor=who.name, policy=policy)
        return await run(request, operation)

    @app.get("/v1/promises/{promise}/requests/{namespace}/{name}/history")
    async def get_history(request: Request, promise: str, namespace: str, name: str) -> Any:
        principal(request)
        store = writer(request).store
        entries = await run_in_threadpool(
            request_history, store.path, config.branch, promise, namespace, name  # type: ignore[attr-defined]
        )
        if not entries:
            raise NotFound(f"no history for request {namespace}/{name} of promise {promise}")
        return {"promise": promise, "request": f"{namespace}/{name}", "commits": entries}

    @app.get("/v1/promises/{promise}")
    async def get_promise(request: Request, promise: str) -> Any:
        principal(request)
        tip, index, _ = writer(request).snapshot()
        records = index.request_owners(promise)
        if not records:
            raise NotFound(f"no promise-level bundles for promise {promise}")
        return _owner_state(tip, index, records)

    @app.delete("/v1/promises/{promise}")
    async def delete_promise(request: Request, promise: str, pipeline: str | None = None) -> Any:
        who = principal(request)
        who.require_promise(promise)
        operation = functools.partial(_delete, promise=promise, namespace="", name="",
                                      pipeline=pipeline, actor=who.name, policy=policy)
        return await run(request, operation)

    # -- destinations -----------------------------------------------------------------------

    @app.put(
        "/v1/destinations/{name}",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": DESTINATION_SCHEMA}}}},
    )
    async def put_destination(request: Request, name: str) -> JSONResponse:
        who = principal(request)
        who.require_destinations()
        body = _json(await _read_body(request, 1 << 20))
        if not isinstance(body, dict):
            raise InvalidBundle("destination must be a JSON object with labels and path")
        operation = functools.partial(_put_destination, name=name, labels=body.get("labels"),
                                      path=body.get("path"), actor=who.name, policy=policy)
        return await run(request, operation)

    @app.get("/v1/destinations")
    async def list_destinations(request: Request) -> Any:
        principal(request)
        _, index, _ = writer(request).snapshot()
        found = sorted(index.destinations.values(), key=lambda d: d.name)
        return {"destinations": [d.as_dict() for d in found]}

    @app.get("/v1/destinations/{name}")
    async def get_destination(request: Request, name: str) -> Any:
        principal(request)
        _, index, _ = writer(request).snapshot()
        return _destination(index, name).as_dict()

    @app.delete("/v1/destinations/{name}")
    async def delete_destination(request: Request, name: str) -> JSONResponse:
        who = principal(request)
        who.require_destinations()
        operation = functools.partial(_delete_destination, name=name, actor=who.name, policy=policy)
        return await run(request, operation)

    @app.get("/v1/destinations/{name}/flux", response_class=PlainTextResponse)
    async def get_flux(
        request: Request, name: str, prefix: str = Query("kratix-workload", pattern=r"^[a-z0-9-]{1,40}$")
    ) -> PlainTextResponse:
        principal(request)
        _, index, _ = writer(request).snapshot()
        destination = _destination(index, name)
        url = config.remote or f"{(config.public_url or _base_url(request)).rstrip('/')}/git/state.git"
        secret = f"{prefix}-credentials" if config.auth_enabled or config.remote else None
        text = flux_manifests(destination, url, config.branch, prefix, secret)
        return PlainTextResponse(text, media_type="application/yaml")

    # -- operations ---------------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        lane = writer(request)
        try:
            await run_in_threadpool(lane.store.refresh)
        except StatewriterError as error:
            return JSONResponse({"status": "unavailable", "reason": error.message}, 503)
        if not lane.alive:
            return JSONResponse({"status": "unavailable", "reason": "writer stopped"}, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if config.remote is None:
        from app.githttp import mount_git

        mount_git(app, config)
    return app




def _apply(index: Index, tree: Tree, *, bundle: Bundle, actor: str, policy: Policy) -> planner.Plan:
    return planner.plan_apply(index, tree, bundle, actor, policy)


def _delete(
    index: Index, tree: Tree, *, promise: str, namespace: str, name: str, pipeline: str | None,
    actor: str, policy: Policy,
) -> planner.Plan:
    return planner.plan_delete(index, tree, promise, namespace, name, pipeline, actor, policy)


def _put_destination(
    index: Index, tree: Tree, *, name: str, labels: object, path: object, actor: str, policy: Policy
) -> planner.Plan:
    return planner.plan_put_destination(index, tree, name, labels, path, actor, policy)


def _delete_destination(
    index: Index, tree: Tree, *, name: str, actor: str, policy: Policy
) -> planner.Plan:
    return planner.plan_delete_destination(index, tree, name, actor, policy)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise LimitExceeded(f"request body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LimitExceeded(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise InvalidBundle(f"body is not valid JSON: {error}") from None


def _parse_json_bundle(body: bytes, config: Config) -> Bundle:
    return parse_bundle(_json(body), config.limits)


def _destination(index: Index, name: str) -> layout.Destination:
    destination = index.destinations.get(name)
    if destination is None:
        raise NotFound(f"no destination {name!r}")
    return destination


def _owner_state(tip: str | None, index: Index, records: list[OwnerRecord]) -> dict[str, Any]:
    first = records[0].owner
    pipelines = []
    for record in records:
        objects = []
        for dest_name, holds in sorted(record.objects.items()):
            destination = index.destinations.get(dest_name)
            for held in holds:
                holders = index.objects.get(ObjectKey(dest_name, held.identity))
                path = (
                    layout.object_path(destination, held.section, held.identity, holders)
                    if destination and holders
                    else None
                )
                objects.append({"object": str(held.identity), "destination": dest_name,
                                "placement": held.section, "path": path,
                                "shared": len(holders or ()) > 1})
        pipelines.append({
            "pipeline": record.owner.pipeline,
            "state": record.state,
            "destinations": list(record.destinations),
            "digest": record.digest,
            "generation": record.generation,
            "status": record.status,
            "reason": record.pending_reason,
            "objects": objects,
        })
    destinations = sorted({d for r in records for d in r.destinations})
    return {
        "promise": first.promise,
        "request": first.request,
        "state": "Scheduled" if all(r.destinations for r in records) else "Pending",
        "destinations": destinations,
        "commit": tip,
        "pipelines": pipelines,
    }


def _base_url(request: Request) -> str:
    return str(request.base_url)


# -- bundle bodies: content types, JSON shape, parse time (POST /v1/bundles) ----------------

# Parsing is bounded by the size, document, node and depth limits; this is a last line: a
# bundle whose parse took longer than this is refused (413) rather than queued for commit.
# It cannot interrupt a parse already running (that would need a subprocess per bundle).
MAX_PARSE_SECONDS = 20.0
_JSON_MEDIA_TYPES = frozenset({"application/json", ""})
_PARSE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _require_json(media_type: str) -> None:
    if media_type in _JSON_MEDIA_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise UnsupportedMediaType(
        f"unsupported Content-Type {media_type!r}: send a JSON bundle as application/json or "
        f"a gzip'd tar of output/ and metadata/ as application/gzip",
        supported=["application/json", *sorted(GZIP_MEDIA_TYPES)],
    )


def _bounded_parse(parse: Any, *args: Any) -> Any:
    """Run a parser; hostile input yields a 4xx, never an unexpected 500."""
    started = time.monotonic()
    try:
        result = parse(*args)
    except StatewriterError:
        raise
    except _PARSE_ERRORS as error:
        # e.g. PyYAML constructors on `!!int x` or 5000-digit integers
        reason = " ".join(str(error).split())[:200]
        raise InvalidBundle(f"bundle cannot be parsed: {type(error).__name__}: {reason}") from None
    elapsed = time.monotonic() - started
    if elapsed > MAX_PARSE_SECONDS:
        raise LimitExceeded(
            f"bundle took {elapsed:.1f}s to parse, over the limit of {MAX_PARSE_SECONDS:.0f}s"
        )
    return result


def _json_shape_problem(value: object, max_depth: int, max_nodes: int) -> str | None:
    """Iteratively, without recursion: why `value` is too deep or too large, or None."""
    stack: list[tuple[object, int]] = [(value, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return f"holds more than {max_nodes} values"
        if depth > max_depth:  # the same bounds as gitops.yamldocs puts on YAML
            return f"nests deeper than {max_depth} levels"
        if not isinstance(item, dict | list):
            continue
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in itertools.islice(children, max_nodes - nodes + 1))
    return None


def _parse_json_body(body: bytes, config: Config) -> Bundle:
    payload = _json(body)
    # `status` is the one field kept as the client sent it: bound it as YAML is bounded
    # (depth, values), so deep or huge structures never reach the index and its dumps.
    if isinstance(payload, dict) and payload.get("status") is not None:
        limits = config.limits
        problem = _json_shape_problem(payload["status"], limits.max_depth, limits.max_nodes)
        if problem:
            raise InvalidBundle(f"status {problem}", field="status")
    return parse_bundle(payload, config.limits)
