"""The JSON request bodies (docs/reference.md section 6), strict: an unknown field anywhere, or a
field of the wrong type, is a 422 that names it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.didyoumean import closest_key
from gitops.errors import InvalidBundle, InvalidQuery
from gitops.quoting import kind_of, quoted

MAX_TRAILERS = 16


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RequestRef(Strict):
    namespace: str
    name: str


class BundleBody(Strict):
    """`POST /v1/bundles` as JSON."""

    promise: str
    request: RequestRef | None = None
    pipeline: str | None = None
    destinationSelectors: dict[str, str] | None = None
    files: dict[str, str]
    status: dict[str, Any] | None = None
    promiseGeneration: int | None = Field(default=None, ge=0)
    trailers: dict[str, str] | None = Field(default=None, max_length=MAX_TRAILERS)


class NotifyBody(Strict):
    """`notify` of a destination: the Flux Receiver URL POSTed after each push that changed
    the destination (the URL itself is checked by the planner)."""

    url: str


class EncryptionBody(Strict):
    """`encryption` of a destination: the age recipients its Secrets are encrypted for (each
    checked by the planner)."""

    age: list[str] = Field(max_length=32)


class FluxBody(Strict):
    """`flux` of a destination: what its Flux objects are named and where they live."""

    prefix: str | None = None
    namespace: str | None = None


class DestinationBody(Strict):
    """`PUT /v1/destinations/{name}`. Omitting `notify` removes the one it had; omitting
    `encryption` keeps the recipients it had (`{"age": []}` stops encrypting): an update
    that forgets them must not write its Secrets in clear. `kubernetesVersion`, `apis` and
    `namespaces` say what its cluster serves and holds; `isolation` and `flux` how its
    resources are split into Flux Kustomizations and what those are named (omitted: kept as
    they are). Each is checked by the planner."""

    labels: dict[str, str] | None = None
    path: str | None = None
    notify: NotifyBody | None = None
    encryption: EncryptionBody | None = None
    kubernetesVersion: str | None = None
    apis: list[str] | None = None
    namespaces: list[str] | None = None
    isolation: str | None = None
    flux: FluxBody | None = None


class RollbackBody(Strict):
    """`POST /v1/promises/{promise}/requests/{namespace}/{name}/rollback`: the commit of the
    branch whose output of the request is written again (an id, or a prefix of one)."""

    commit: str


def invalid(error: ValidationError, what: str, model: type[BaseModel],
            refusal: type[InvalidBundle] = InvalidBundle) -> InvalidBundle:
    """A pydantic error of `model` as statewriter's 422 (of kind `refusal`): the first
    problem, naming its field, and for an unknown one the known field nearest to it (an
    unknown field first: a misspelt one is why the one meant is missing)."""
    problems = error.errors(include_url=False)
    first = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    loc = tuple(first["loc"])
    field = ".".join(str(part) for part in loc) or what
    if first["type"] == "extra_forbidden":
        close = closest_key(model, loc)
        near = ".".join([*(str(part) for part in loc[:-1]), close]) if close else None
        hint = f" (did you mean {quoted(near)}?)" if near else ""
        return refusal(f"{what}: unknown field {quoted(field)}{hint}", field=field)
    return refusal(f"{what}: {field} {_reason(first)}", field=field)


_TYPES = {"string_type": "a string", "int_type": "a whole number", "int_from_float": "a whole number",
          "bool_type": "true or false", "dict_type": "an object", "model_type": "an object",
          "list_type": "a list"}


def _reason(error: Any) -> str:
    """What is wrong with a field, in JSON's words (pydantic's would say 'dictionary')."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind in _TYPES:
        given = error["input"]
        return f"must be {_TYPES[kind]}, not {quoted(given) if isinstance(given, float) else kind_of(given)}"
    if kind == "greater_than_equal":
        return f"must be at least {context['ge']}"
    if kind == "too_long":
        return f"may hold at most {context['max_length']} items"
    return str(error["msg"][:1].lower() + error["msg"][1:])


def invalid_parameters(errors: Sequence[Any]) -> InvalidBundle:
    """FastAPI's refusal of a parameter (`RequestValidationError.errors()`) as statewriter's
    422, so that it has the same body as every other refusal (InvalidQuery for a query
    parameter)."""
    first = errors[0]
    location = [str(part) for part in first.get("loc", ())]  # ("query", "dryRun")
    where, field = (location or ["request"])[0], ".".join(location[1:])
    message = str(first.get("msg", "is invalid"))
    named = f"{where} parameter {field}" if field else where
    kind = InvalidQuery if where == "query" else InvalidBundle
    return kind(f"{named}: {message[:1].lower() + message[1:]}", field=field or where)
