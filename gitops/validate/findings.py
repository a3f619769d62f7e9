"""What a validation reports: one finding per problem, at the field it is about, written the way
the API server writes field paths (k8s.io/apimachinery/pkg/util/validation/field.Path):
`spec.template.spec.containers[0].image`, map keys in brackets (`metadata.labels[app]`), and ""
for the object itself.

An error is a refusal: the API server would certainly reject the object. A warning is anything
that could not be decided, or that the cluster does differently without refusing (a field it
drops): it never refuses a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitops.quoting import quoted


@dataclass(frozen=True, slots=True)
class Finding:
    path: str  # "" is the object itself
    reason: str  # one line: what is wrong, and what would be accepted
    warning: bool = False  # could not be decided, or accepted differently: never a refusal


def child(path: str, name: str) -> str:
    """The path of field `name` of the object at `path`."""
    return f"{path}.{name}" if path else name


def key(path: str, name: str) -> str:
    """The path of the entry `name` of the map at `path` (a field.Path Key)."""
    return f"{path}[{name}]"


def index(path: str, number: int) -> str:
    return f"{path}[{number}]"


def errors(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if not finding.warning]


def describe(value: object) -> str:
    """A value as a finding quotes it: short, and with its JSON type ('the string "three"')."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {_quoted(shown)}"
    if isinstance(value, int | float):
        return f"the number {quoted(value)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} (not a JSON value)"


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in escaped) + '"'
