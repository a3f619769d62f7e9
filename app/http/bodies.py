"""Reading request bodies: size limits while streaming, content types, strict JSON (no NaN,
no duplicate keys), bounded parsing (POST /v1/bundles)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.config import Config
from app.http.models import BundleBody, invalid
from gitops.bundle import Bundle, build_bundle, check_trailers
from gitops.errors import InvalidBundle, LimitExceeded, StatewriterError, UnsupportedMediaType
from gitops.owner import make_owner
from gitops.quoting import problem_of, quoted
from gitops.tarbundle import GZIP_MEDIA_TYPES

# Parsing is bounded by the size, document, node and depth limits; this is a last line: a
# bundle whose parse took longer than this is refused (413) rather than queued for commit.
# It cannot interrupt a parse already running (that would need a subprocess per bundle).
MAX_PARSE_SECONDS = 20.0
JSON_MEDIA_TYPES = frozenset({"application/json", ""})
_PARSE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError)
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


async def read_body(request: Request, limit: int) -> bytes:
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


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def is_gzip(media: str) -> bool:
    return media in GZIP_MEDIA_TYPES


def require_json(media: str) -> None:
    if media in JSON_MEDIA_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return
    raise UnsupportedMediaType(
        f"unsupported Content-Type {quoted(media)}: send a JSON bundle as application/json or "
        f"a gzip'd tar of output/ and metadata/ as application/gzip",
        supported=["application/json", *sorted(GZIP_MEDIA_TYPES)],
    )


def strict_json(body: bytes, refusal: type[InvalidBundle] = InvalidBundle) -> Any:
    """JSON as RFC 8259 has it: no NaN or Infinity, no key given twice in one object
    (`refusal`: the kind of error that refuses it). Every refusal is in words, never in
    Python's (`'utf-8' codec can't decode`, `sys.set_int_max_str_digits()`)."""
    encoding = json.detect_encoding(body)  # UTF-8, or UTF-16/32 as json.loads would read it
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as error:
        raise refusal(f"body is not valid JSON: it is not {_encoding_name(encoding)} text "
                      f"(byte {error.start})") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_int=_whole_number,
                          object_pairs_hook=_no_duplicates)
    except _NotStrict as error:
        raise refusal(f"body is not valid JSON: {error.reason}", **error.detail) from None
    except json.JSONDecodeError as error:
        raise refusal(f"body is not valid JSON: {error.msg} (line {error.lineno}, "
                      f"column {error.colno})") from None
    except RecursionError:
        raise refusal("body is not valid JSON: it nests too deeply") from None


def _encoding_name(codec: str) -> str:
    return codec.upper().removesuffix("-SIG").removesuffix("-LE").removesuffix("-BE")


MAX_NUMBER_DIGITS = 4300  # what Python reads as a whole number (sys.get_int_max_str_digits)


def _whole_number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _NotStrict(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


class _NotStrict(ValueError):
    def __init__(self, reason: str, **detail: str) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def _no_constant(name: str) -> Any:
    raise _NotStrict(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _NotStrict(f"key {quoted(key)} is given twice", field=key)
        result[key] = value
    return result


def model(kind: type[M], payload: Any, what: str,
          refusal: type[InvalidBundle] = InvalidBundle) -> M:
    """`payload` as the strict model `kind` (`what` names it in a refusal of kind `refusal`)."""
    if not isinstance(payload, dict):
        raise refusal(f"{what} must be a JSON object")
    try:
        return kind.model_validate(payload)
    except ValidationError as error:
        raise invalid(error, what, kind, refusal) from None


def bounded(parse: Callable[..., T], *args: Any) -> T:
    """Run a parser; hostile input yields a 4xx, never an unexpected 500."""
    started = time.monotonic()
    try:
        result = parse(*args)
    except StatewriterError:
        raise
    except _PARSE_ERRORS as error:
        # e.g. PyYAML constructors on `!!int x` or 5000-digit integers
        raise InvalidBundle(f"bundle cannot be parsed: {problem_of(error)}") from None
    elapsed = time.monotonic() - started
    if elapsed > MAX_PARSE_SECONDS:
        raise LimitExceeded(
            f"bundle took {elapsed:.1f}s to parse, over the limit of {MAX_PARSE_SECONDS:.0f}s"
        )
    return result


def json_bundle(body: bytes, config: Config,
                seen: Callable[[dict[str, Any]], None] = lambda payload: None) -> Bundle:
    """The bundle of a JSON body; `seen` hears the object as sent, before it is checked (the
    request log names the bundle even when its fields or files are refused)."""
    raw = strict_json(body)
    if isinstance(raw, dict):
        seen(raw)
    payload = model(BundleBody, raw, "bundle")
    # `status` is the one field kept as the client sent it: bound it as YAML is bounded
    # (depth, values), so deep or huge structures never reach the index and its dumps.
    if payload.status is not None:
        problem = shape_problem(payload.status, config.limits.max_depth, config.limits.max_nodes)
        if problem:
            raise InvalidBundle(f"status {problem}", field="status")
    request = payload.request
    owner = make_owner(payload.promise, request.namespace if request else None,
                       request.name if request else None, payload.pipeline)
    return build_bundle(owner, payload.destinationSelectors or {}, payload.files, payload.status,
                        payload.promiseGeneration, config.limits,
                        check_trailers(payload.trailers))


def shape_problem(value: object, max_depth: int, max_nodes: int) -> str | None:
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
