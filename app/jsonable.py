"""Core values as JSON, spelt one way for every surface: the API's bodies and `statewriter
history --json` alike. An owner is its promise, request and pipeline, an identity its text,
any other dataclass (the read models of `gitops.reads`) field by field."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from gitops.identity import Identity
from gitops.owner import Owner


def owner_json(owner: Owner) -> dict[str, Any]:
    return {"promise": owner.promise, "request": owner.request, "pipeline": owner.pipeline}


def jsonable(value: Any) -> Any:
    """A core value as JSON: an owner as promise, request and pipeline, an identity as its
    text, any other dataclass (the read models) field by field, tuples as lists."""
    if isinstance(value, Owner):
        return owner_json(value)
    if isinstance(value, Identity):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name))
                for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
