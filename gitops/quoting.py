"""How a refusal, an answer or a log line shows a value it was given: as a person (or a JSON
client) reads it, never as Python writes it (no `None`, `True`, `{'a': 1}`, `b'...'`)."""

from __future__ import annotations

import json
from collections.abc import Mapping


def quoted(value: object) -> str:
    """A text in single quotes, what cannot be printed in it escaped as JSON escapes it
    (`'a\\nb'`, `'\\u0000'`); bytes as the text they hold; anything else as JSON writes it
    (`null`, `true`, `1.5`, `{"a": 1}`, `["x"]`)."""
    if isinstance(value, bytes):  # what is not UTF-8 as U+FFFD, never Python's `\xe9`
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return f"'{printable(value)}'"
    return as_json(value)


def printable(text: str) -> str:
    """`text` with each character that cannot be printed as its JSON escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def as_json(value: object) -> str:
    """A value as JSON writes it; what JSON has no form for, as its text."""
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # keys JSON cannot write, NaN, a circle
        return printable(str(value))


def kind_of(value: object) -> str:
    """What a YAML or JSON value is, in the words of their own types (`a string`, `a list`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes):
        return "binary data (!!binary)"
    if isinstance(value, set | frozenset):
        return "a set (!!set)"
    return "a value of a type YAML's core schema does not have"


def problem_of(error: Exception) -> str:
    """What a reader's error says went wrong, in one line without Python's names for it."""
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON: {error.msg} (line {error.lineno})"
    if isinstance(error, KeyError) and error.args:
        return f"field {quoted(error.args[0])} is missing"
    if isinstance(error, UnicodeError):
        return "not UTF-8 text"
    if isinstance(error, TypeError | AttributeError):  # Python's words for a wrong shape
        return "a value of the wrong type"
    return " ".join(str(error).split())[:200] or "cannot be read"
