"""The JSON request bodies (docs/reference.md section 6), strict: an unknown field anywhere, or a
field of the wrong type, is a 422 that names it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gitops.errors import InvalidBundle, InvalidQuery

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


def invalid(error: ValidationError, what: str) -> InvalidBundle:
    """A pydantic error as statewriter's 422: the first problem, naming its field."""
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or what
    reasons = {
        "extra_forbidden": "is not a known field",
        "missing": "is required",
    }
    reason = reasons.get(first["type"], first["msg"][:1].lower() + first["msg"][1:])
    return InvalidBundle(f"{what}: {field} {reason}", field=field)


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
