"""The /v1 API (docs/reference.md section 6). Every route here needs a valid token when auth is on:
the router's own dependency checks it, so no route can forget to."""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.http import schemas
from app.http.access import note
from app.http.answers import answer, warning_headers
from app.http.auth import Principal, authenticated
from app.http.bodies import (
    bounded,
    is_gzip,
    json_bundle,
    media_type,
    model,
    read_body,
    require_json,
    strict_json,
)
from app.http.delivery import deliveries
from app.http.models import DestinationBody, RollbackBody, invalid_parameters
from app.http.refused import note_refusal
from app.http.requestid import request_id_of
from app.http.state import config_of, snapshot, writer_of
from app.jsonable import jsonable
from gitops import planner
from gitops.bundle import Bundle, trailers_from_pairs
from gitops.delivery.events import provider_token
from gitops.destination import Destination
from gitops.errors import InvalidBundle, InvalidDestination, InvalidQuery, NotFound
from gitops.flux import flux_manifests
from gitops.index import Index
from gitops.owner import DEFAULT_PIPELINE, Owner, make_owner
from gitops.planner import Policy
from gitops.planner.check import check_bundle
from gitops.planner.destinations import Cluster
from gitops.quoting import quoted
from gitops.reads.commits import branch_commit
from gitops.reads.history import request_history
from gitops.reads.requests import request_state
from gitops.tarbundle import read_tar_bundle
from gitops.writer import Failed, Operation, Refused

Caller = Annotated[Principal, Depends(authenticated)]
router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])

BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["promise", "files"],
    "additionalProperties": False,
    "properties": {
        "promise": {"type": "string"},
        "request": {
            "type": "object",
            "required": ["namespace", "name"],
            "additionalProperties": False,
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}},
        },
        "pipeline": {"type": "string"},
        "destinationSelectors": {"type": "object", "additionalProperties": {"type": "string"}},
        "files": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "object"},
        "promiseGeneration": {"type": "integer", "minimum": 0},
        "trailers": {"type": "object", "additionalProperties": {"type": "string"},
                     "maxProperties": 16},
    },
}
ROLLBACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["commit"],
    "additionalProperties": False,
    "properties": {
        "commit": {"type": "string", "pattern": "^[0-9a-fA-F]{4,64}$",
                   "description": "a commit of the branch's history: its id, or a prefix of "
                                  "at least 4 hex digits naming one commit",
                   "examples": ["3f2a9c1e0b7d"]},
    },
}
DESTINATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "path": {"type": "string"},
        "notify": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2048,
                                   "description": "a Flux Receiver's URL: http(s), a host, "
                                                  "no credentials, no query"}},
        },
        "encryption": {
            "type": "object",
            "required": ["age"],
            "additionalProperties": False,
            "properties": {"age": {"type": "array", "maxItems": 32,
                                   "items": {"type": "string", "pattern": "^age1[0-9a-z]+$"},
                                   "description": "age recipients its Secrets are encrypted "
                                                  "for (SOPS), with the service's own"}},
        },
        "kubernetesVersion": {"type": "string", "examples": ["1.33"],
                              "description": "the Kubernetes version objects are validated "
                                             "against (default: the newest supported)"},
        "apis": {"type": "array", "maxItems": 256, "items": {"type": "string"},
                 "description": "API groups (cert-manager.io), or group/version/Kind, its "
                                "cluster serves without statewriter"},
        "namespaces": {"type": "array", "maxItems": 10000, "items": {"type": "string"},
                       "description": "namespaces its cluster has without statewriter "
                                      "(absent: not declared; objects in a namespace nothing "
                                      "creates are then accepted with a warning)"},
    },
}


def _policy(request: Request) -> Policy:
    return Policy(config_of(request).protect_from_prune, request.app.state.sealer)


async def _run(request: Request, operation: Operation, dry_run: bool = False) -> JSONResponse:
    future = writer_of(request).submit(operation, dry_run, request_id_of(request.state))
    outcome = await asyncio.wrap_future(future)
    status, body = answer(outcome)
    note(request, commit=body.get("commit"), changed=body.get("changed"))
    if isinstance(outcome, Refused):
        note_refusal(request, outcome.error)
    elif isinstance(outcome, Failed):
        note(request, error=body["error"], reason=body["message"])
    response = JSONResponse(body, status_code=status)
    for name, value in warning_headers(body):
        response.headers.append(name, value)
    return response


# -- bundles ------------------------------------------------------------------------------


class BundleQuery(BaseModel):
    """The query of POST /v1/bundles. Read by hand (`bundle_query`) rather than declared as
    FastAPI parameters: FastAPI's handling of seven declared parameters cost more than
    reading the JSON body they almost never come with."""

    model_config = ConfigDict(extra="ignore")

    dryRun: bool = Field(False, description="answer what would change, without committing")
    promise: str | None = Field(None, description="tarball form: the promise")
    namespace: str | None = Field(None, description="tarball form: the request's namespace")
    name: str | None = Field(None, description="tarball form: the request's name")
    pipeline: str | None = Field(None, description="tarball form: the pipeline")
    promiseGeneration: int | None = Field(
        None, ge=0, description="tarball form: the promise generation that rendered it")
    trailer: list[str] = Field(
        [], description="tarball form: a commit trailer of the bundle's own, KEY=VALUE "
        "(repeatable; the JSON form's `trailers`)")


NO_QUERY = BundleQuery.model_validate({})


def bundle_query(request: Request) -> BundleQuery:
    """The query as FastAPI would have read it: a parameter given twice counts once (but
    `trailer`), and a refusal names the parameter (`app.http.models.invalid_parameters`)."""
    query = request.query_params
    if not query:
        return NO_QUERY
    given: dict[str, Any] = {key: query[key] for key in BundleQuery.model_fields
                             if key in query and key != "trailer"}
    if "trailer" in query:
        given["trailer"] = query.getlist("trailer")
    try:
        return BundleQuery.model_validate(given)
    except ValidationError as error:
        raise invalid_parameters([{**e, "loc": ("query", *e["loc"])} for e in error.errors()]) \
            from None


def _query_parameters(query: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI parameters of a query model, as FastAPI writes declared ones."""
    properties = query.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "required": False,
             "description": schema.get("description", ""), "schema": schema}
            for name, schema in properties.items()]


@router.post(
    "/bundles",
    summary="Submit a bundle", tags=["bundles"],
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": BUNDLE_SCHEMA, "examples": schemas.BUNDLE_EXAMPLES},
        "application/gzip": {"schema": {"type": "string", "format": "binary"}},
    }}, "parameters": _query_parameters(BundleQuery)},
    responses={
        **schemas.answers(schemas.BundleAnswer, 200, description="Scheduled: written or unchanged"),
        **schemas.answers(schemas.BundleAnswer, 202,
                          description="Pending: no destination matches its selectors yet"),
        **schemas.refusals(401, 403, 409, 413, 415, 422, 500, 503),
    },
)
async def post_bundle(request: Request, who: Caller) -> JSONResponse:
    """A pipeline's output: JSON whose `files` map file names to YAML, or a gzip'd tar of its
    `output/` and `metadata/` folders (`Content-Type: application/gzip`, the identity in the
    query). statewriter places it on the destinations its selectors match, stores the objects
    several owners output (CRDs, operators, namespaces) once under `dependencies/`, and
    commits: 200 when placed (written, or unchanged: re-posting changes nothing), 202 while no
    destination matches (it is placed when one comes). `?dryRun=true` answers what would
    change without committing. Needs a token whose `promises` include the bundle's."""
    query = bundle_query(request)
    note(request, dry_run=query.dryRun)
    bundle = await _read_bundle(request, who, query)
    operation = functools.partial(planner.plan_apply, bundle=bundle, actor=who.name,
                                  policy=_policy(request))
    return await _run(request, operation, query.dryRun)


def _tar_owner(query: BundleQuery) -> Owner:
    """Who a gzip'd tar bundle's query says wrote it."""
    if query.promise is None:
        raise InvalidBundle("a gzip'd tar bundle names its promise in the query: ?promise=...",
                            field="promise")
    if (query.namespace is None) != (query.name is None):
        given, missing = ("namespace", "name") if query.name is None else ("name", "namespace")
        raise InvalidBundle(f"the query gives the request's {given} but not its {missing}: give "
                            "both, or neither for the promise's own output", field=missing)
    return make_owner(query.promise, query.namespace, query.name, query.pipeline)


async def _read_bundle(request: Request, who: Principal, query: BundleQuery) -> Bundle:
    """The bundle a request carries, JSON or a gzip'd tar; Forbidden before its body is read
    when the token may not write its promise."""
    config = config_of(request)
    media = media_type(request)
    if is_gzip(media):
        # The identity is known before the body: refuse a foreign promise unread.
        note(request, promise=query.promise, pipeline=query.pipeline or DEFAULT_PIPELINE,
             request=f"{query.namespace}/{query.name}" if query.namespace or query.name else None)
        owner = _tar_owner(query)
        who.require_promise(owner.promise)
        body = await read_body(request, config.limits.max_bundle_bytes)
        trailers = trailers_from_pairs(query.trailer)
        bundle = await run_in_threadpool(bounded, read_tar_bundle, body, owner, config.limits,
                                         None, query.promiseGeneration, trailers)
    else:
        require_json(media)
        if query.trailer:
            raise InvalidBundle("the JSON form carries its trailers in `trailers`, not in "
                                "`trailer` query parameters", field="trailer")
        body = await read_body(request, config.limits.max_bundle_bytes)
        parse = functools.partial(bounded, json_bundle, body, config,
                                  functools.partial(_note_bundle, request))
        bundle = parse() if parses_quickly(body) else await run_in_threadpool(parse)
    who.require_promise(bundle.promise)
    return bundle


# A small body is parsed on the event loop: handing it to a worker thread cost about as
# much CPU as parsing it (measured). Its cost is bounded by its size only without YAML
# anchors (an alias may be expanded up to the node limit), and a `\u` escape could hide
# one, so those go to a thread, as does every larger body (seconds, at maxBundleBytes).
INLINE_PARSE_BYTES = 32 * 1024


def parses_quickly(body: bytes) -> bool:
    return len(body) <= INLINE_PARSE_BYTES and b"&" not in body and b"\\u" not in body


def _note_bundle(request: Request, payload: dict[str, Any]) -> None:
    """Note a JSON bundle's identity as sent (before it is checked: a refusal names it)."""
    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    given = payload.get("request")
    namespace, name = (text(given.get("namespace")), text(given.get("name"))) \
        if isinstance(given, dict) else (None, None)
    promise = text(payload.get("promise"))
    note(request, promise=promise,
         pipeline=text(payload.get("pipeline")) or (DEFAULT_PIPELINE if promise else None),
         request=f"{namespace or ''}/{name or ''}" if namespace or name else None)


# -- requests and promises ------------------------------------------------------------------


@router.get("/promises/{promise}/requests/{namespace}/{name}", summary="A request's state",
            tags=["requests"],
            responses={**schemas.answers(schemas.RequestState, 200),
                       **schemas.refusals(401, 404, 503)})
async def get_request(request: Request, promise: str, namespace: str, name: str) -> Any:
    """Its pipelines, the destinations they are placed on (or why they wait), each object
    with its path and whether other owners output it too, the status it was sent with, the
    branch's commit the answer was read from, and its delivery: whether Flux applied its
    latest commit on each destination."""
    tip, index, tree = await snapshot(request)
    records = index.request_owners(promise, namespace, name)
    if not records:
        raise NotFound(f"no request {namespace}/{name} of promise {promise}")
    (delivery,) = await run_in_threadpool(deliveries, request, index, tree, tip, [records])
    return {**jsonable(request_state(tip, index, records)), "delivery": jsonable(delivery)}


@router.delete("/promises/{promise}/requests/{namespace}/{name}", summary="Delete a request",
               tags=["requests"],
               responses={**schemas.answers(schemas.Deletion, 200),
                          **schemas.refusals(401, 403, 404, 500, 503)})
async def delete_request(
    request: Request, who: Caller, promise: str, namespace: str, name: str,
    pipeline: str | None = Query(None, description="only this pipeline's bundle"),
) -> JSONResponse:
    """Remove everything the request owns, in one commit; an object another owner still
    outputs stays. Needs a token whose `promises` include the promise."""
    who.require_promise(promise)
    operation = functools.partial(planner.plan_delete, promise=promise, namespace=namespace,
                                  name=name, pipeline=pipeline, actor=who.name,
                                  policy=_policy(request))
    return await _run(request, operation)


@router.post(
    "/promises/{promise}/requests/{namespace}/{name}/rollback",
    summary="Roll a request back to a commit", tags=["requests"],
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": ROLLBACK_SCHEMA}}}},
    responses={
        **schemas.answers(schemas.RollbackAnswer, 200,
                          description="Written as it stood then, or unchanged (it already was)"),
        **schemas.answers(schemas.RollbackAnswer, 202,
                          description="Pending: no destination matches its selectors (as they "
                                      "were then)"),
        **schemas.refusals(401, 403, 404, 409, 413, 422, 500, 503, why={
            404: "The request had no output at that commit.",
            422: "`commit` is not a commit of the branch's history (malformed, unknown, a "
                 "prefix of several, not an ancestor of the tip), or the output refused as a "
                 "post of it would be (InvalidObject, ...).",
        }),
    },
)
async def rollback_request(
    request: Request, who: Caller, promise: str, namespace: str, name: str,
    dryRun: bool = Query(False, description="answer what would change, without committing"),
) -> JSONResponse:
    """Write the request's output, every pipeline of it, as it stood at `commit` (an id, or a
    prefix of one, of the branch's history), in one commit (`Statewriter-Action: rollback`,
    `Statewriter-Rollback-To`). Each pipeline goes through the checks its bundle would pass
    if posted again now (placement, conflicts 409, validation 422); pipelines it had then and
    not now come back, those it has now and did not have then are removed. A request placed
    now stays at its destination. Rolling back to what it already is changes nothing.
    Needs a token whose `promises` include the promise."""
    who.require_promise(promise)
    note(request, dry_run=dryRun)
    body = model(RollbackBody, strict_json(await read_body(request, 1 << 16)), "rollback")
    tip, _, _ = await snapshot(request)
    store = writer_of(request).store
    commit = await run_in_threadpool(branch_commit, store, tip, body.commit)
    then = await run_in_threadpool(store.tree, commit)
    operation = functools.partial(planner.plan_rollback, old=then, promise=promise,
                                  namespace=namespace, name=name, commit=commit, actor=who.name,
                                  policy=_policy(request))
    return await _run(request, operation, dryRun)


@router.get("/promises/{promise}/requests/{namespace}/{name}/history",
            summary="A request's commits", tags=["requests"], responses={
                **schemas.answers(schemas.RequestHistory, 200), **schemas.refusals(401, 404, 503)})
async def get_history(request: Request, promise: str, namespace: str, name: str) -> Any:
    """The commits that changed this request, and the reverts of those, newest first: sha,
    time, actor, action (a revert: `reverts`, the commit it reverts), pipelines,
    destinations, subject line and the files added, changed and removed."""
    tip, _, _ = await snapshot(request)  # a replica's cache may hold no branch of its own
    entries = await run_in_threadpool(
        request_history, writer_of(request).store, tip, promise, namespace, name)
    if not entries:
        raise NotFound(f"no history for request {namespace}/{name} of promise {promise}")
    return {"promise": promise, "request": f"{namespace}/{name}", "commits": jsonable(entries)}


@router.get("/promises/{promise}", summary="A promise's own bundles", tags=["requests"],
            responses={**schemas.answers(schemas.RequestState, 200),
                       **schemas.refusals(401, 404, 503)})
async def get_promise(request: Request, promise: str) -> Any:
    """The state of the promise-level bundles (the promise's own dependencies, sent without
    a request): destinations, pipelines, objects, as for a request."""
    tip, index, _ = await snapshot(request)
    records = index.request_owners(promise)
    if not records:
        raise NotFound(f"no promise-level bundles for promise {promise}")
    return jsonable(request_state(tip, index, records))


@router.delete("/promises/{promise}", summary="Delete a promise's own bundles", tags=["requests"],
               responses={**schemas.answers(schemas.Deletion, 200),
                          **schemas.refusals(401, 403, 404, 500, 503)})
async def delete_promise(
    request: Request, who: Caller, promise: str,
    pipeline: str | None = Query(None, description="only this pipeline's bundle"),
) -> JSONResponse:
    """Remove the promise-level dependencies; an object a request still outputs stays.
    Needs a token whose `promises` include the promise."""
    who.require_promise(promise)
    operation = functools.partial(planner.plan_delete, promise=promise, namespace="", name="",
                                  pipeline=pipeline, actor=who.name, policy=_policy(request))
    return await _run(request, operation)


# -- destinations ---------------------------------------------------------------------------


@router.put(
    "/destinations/{name}",
    summary="Register or update a destination", tags=["destinations"],
    responses={**schemas.answers(schemas.DestinationSaved, 200),
               **schemas.refusals(401, 403, 409, 413, 422, 500, 503, why={
                   409: "Its path overlaps another destination's."})},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": DESTINATION_SCHEMA}}}},
)
async def put_destination(request: Request, who: Caller, name: str) -> JSONResponse:
    """A worker cluster that bundles can be placed on: `labels` for the bundles'
    `destinationSelectors`, `path` its folder in the repository (by default its name),
    `notify` a Flux Receiver URL to call after each push that changed it, `encryption` the
    age recipients its Secrets are encrypted for, `kubernetesVersion`, `apis` and `namespaces`
    what its cluster serves and holds (objects are validated against them), `isolation`
    (`destination` or `namespace`: one Flux Kustomization per namespace of its resources) and
    `flux` the prefix and namespace of its Flux objects (these two only while it holds no
    requests). Waiting bundles it matches are placed. Needs a token with
    `destinations: true`."""
    who.require_destinations()
    raw = strict_json(await read_body(request, 1 << 20), InvalidDestination)
    body = model(DestinationBody, raw, "destination", InvalidDestination)
    operation = functools.partial(planner.plan_put_destination, name=name, labels=body.labels,
                                  path=body.path, actor=who.name, policy=_policy(request),
                                  notify_url=body.notify.url if body.notify else None,
                                  recipients=body.encryption.age if body.encryption else None,
                                  cluster=Cluster(body.kubernetesVersion, body.apis,
                                                  body.namespaces),
                                  isolation=body.isolation,
                                  flux=body.flux.model_dump(exclude_none=True) if body.flux else None)
    return await _run(request, operation)


@router.get("/destinations", summary="All destinations", tags=["destinations"],
            responses={**schemas.answers(schemas.DestinationList, 200),
                       **schemas.refusals(401, 503)})
async def list_destinations(request: Request) -> Any:
    """Every registered destination with its labels and path, by name."""
    _, index, _ = await snapshot(request)
    found = sorted(index.destinations.values(), key=lambda d: d.name)
    return {"destinations": [d.as_dict() for d in found]}


@router.get("/destinations/{name}", summary="A destination", tags=["destinations"],
            responses={**schemas.answers(schemas.Destination, 200),
                       **schemas.refusals(401, 404, 503)})
async def get_destination(request: Request, name: str) -> Any:
    """One destination: its labels, path, and notify URL when it has one."""
    _, index, _ = await snapshot(request)
    return _destination(index, name).as_dict()


@router.delete("/destinations/{name}", summary="Delete a destination", tags=["destinations"],
               responses={**schemas.answers(schemas.DestinationDeleted, 200),
                          **schemas.refusals(401, 403, 404, 409, 500, 503, why={
                              409: "Requests are still scheduled there."})})
async def delete_destination(request: Request, who: Caller, name: str) -> JSONResponse:
    """Unregister a destination and remove its folder; refused while requests are scheduled
    there. Needs a token with `destinations: true`."""
    who.require_destinations()
    operation = functools.partial(planner.plan_delete_destination, name=name, actor=who.name,
                                  policy=_policy(request))
    return await _run(request, operation)


@router.get("/destinations/{name}/flux", summary="Flux manifests for a destination",
            tags=["destinations"],
            response_class=schemas.YamlResponse,
            responses={200: {"description": "Flux objects, as YAML documents"},
                       **schemas.refusals(401, 404, 422, 503)})
async def get_flux(
    request: Request, name: str,
    prefix: str | None = Query(None, pattern=r"^[a-z0-9-]{1,40}$",
                               description="the names of the Flux objects start with it "
                                           "(default: the destination's `flux.prefix`)"),
) -> PlainTextResponse:
    """What a worker cluster applies to follow its folder: a GitRepository of this state
    store and the Kustomizations of its `dependencies/` and `resources/` (and a Receiver when
    it has a notify URL), named after the destination's `flux` prefix, in its namespace; with
    `delivery` configured, the Provider, its Secret and the Alert that report to
    `POST /v1/destinations/{name}/events` what Flux applied."""
    config = config_of(request)
    _, index, _ = await snapshot(request)
    destination = _destination(index, name)
    if prefix is not None and prefix != destination.flux_prefix and destination.isolated:
        raise InvalidQuery(f"prefix {quoted(prefix)} is not the destination's flux.prefix "
                           f"{quoted(destination.flux_prefix)}, which the Kustomizations of its "
                           "namespaces refer to", field="prefix")
    prefix = destination.flux_prefix if prefix is None else prefix
    secret = f"{prefix}-credentials" if config.auth_enabled or config.remote else None
    # A destination with a notify URL gets its Receiver: generic-hmac when the service signs
    receiver = None
    if destination.notify_url is not None:
        receiver = "generic-hmac" if config.notify.hmac_token_file is not None else "generic"
    delivery = None
    if config.delivery is not None:  # Flux reports what it applied (docs/reference.md section 12)
        base = config.public_url or str(request.base_url)
        delivery = (f"{base.rstrip('/')}/v1/destinations/{name}/events",
                    provider_token(config.delivery.secret, name))
    text = flux_manifests(destination, config.source_url, config.branch, prefix, secret,
                          receiver=receiver, verify=config.signing is not None,
                          decryption=bool(destination.recipients), delivery=delivery)
    return PlainTextResponse(text, media_type="application/yaml")


@router.post(
    "/destinations/{name}/validate",
    summary="Validate a bundle against a destination", tags=["destinations"],
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": BUNDLE_SCHEMA},
        "application/gzip": {"schema": {"type": "string", "format": "binary"}},
    }}, "parameters": _query_parameters(BundleQuery)},
    responses={**schemas.answers(schemas.Validated, 200,
                                 description="The destination's API server would take it"),
               **schemas.refusals(401, 403, 404, 409, 413, 415, 422, 503, why={
                   422: "InvalidObject: every object the API server would refuse, at once "
                        "(`findings`); or an invalid bundle.",
                   409: "It collides with what others hold there."})},
)
async def validate_bundle(request: Request, who: Caller, name: str) -> JSONResponse:
    """A bundle (as `POST /v1/bundles` takes it) checked as if it were placed on destination
    `name` now: every object as that cluster's API server checks it (kinds and versions
    served, schemas, CRDs' rules, immutable fields, namespaces) and its conflicts with what
    others hold there. Nothing is written. For a pipeline's own CI (`statewriter validate`).
    Needs a token whose `promises` include the bundle's."""
    bundle = await _read_bundle(request, who, bundle_query(request))
    _, index, tree = await snapshot(request)
    checked = await run_in_threadpool(check_bundle, index, tree, bundle, name, _policy(request))
    response = JSONResponse({"valid": True, "destination": checked.destination,
                             "objects": checked.objects, "warnings": list(checked.warnings)})
    for header, value in warning_headers({"warnings": checked.warnings}):
        response.headers.append(header, value)
    return response


# -- helpers ------------------------------------------------------------------------------------


def _destination(index: Index, name: str) -> Destination:
    destination = index.destinations.get(name)
    if destination is None:
        raise NotFound(f"no destination {quoted(name)}")
    return destination
