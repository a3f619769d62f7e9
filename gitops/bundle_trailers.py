"""A bundle's own commit trailers (docs/reference.md section 6), checked the one way for the
JSON form's `trailers`, the tarball form's `trailer` query parameters and `statewriter push
--trailer`. Apart from the bundle parser so that the command line checks them without
loading it (and the YAML and schema libraries it stands on)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from gitops import names
from gitops.errors import InvalidBundle
from gitops.quoting import quoted

Trailers = tuple[tuple[str, str], ...]
MAX_TRAILERS = 16
MAX_TRAILER_VALUE = 256
_TRAILER_KEY = re.compile(r"[A-Z][A-Za-z0-9-]{0,62}")


def check_trailers(value: object) -> Trailers:
    """A bundle's own commit trailers (docs/reference.md section 6): at most 16, keys like
    `Change-Request` that do not start with `Statewriter-`, values one line of at most 256
    characters; kept in key order."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidBundle("trailers must be an object of trailer key -> value", field="trailers")
    if len(value) > MAX_TRAILERS:
        raise InvalidBundle(f"at most {MAX_TRAILERS} trailers", field="trailers")
    for key, text in value.items():
        where = f"trailers.{key}"
        if not isinstance(key, str) or not _TRAILER_KEY.fullmatch(key):
            raise InvalidBundle(f"trailer key {quoted(key)} must match ^[A-Z][A-Za-z0-9-]{{0,62}}$",
                                field=where)
        if key.lower().startswith("statewriter-"):
            raise InvalidBundle(f"trailer key {quoted(key)}: Statewriter- trailers are the service's own",
                                field=where)
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TRAILER_VALUE:
            raise InvalidBundle(f"trailer {key}: the value must be one non-empty line of at most "
                                f"{MAX_TRAILER_VALUE} characters", field=where)
        problem = names.line_problem(text)
        if problem is not None:
            # readers split trailers into lines; a value must never become lines of its own
            raise InvalidBundle(f"trailer {key}: the value {problem}", field=where)
    return tuple(sorted((key, text.strip()) for key, text in value.items()))


def trailers_from_pairs(pairs: Iterable[str], name: str = "trailer") -> Trailers:
    """`KEY=VALUE` strings (`statewriter push --trailer`, the tarball form's `trailer` query
    parameter) as a bundle's trailers, checked as the JSON form's `trailers` are
    (`check_trailers`); InvalidBundle naming `name` otherwise."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidBundle(f"{name} {quoted(pair[:80])} must be KEY=VALUE, e.g. "
                                "Change-Request=CHG-1042", field=name)
        if key in found:
            raise InvalidBundle(f"{name} {key} is given twice", field=name)
        found[key] = value
    return check_trailers(found)
