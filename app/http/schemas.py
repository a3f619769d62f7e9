"""What /openapi.json says beyond the routes' signatures (docs/reference.md section 6): the answers'
bodies, the error body every refusal has, the media types that are not JSON, and the
security schemes.

The models here document; no route validates or filters its answer through them (the
answers are built in `app.http.answers`). `install` puts them into the document of an app and
derives from its routes which operations need a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema, models_json_schema

from app import eck
from app.http import metrics
from app.http.auth import authenticated
from gitops.commitmsg import ACTION_NAMES

# A field that may be left out of an answer but is never null in it: `x: str | Absent = None`
Absent = SkipJsonSchema[None]
REF = "#/components/schemas/{model}"


def _absent_is_not_null(schema: dict[str, Any]) -> None:
    for field in schema.get("properties", {}).values():
        if field.get("default", ...) is None:
            del field["default"]


class Documented(BaseModel):
    """A body as the service answers it; fields it may leave out are not required."""

    model_config = ConfigDict(json_schema_extra=_absent_is_not_null)


# -- errors ------------------------------------------------------------------------------


class Owner(Documented):
    """A bundle's owner: a promise, one of its requests (`""` for promise-level bundles) and
    a pipeline."""

    promise: str
    request: str = Field(description='"<namespace>/<name>", or "" for a promise-level owner')
    pipeline: str


class ObjectFinding(Documented):
    """One thing the destination's API server would refuse in one object."""

    file: str = Field(description="the bundle's file")
    document: int = Field(description="the document within `file`")
    object: str = Field(description="<Kind>[.<group>] [<namespace>/]<name>")
    field: str = Field(description='the field path, as the API server writes it ("" for the '
                                   'object itself)', examples=["spec.nodeSets[0].count"])
    reason: str


class Error(Documented):
    """The body of every refusal (docs/reference.md section 6): its kind, a sentence for a person, and
    what it is about when known (the bundle's file and document, the field, the object and its
    owners). Kinds may gain fields; a client should ignore those it does not know."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_absent_is_not_null)

    error: str = Field(
        description="InvalidBundle, InvalidObject, InvalidDestination, InvalidQuery or "
                    "EncryptionRequired (422), UnsupportedMediaType (415), LimitExceeded "
                    "(413), Conflict (409), MethodNotAllowed (405), NotFound or "
                    "RouteNotFound (404: nothing is served at that address), Forbidden (403), "
                    "Unauthorized (401), StoreUnavailable, RateLimited or CorruptState (503), "
                    "InternalError (500)",
        examples=["Conflict"],
    )
    message: str = Field(examples=["elastic-operator.yaml: document 3: ConfigMap "
                                   "elastic-system/elastic-operator is owned by another promise"])
    file: str | Absent = Field(None, description="the bundle's file at fault")
    document: int | Absent = Field(None, description="the document within `file`")
    field: str | Absent = Field(None, description="the field (or parameter) at fault")
    reason: str | Absent = None
    object: str | Absent = Field(None, description="the object: <Kind>[.<group>] [<namespace>/]<name>")
    destination: str | Absent = None
    owners: list[Owner] | Absent = Field(None, description="who holds `object` already")
    requestId: str | Absent = Field(None, description="InternalError: the log lines' request id")
    findings: list[ObjectFinding] | Absent = Field(
        None, description="InvalidObject: every object the destination's API server would "
                          "refuse, and why")
    allowed: list[str] | Absent = Field(None, description="MethodNotAllowed: the methods the "
                                                          "address takes")


WHY = {
    401: "No valid token: missing, unknown or not a Bearer token (only when auth is on).",
    403: "The token is valid but may not do this (its `promises`, or `destinations: true`).",
    404: "Nothing is stored under that name.",
    409: "The change collides with what others own or what still depends on it.",
    413: "Over a configured limit (body, unpacked size, files, documents, bytes per document).",
    415: "The body is neither JSON nor a gzip'd tar.",
    422: "Invalid: which file, which document, which field or parameter, and why (an unknown "
         "field names the known one nearest to it).",
    500: "An unexpected error while planning or committing this request alone; nothing it "
         "asked for was changed. The service log has the details under `requestId`.",
    503: "The state store cannot be read or written now (the remote, the disk): retry.",
}


def refusals(*codes: int, why: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries of error answers, each with the `Error` body. `why` gives an
    operation's own reasons where the general ones in WHY say too little."""
    return {code: {"description": (why or {}).get(code, WHY[code]), "content": _json("Error")}
            for code in codes}


def answers(model: type[BaseModel], *codes: int, description: str = "") -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries of successful answers with `model`'s body."""
    return {code: {"description": description or "OK", "content": _json(model.__name__)}
            for code in codes}


def _json(model: str) -> dict[str, Any]:
    # Explicit JSON (not `model=`): an error of a YAML or text operation is JSON all the same
    return {"application/json": {"schema": {"$ref": REF.format(model=model)}}}


# -- what operations answer -------------------------------------------------------------


class Health(Documented):
    status: Literal["ok"]
    version: str


class Readiness(Documented):
    status: Literal["ready", "unavailable"] = Field(
        description="ready: reads (and git clones) can be served")
    writes: bool = Field(description="whether writes can succeed now")
    reason: str | Absent = Field(None, description="what kind of problem keeps writes (or "
                                 "reads) from succeeding now (never a host or a path)")
    detail: str | Absent = Field(None, description="the problem as the service saw it (hosts, "
                                 "paths): only with a valid token, or when auth is off")


class FileChanges(Documented):
    """The files the commit added, changed and removed (the service's own records included)."""

    added: list[str]
    changed: list[str]
    removed: list[str]


class Validated(Documented):
    """A bundle the destination's API server would take (nothing was written)."""

    valid: Literal[True]
    destination: str
    objects: int = Field(description="the objects it would hold there")
    warnings: list[str] = Field(description="what could not be checked, or what the cluster "
                                            "may do differently (file, document, field)")


class NotPlaced(Owner):
    destination: str
    reason: str


class Change(Documented):
    """What every change answers: whether it changed the branch, and the branch's commit then."""

    changed: bool = Field(description="false: the branch had it all already (still a success)")
    files: FileChanges
    commit: str | None = Field(description="the branch tip when answered (null: no commit yet)")
    dryRun: bool | Absent = Field(None, description="true: nothing was committed")
    replaced: list[str] | Absent = Field(None, description="shared dependencies replaced")
    warnings: list[str] | Absent = Field(
        None, description="what could not be checked, or what the cluster may do differently "
                          "(each names file, document and field; also `Warning: 299` headers)")
    keptAtNewerGeneration: list[str] | Absent = Field(
        None, description="dependencies kept because a newer promise generation wrote them")
    notPlaced: list[NotPlaced] | Absent = Field(
        None, description="waiting bundles a destination could not take")


class BundleAnswer(Change, Owner):
    state: Literal["Scheduled", "Pending"]
    destinations: list[str]
    misplaced: bool | Absent = Field(
        None, description="a placed request whose selectors no longer match its destination")
    reason: str | Absent = Field(None, description="why it waits (Pending)")


class RollbackAnswer(Change):
    """A request written again as it stood at a commit (`rolledBackTo`)."""

    promise: str
    request: str = Field(description='"<namespace>/<name>"')
    state: Literal["Scheduled", "Pending"]
    destinations: list[str]
    pipelines: list[str] = Field(description="its pipelines at that commit, each written as it "
                                             "stood then")
    removed: list[str] = Field(description="pipelines it had and did not have then: removed")
    rolledBackTo: str = Field(description="the full id of the commit")
    misplaced: bool | Absent = Field(
        None, description="its selectors (as they were then) no longer match its destination")
    reason: str | Absent = Field(None, description="why it waits (Pending)")


class Deletion(Change):
    deleted: list[Owner]
    destinations: list[str]


class HeldObject(Documented):
    object: str
    destination: str
    placement: Literal["dependencies", "resources"]
    path: str | None
    shared: bool = Field(description="other owners output the same object")


class PipelineState(Documented):
    pipeline: str
    state: str
    destinations: list[str]
    digest: str
    generation: int | None
    status: dict[str, Any] | None
    reason: str | None = Field(description="why it waits")
    objects: list[HeldObject]


class Delivery(Documented):
    """What Flux on one destination did with the request's latest commit there."""

    destination: str
    state: Literal["Pending", "Applied", "Failed", "Unknown"] = Field(
        description="Unknown: Flux's events are not configured (delivery.hmacTokenFile)")
    commit: str | None = Field(description="its latest commit there")
    committed: str | None = Field(description="when (RFC 3339)")
    applied: str | None = Field(description="when the last of its Kustomizations applied it")
    kustomization: str | None = Field(description="the Flux Kustomization that failed, or "
                                                  "that is still to apply it")
    reason: str | None = Field(description="Flux's reason for the failure")
    message: str | None = Field(description="Flux's message")
    object: str | None = Field(description="the object the message names (Kind/namespace/name)")
    overdue: bool = Field(description="pending for longer than Flux takes to reconcile: "
                                      "look at the Kustomization on the worker")


class RequestDelivery(Documented):
    state: Literal["Pending", "Applied", "Failed", "Unknown"] = Field(
        description="Failed if one destination failed, else Pending if one is pending (or "
                    "the request is not placed), else Unknown, else Applied")
    destinations: list[Delivery]


class RequestState(Documented):
    promise: str
    request: str
    state: Literal["Scheduled", "Pending"]
    destinations: list[str]
    commit: str | None
    pipelines: list[PipelineState]
    delivery: RequestDelivery | Absent = Field(None, description="a request's delivery (not "
                                                                 "for a promise's own bundles)")


class ListedRequest(Documented):
    request: str = Field(description="namespace/name")
    state: Literal["Scheduled", "Pending"]
    destinations: list[str]
    pipelines: list[str]
    delivery: RequestDelivery


class RequestPage(Documented):
    promise: str
    requests: list[ListedRequest]
    next: str | None = Field(description="the cursor of the next page; null on the last")


class EventTaken(Documented):
    recorded: bool = Field(description="whether it changed what the destination reported")
    reason: str | Absent = Field(None, description="why it changed nothing")


class HistoryFiles(Documented):
    added: list[str]
    changed: list[str]
    removed: list[str]


class HistoryCommit(Documented):
    sha: str
    time: str = Field(description="RFC 3339, UTC")
    actor: str | None
    action: str | None = Field(description=ACTION_NAMES)
    reverts: str | None = Field(description="revert: the commit it reverts (one of this "
                                            "request's, whose pipelines and destinations it "
                                            "names)")
    pipelines: list[str]
    destinations: list[str]
    message: str = Field(description="the commit's subject line")
    files: HistoryFiles = Field(description="the service's own records left out")


class RequestHistory(Documented):
    promise: str
    request: str
    commits: list[HistoryCommit]


class Commit(Documented):
    """A commit as `GET /v1/history` lists it, named by its trailers."""

    sha: str
    time: str = Field(description="RFC 3339, UTC")
    actor: str | None
    action: str | None = Field(description=ACTION_NAMES)
    reverts: str | None = Field(description="revert: the commit it reverts")
    summary: str = Field(description="the commit's subject line")
    promises: list[str]
    requests: list[str]
    pipelines: list[str]
    destinations: list[str]
    trailers: dict[str, list[str]] = Field(description="the clients' own trailers")
    files: HistoryFiles = Field(description="the service's own records left out")


class CommitPage(Documented):
    commits: list[Commit]
    next: str | None = Field(description="the cursor of the next page; null on the last")


class Notify(Documented):
    url: str = Field(description="a Flux Receiver's URL, called after each push that changed "
                                 "the destination")


class Encryption(Documented):
    age: list[str] = Field(description="the age recipients its Secrets are encrypted for")


class Flux(Documented):
    prefix: str = Field(description="the names of its Flux objects start with it")
    namespace: str = Field(description="the namespace of its Flux objects")


class Destination(Documented):
    name: str
    labels: dict[str, str]
    path: str = Field(description="its folder in the repository")
    notify: Notify | Absent = None
    encryption: Encryption | Absent = None
    kubernetesVersion: str | Absent = Field(None, description="objects are validated against it")
    apis: list[str] | Absent = Field(None, description="API groups or group/version/Kind its "
                                     "cluster serves without statewriter")
    namespaces: list[str] | Absent = Field(None, description="namespaces its cluster has "
                                           "without statewriter")
    isolation: Literal["destination", "namespace"] | Absent = Field(
        None, description="`namespace`: one Flux Kustomization per namespace of its resources "
                          "(absent: `destination`, one for all)")
    flux: Flux | Absent = Field(None, description="its Flux objects' prefix and namespace "
                                                  "(absent: kratix-workload, flux-system)")


class DestinationList(Documented):
    destinations: list[Destination]


class DestinationSaved(Change, Destination):
    pass


class DestinationDeleted(Change):
    deleted: str


MODELS: tuple[type[BaseModel], ...] = (
    Error, Health, Readiness, BundleAnswer, RollbackAnswer, Deletion, RequestState, RequestHistory,
    Destination, DestinationList, DestinationSaved, DestinationDeleted, CommitPage, Validated,
    RequestPage, EventTaken,
)


# -- media types that are not JSON ----------------------------------------------------------


class YamlResponse(PlainTextResponse):
    media_type = "application/yaml"


class MetricsResponse(PlainTextResponse):
    media_type = metrics.CONTENT_TYPE


BUNDLE_EXAMPLES = {"eck": {
    "summary": "The ECK stack of request default/example (the README walkthrough)",
    "value": eck.BUNDLE,
}}


# -- the document -----------------------------------------------------------------------------

BEARER = "bearer"
FLUX_HMAC = "fluxHmac"  # the events Flux posts: signed with the destination's key, no token
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http", "scheme": "bearer",
        "description": "A token of the config's `auth.tokens` as `Authorization: Bearer <token>`. "
                       "Every operation that lists it needs one when auth is on (without an "
                       "`auth` section the service takes anonymous requests).",
    },
    "basic": {
        "type": "http", "scheme": "basic",
        "description": "The same token as the password of HTTP Basic (any user name). Taken by "
                       "git over HTTP (`/git/state.git`, what Flux sends) and the web pages "
                       "(`/ui`), which this document leaves out; the operations here take "
                       "Bearer only.",
    },
    FLUX_HMAC: {
        "type": "apiKey", "in": "header", "name": "X-Signature",
        "description": "`sha256=<hex>`: the HMAC-SHA256 of the body with the destination's own "
                       "key, as a Flux notification-controller Provider of type generic-hmac "
                       "sends it (the key is in the Secret `GET /v1/destinations/{name}/flux` "
                       "renders).",
    },
}
TAGS = [
    {"name": "bundles", "description": "What pipelines send: their output, to be placed and committed."},
    {"name": "requests", "description": "What a request, or a promise's own bundles, own and did."},
    {"name": "destinations", "description": "The worker clusters bundles are placed on, and "
                                            "what their Flux applies."},
    {"name": "history", "description": "The commits across requests, for audits."},
    {"name": "operations", "description": "Liveness, readiness and metrics, for probes and "
                                          "Prometheus: no token needed."},
]
DESCRIPTION = """GitOps state-store writer. Pipelines POST their output as bundles;
statewriter places, deduplicates and commits it for Flux, and tells whether Flux applied it.

Every refusal answers a JSON `Error` body, `{"error": "<Kind>", "message": "...", ...}`,
whatever the operation's own media type. Every answer carries `X-Request-ID` (the client's,
or a generated one). A request whose head is over the configured limit is answered 413
(`LimitExceeded`) before any operation sees it.

Clients can be generated from this document (`/openapi.json`), e.g.
`openapi-python-client generate --url http://127.0.0.1:8080/openapi.json`."""


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (served at /openapi.json, read by /docs and /redoc) the
    documented one, built at its first call from the routes the app has then."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def operation_id(route: APIRoute) -> str:
    """An operation's id is its function's name (`post_bundle`): what generated clients
    call it."""
    return route.name


def build(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(title=app.title, version=app.version, description=DESCRIPTION,
                       routes=app.routes, tags=TAGS)
    components = spec.setdefault("components", {})
    _, defined = models_json_schema([(model, "serialization") for model in MODELS],
                                    ref_template=REF)
    components.setdefault("schemas", {}).update(defined["$defs"])
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, method, route in operations(app):
        operation = spec["paths"][path][method]
        _own_validation_errors(operation)
        if authenticated in _calls(route.dependant):
            operation["security"] = [{BEARER: []}]
    for unused in ("HTTPValidationError", "ValidationError"):  # no operation refers to them now
        components["schemas"].pop(unused, None)
    return spec


def operations(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(path, method, route) of every operation in the document: the route as it is included,
    its router's dependencies in its `dependant`."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                yield route.path_format or "", method.lower(), route


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _own_validation_errors(operation: dict[str, Any]) -> None:
    """FastAPI documents a 422 of its own (`HTTPValidationError`) for every operation with
    parameters. The service answers its `Error` body instead (app.main), and where no
    parameter can be invalid (plain text), there is no 422 at all: an operation that can
    answer one says so in its `responses=`."""
    answer = operation["responses"].get("422", {})
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        del operation["responses"]["422"]

