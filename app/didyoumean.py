"""Did you mean: the known key nearest to an unknown one, for the refusals of the config file
(`app.config`) and of the HTTP API's JSON bodies (`app.http.models`) alike."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo

Keys = Callable[[type[BaseModel]], Mapping[str, FieldInfo]]


def model_keys(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by the keys a client writes them with (their aliases, else names)."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def closest_key(model: type[BaseModel], loc: Sequence[int | str],
                keys: Keys = model_keys) -> str | None:
    """The key nearest to `loc[-1]` that the model holding it knows, `loc` being where
    pydantic found the unknown key below `model` (list positions are passed through); None
    when no known key is near enough."""
    inner: type[BaseModel] | None = model
    for part in loc[:-1]:
        if inner is None:
            return None
        if isinstance(part, str):
            known = keys(inner).get(part)
            inner = model_in(known.annotation) if known else None
    if inner is None or not loc:
        return None
    close = difflib.get_close_matches(str(loc[-1]), list(keys(inner)), n=1)
    return close[0] if close else None


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (`Token`, `list[Token]`, `Token | None`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = model_in(argument)
        if found is not None:
            return found
    return None
