"""Safe YAML in and canonical YAML out.

Parsing accepts only plain data (no tags beyond the JSON-compatible core types, timestamps
kept as strings) and bounds what a hostile document can cost: nesting depth and the number
of nodes after alias expansion (a "billion laughs" document is refused, not expanded), and
optionally the number of documents in a file and the size of each.

`load_documents` reads a file of Kubernetes objects, `load_one` a single value (metadata
files); both raise only `YamlError`, and `YamlLimitExceeded` when the text is over a limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader that leaves timestamps as strings, as Kubernetes does."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class YamlError(ValueError):
    def __init__(self, reason: str, document: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.document = document


class YamlLimitExceeded(YamlError):
    """The text is well-formed but over a size limit (documents in a file, bytes in one)."""


@dataclass(frozen=True)
class ParseLimits:
    max_depth: int = 64
    max_nodes: int = 200_000  # per file, counted after alias expansion
    max_documents: int = 5000
    max_document_bytes: int | None = None  # UTF-8 bytes of one document's content


def load_documents(text: str, limits: ParseLimits = ParseLimits()) -> list[dict[str, Any]]:
    """Every non-empty document in `text`; each must be a mapping of plain data."""
    return [doc for _, doc in load_numbered_documents(text, limits)]


def load_numbered_documents(
    text: str, limits: ParseLimits = ParseLimits()
) -> list[tuple[int, dict[str, Any]]]:
    """(position in the file, document) of every non-empty document, positions counting the
    empty ones too, as a reader of the file (and the YAML errors) count them."""
    docs: list[tuple[int, dict[str, Any]]] = []
    for index, doc in _plain_documents(text, limits):
        if doc is None:
            continue
        if len(docs) >= limits.max_documents:
            raise YamlLimitExceeded(f"more than {limits.max_documents} documents in one file", index)
        if not isinstance(doc, dict):
            raise YamlError(f"document is a {type(doc).__name__}, not a mapping", index)
        docs.append((index, doc))
    return docs


def load_one(text: str, limits: ParseLimits = ParseLimits()) -> Any:
    """The one document in `text` as plain data of any shape, or None if there is none."""
    value: Any = None
    for index, doc in _plain_documents(text, limits):
        if index > 0:
            raise YamlError("holds more than one YAML document", index)
        value = doc
    return value


def _plain_documents(text: str, limits: ParseLimits) -> Iterator[tuple[int, Any]]:
    """(index, value) of each document, checked against `limits`; every failure a YamlError."""
    loader = _Loader(text)
    budget = [limits.max_nodes]
    index = 0  # of the document being read, so errors name it
    try:
        while loader.check_node():
            node = loader.get_node()
            _check_size(text, node, limits.max_document_bytes, index)
            doc = loader.construct_document(node)
            _check_plain(doc, limits.max_depth, budget, index)
            yield index, doc
            index += 1
    except yaml.YAMLError as error:
        raise YamlError(f"invalid YAML: {_one_line(error)}", index) from None
    except RecursionError:
        raise YamlError("document nests too deeply", index) from None
    except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as error:
        # PyYAML's constructors raise these for malformed scalars ("!!int x", huge numbers).
        if isinstance(error, YamlError):
            raise
        raise YamlError(f"invalid YAML value: {error}", index) from None
    finally:
        loader.dispose()


def _check_size(text: str, node: yaml.Node, limit: int | None, document: int) -> None:
    """Refuse a document whose content (first to last character of its node) is over `limit`."""
    if limit is None:
        return
    size = len(text[node.start_mark.index : node.end_mark.index].encode())
    if size > limit:
        raise YamlLimitExceeded(f"document is {size} bytes, more than the limit of {limit}", document)


def _check_plain(value: object, depth: int, budget: list[int], document: int) -> None:
    """Plain JSON-like data within the depth and node budgets (aliases count each time)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlError("too many YAML nodes (alias expansion or sheer size)", document)
    if depth < 0:
        raise YamlError("document nests too deeply", document)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise YamlError(f"mapping key {key!r} is not a string", document)
            _check_plain(item, depth - 1, budget, document)
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, depth - 1, budget, document)
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise YamlError(f"unsupported YAML value of type {type(value).__name__}", document)


def _one_line(error: yaml.YAMLError) -> str:
    return " ".join(str(error).split())[:300]


def dump_document(doc: dict[str, Any]) -> bytes:
    """Canonical YAML for one object: same input, same bytes."""
    text: str = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return text.encode()
