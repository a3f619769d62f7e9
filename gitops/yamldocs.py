"""Safe YAML in and canonical YAML out.

Parsing accepts only plain data (no tags beyond the JSON-compatible core types, timestamps
kept as strings) and bounds what a hostile document can cost: nesting depth and the number
of nodes after alias expansion (a "billion laughs" document is refused, not expanded), and
optionally the number of documents in a file and the size of each. It also refuses what
would not reach the cluster as written: keys written twice in one mapping, NaN and
infinite numbers, integers outside int64.

`load_documents` reads a file of Kubernetes objects, `load_one` a single value (metadata
files); both raise only `YamlError`, and `YamlLimitExceeded` when the text is over a limit.

`dump_document` writes YAML that every reader on the way to the cluster (PyYAML, kustomize's
yaml.v3, the Kubernetes API's goyaml.v2, YAML 1.2 readers) reads back as the same data; see
`gitops.yamlscalars` for the readers' rules it stays clear of.
"""

from __future__ import annotations

import ast
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from gitops import caches
from gitops.errors import YamlError, YamlLimitExceeded
from gitops.frozen import DICTS, LISTS, FrozenDict, FrozenList
from gitops.lru import Memo
from gitops.quoting import kind_of, quoted
from gitops.yamlscalars import READER_RESOLVERS, Disagreement, go_reading

_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DumperBase: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"



class _Refusal(ValueError):
    """Raised while constructing a document; `_plain_documents` names the document."""


class _Loader(_SafeBase):  # type: ignore[valid-type,misc]
    """SafeLoader that leaves timestamps as strings, as Kubernetes does, and refuses
    duplicate keys, NaN and infinities, and integers a Go reader cannot hold."""

    yaml_implicit_resolvers = READER_RESOLVERS

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._flattened: set[yaml.MappingNode] = set()

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return super().construct_document(node)
        finally:
            self._flattened.clear()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Replace `node`'s pairs by its effective ones, merges resolved as YAML (and
        kustomize) define them: the mapping's own keys win over merged ones, and of the
        merged mappings the first that has a key wins. PyYAML 6.0.4's own version drops or
        keeps a merged key depending on whether Python interned its string (`<<: [*a, *b]`
        takes a long key from b, a short one from a)."""
        if node in self._flattened:
            return  # already flattened: merging it again, or an alias of it
        self._flattened.add(node)
        _refuse_duplicate_keys(node)
        own: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in self._merge_sources(node, value_node):
                    self.flatten_mapping(source)
                    merged.extend(source.value)
            else:
                if key_node.tag == _VALUE_TAG:
                    key_node.tag = _STR_TAG  # as PyYAML does: `=` as a key is the string "="
                own.append((key_node, value_node))
        taken = {_key_identity(key) for key, _ in own}
        effective = []
        for key_node, value_node in merged:
            if _key_identity(key_node) not in taken:
                taken.add(_key_identity(key_node))
                effective.append((key_node, value_node))
        node.value = effective + own

    def _merge_sources(self, node: yaml.MappingNode, value: yaml.Node) -> list[yaml.MappingNode]:
        sources: list[yaml.MappingNode] = []
        for source in value.value if isinstance(value, yaml.SequenceNode) else [value]:
            if not isinstance(source, yaml.MappingNode):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"expected mappings to merge, found {_NODE_KINDS.get(type(source), 'a node')}",
                    source.start_mark,
                )
            sources.append(source)
        return sources

    def construct_finite_float(self, node: yaml.ScalarNode) -> float:
        value: float = self.construct_yaml_float(node)
        if not math.isfinite(value):
            raise _Refusal(
                f"NaN or infinite numbers cannot be delivered ({_excerpt(node.value)} at {_line(node)})"
            )
        return value

    def construct_int64(self, node: yaml.ScalarNode) -> int:
        value: int = self.construct_yaml_int(node)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Refusal(
                f"integer {_excerpt(node.value)} at {_line(node)} is outside the int64 range "
                "(Kubernetes and kustomize would turn it into a float)"
            )
        return value


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_finite_float)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_int64)


_GO_TAG = "tag:statewriter.dev,2024:go"  # a plain scalar to read as the Go readers do


class _DeliveryLoader(_Loader):
    """How a pipeline's documents are read: a plain scalar means what the Kubernetes API
    (goyaml.v2) and kustomize (yaml.v3) both read it as, the readers its cluster uses (`1e3`
    is 1000, `08544` is 8544); one they read differently (`yes`, `on`, a date) is refused,
    since no writing of it could reach the cluster as the pipeline saw it."""

    def resolve(self, kind: Any, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode or len(value) > _REMEMBERED_SCALAR:
            return self._resolve(kind, value, implicit)
        return _READ_TAGS[(value, implicit[0])]  # remembered: see _REMEMBERED_SCALAR

    def _resolve(self, kind: Any, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0] and value != "<<" and _AMBIGUOUS.match(value):
            return _GO_TAG
        resolved: str = super().resolve(kind, value, implicit)
        return resolved

    def construct_go(self, node: yaml.ScalarNode) -> Any:
        try:
            value = go_reading(node.value)
        except Disagreement as disagreement:
            raise _Refusal(f"plain scalar {_excerpt(node.value)} at {_line(node)} {disagreement}: "
                           "quote it to send a string") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refusal(f"NaN or infinite numbers cannot be delivered ({_excerpt(node.value)} "
                           f"at {_line(node)})")
        if isinstance(value, int) and not isinstance(value, bool) and not (
                _INT64_MIN <= value <= _INT64_MAX):
            raise _Refusal(f"integer {_excerpt(node.value)} at {_line(node)} is outside the int64 "
                           "range (Kubernetes and kustomize would turn it into a float)")
        if not isinstance(value, str | int | float | bool | None):  # a time, a special
            raise _Refusal(f"plain scalar {_excerpt(node.value)} at {_line(node)} is not plain "
                           "data to the Go readers: quote it to send a string")
        return value


_DeliveryLoader.add_constructor(_GO_TAG, _DeliveryLoader.construct_go)


def _key_identity(key_node: yaml.Node) -> object:
    """Keys are the same key when they have the same text, as yaml.v3 compares them."""
    return key_node.value if isinstance(key_node, yaml.ScalarNode) else key_node


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    """Keys written twice in `node`, before its merges are resolved (a merged key is not
    written in it). `1` and `"1"` are the same key to kustomize; two `<<` keys too."""
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        first = seen.setdefault(_key_identity(key_node), key_node)
        if first is not key_node:
            raise _Refusal(
                f"duplicate key {_excerpt(key_node.value)} in a mapping "
                f"(at {_line(first)} and {_line(key_node)})"
            )


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _excerpt(text: str) -> str:
    return quoted(text if len(text) <= 60 else text[:60] + "...")


_NODE_KINDS = {yaml.ScalarNode: "a scalar", yaml.SequenceNode: "a sequence",
               yaml.MappingNode: "a mapping"}


@dataclass(frozen=True)
class ParseLimits:
    max_depth: int = 64
    max_nodes: int = 200_000  # per file, counted after alias expansion
    max_documents: int = 5000
    max_document_bytes: int | None = None  # UTF-8 bytes of one document's content
    # Refuse what kustomize would change or refuse whatever the quoting (a bundle's
    # documents, on their way to clusters): DEL and C1 control characters, a '<<' key.
    deliverable: bool = False


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
            raise YamlError(f"document is {kind_of(doc)}, not a mapping", index)
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
    try:
        # libyaml takes the text as UTF-8
        loader = (_DeliveryLoader if limits.deliverable else _Loader)(text)
    except UnicodeEncodeError:
        raise YamlError("text holds a lone surrogate, which is no Unicode character") from None
    budget = [limits.max_nodes]
    index = 0  # of the document being read, so errors name it
    try:
        while loader.check_node():
            node = loader.get_node()
            _check_size(text, node, limits.max_document_bytes, index)
            doc = _construct(loader, node)
            _check_plain(doc, limits.max_depth, budget, index, limits.deliverable)
            yield index, doc
            index += 1
    except _Refusal as refusal:
        raise YamlError(str(refusal), index) from None
    except yaml.YAMLError as error:
        raise YamlError(f"invalid YAML: {yaml_problem(error, text)}", index) from None
    except RecursionError:
        raise YamlError("document nests too deeply", index) from None
    except (ValueError, LookupError, AttributeError, TypeError, OverflowError) as error:
        # PyYAML's constructors raise these for malformed scalars ("!!int x", huge numbers,
        # an empty "!!int" or "!!float").
        if isinstance(error, YamlError):
            raise
        # their text quotes the value, which may be secret: name the problem, not the text
        raise YamlError("invalid YAML value: a scalar cannot be read as its tag says (e.g. "
                        "`!!int x`, a malformed `!!binary` or `!!timestamp`)", index) from None
    finally:
        loader.dispose()


class _Unusual(Exception):
    """A node `_construct_plain` leaves to PyYAML's constructors."""


_IN_PROGRESS = object()
_PLAIN_SCALAR_TAGS = frozenset({"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool",
                                "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", _GO_TAG})


def _construct(loader: _Loader, node: yaml.Node) -> Any:
    """The document of `node`: built directly when it holds only plain mappings, sequences
    and scalars (PyYAML's constructor machinery was half of reading a request's small
    files), else by the loader's constructors; the same value either way."""
    try:
        return _construct_plain(loader, node, {})
    except _Unusual:
        return loader.construct_document(node)


def _construct_plain(loader: _Loader, node: yaml.Node, made: dict[int, Any]) -> Any:
    """As the loader constructs `node`, for plain data: the same scalar constructors, keys
    written twice refused the same way, and a node met again (an alias) the same object.
    Raises _Unusual for merge keys, `=` keys, other tags, complex keys and recursion."""
    kind = type(node)
    if kind is yaml.ScalarNode:
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        if tag not in _PLAIN_SCALAR_TAGS:
            raise _Unusual(tag)
        return loader.yaml_constructors[tag](loader, node)
    found = made.get(id(node))
    if found is _IN_PROGRESS:
        raise _Unusual("a node inside itself")
    if found is not None:
        return found
    made[id(node)] = _IN_PROGRESS
    value: Any
    if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
        for key_node, _ in node.value:
            if type(key_node) is not yaml.ScalarNode or key_node.tag in (_MERGE_TAG, _VALUE_TAG):
                raise _Unusual("a merge, value or complex key")
        _refuse_duplicate_keys(node)
        value = {_construct_plain(loader, key, made): _construct_plain(loader, item, made)
                 for key, item in node.value}
    elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
        value = [_construct_plain(loader, item, made) for item in node.value]
    else:
        raise _Unusual(node.tag)
    made[id(node)] = value
    return value


def _check_size(text: str, node: yaml.Node, limit: int | None, document: int) -> None:
    """Refuse a document whose content (first to last character of its node) is over `limit`."""
    if limit is None:
        return
    size = len(text[node.start_mark.index : node.end_mark.index].encode())
    if size > limit:
        raise YamlLimitExceeded(f"document is {size} bytes, more than the limit of {limit}", document)


def _check_plain(
    value: object, depth: int, budget: list[int], document: int, deliverable: bool
) -> None:
    """Plain JSON-like data within the depth and node budgets (aliases count each time)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlError("too many YAML nodes (alias expansion or sheer size)", document)
    if depth < 0:
        raise YamlError("document nests too deeply", document)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                if isinstance(key, int | float | bool) or key is None:
                    raise YamlError(f"mapping key {quoted(key)} is not a string", document)
                # bytes or items are no name to show
                raise YamlError(f"a mapping key is {kind_of(key)}, not a string", document)
            if deliverable:
                _check_key(key, document)
            _check_plain(item, depth - 1, budget, document, deliverable)
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, depth - 1, budget, document, deliverable)
    elif isinstance(value, str):
        if deliverable:
            _check_text(value, document)
    elif value is not None and not isinstance(value, int | float | bool):
        raise YamlError(f"unsupported YAML value: {kind_of(value)}", document)


# DEL and the C1 control characters (NEL among them): kustomize, and so Flux, folds NEL into
# a space and fails on the others, whatever the quoting; the API server's reader keeps them.
_UNDELIVERABLE = re.compile("[\x7f-\x9f]")


def _check_key(key: str, document: int) -> None:
    if key == "<<":
        raise YamlError("a mapping key '<<' cannot be delivered: kustomize drops it as a merge "
                        "key, however it is quoted", document)
    _check_text(key, document)


def _check_text(text: str, document: int) -> None:
    found = _UNDELIVERABLE.search(text)
    if found is not None:
        raise YamlError(f"a string holds the control character U+{ord(found[0]):04X}, which "
                        "kustomize changes or refuses: it cannot be delivered as sent", document)


def yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """PyYAML's reason and where, in one line: never its snippet of the text (a value may be
    secret, and reasons reach logs and web pages), its name for the stream, nor the Python
    error some of its constructors quote."""
    if isinstance(error, yaml.reader.ReaderError):  # says where by the stream's name
        # libyaml counts bytes of the UTF-8 text (and gives the character as a number),
        # PyYAML's own reader characters
        character, before = error.character, text[:error.position]
        if not isinstance(character, str):
            before = text.encode("utf-8", "surrogatepass")[:error.position].decode(
                "utf-8", "replace")
        code = ord(character) if isinstance(character, str) else int(character)
        line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
        return f"{error.reason}: U+{code:04X} (line {line}, column {column})"
    if not isinstance(error, yaml.MarkedYAMLError):
        return " ".join(str(error).split())[:300]
    parts = [part for part in (error.context, _constructor_problem(error.problem)) if part]
    mark = error.problem_mark or error.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(" ".join(parts).split())[:300] + where


_UNKNOWN_TAG = re.compile(r"could not determine a constructor for the tag (?P<tag>'.*'|\".*\")\Z",
                          re.DOTALL)


def _constructor_problem(problem: str | None) -> str | None:
    """The problems of PyYAML's constructors that quote a Python error or repr, in words."""
    if problem is None:
        return None
    if problem.startswith(("failed to convert base64 data", "failed to decode base64 data")):
        return "a !!binary value is not base64 text"
    unknown = _UNKNOWN_TAG.match(problem)
    if unknown is not None:  # PyYAML writes the tag as Python's repr
        tag = ast.literal_eval(unknown["tag"])
        return f"unknown tag {quoted(tag)}"
    return problem


# Strings some reader could take for something else when written plain, on top of what
# PyYAML's own resolvers catch. A deliberately wide net, checked against the precise model
# in gitops.yamlscalars by the tests:
#  - anything starting with a digit, or with a sign or a dot that digits, dots or underscores
#    follow (Go readers drop underscores before parsing: `-_1` is -1, `1_0.5` is 10.5);
#  - the words of YAML 1.1 and goyaml.v2 (y, n, on, ...), infinities and NaNs, in any case;
#  - `<<` (a merge key) and `=` (YAML 1.1's value key).
_AMBIGUOUS = re.compile(
    r"[0-9]|[-+.][-+._]*[0-9.]"
    r"|(?i:y|n|yes|no|on|off|true|false|null|~|[-+]?\.?(?:inf|infinity|nan)|<<|=)\Z"
)
_AMBIGUOUS_FIRST = [*"0123456789+-.", *"yYnNoOtTfF~iI<="]  # PyYAML quotes "" itself
_AMBIGUOUS_TAG = "tag:statewriter.dev,2024:ambiguous"  # never written: it only makes a string quoted

# Characters only a double-quoted scalar keeps as they are: NEL and the line and paragraph
# separators, which YAML 1.1 readers (libyaml, goyaml) take as line breaks and YAML 1.2
# readers do not (in any other style NEL reads back as a space or a newline), and the BOM,
# DEL and the other control characters but the line feed (libyaml's emitter double-quotes
# those anyway; saying so keeps PyYAML's pure-Python emitter to the same).
_DOUBLE_QUOTED_ONLY = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


class _Dumper(_DumperBase):  # type: ignore[valid-type,misc]
    """SafeDumper whose strings read back as the same strings under every reader."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if data.isprintable():
        pass  # the common case: no line break, control character, separator or BOM
    elif _DOUBLE_QUOTED_ONLY.search(data):
        style = '"'
    elif "\n" in data:
        style = "|"  # the emitter falls back to double quotes where a block cannot hold it
    return dumper.represent_scalar(_STR_TAG, data, style)


# The serializer writes a string plain only when it resolves back to a string; resolving
# these to another tag makes it quote them.
_Dumper.add_implicit_resolver(_AMBIGUOUS_TAG, _AMBIGUOUS, _AMBIGUOUS_FIRST)
_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(FrozenDict, yaml.SafeDumper.represent_dict)  # documents a cache shares
_Dumper.add_representer(FrozenList, yaml.SafeDumper.represent_list)


def dump_document(doc: dict[str, Any]) -> bytes:
    """Canonical YAML for one object: same input, same bytes. Keys sorted; a string is quoted
    when any reader could take its plain form for something else, double-quoted when it holds
    a character only double quotes keep, a literal block when it spans lines.

    The same bytes as `yaml.dump(doc, Dumper=_Dumper, ...)` (`_dump_with_pyyaml`), in half
    the time: PyYAML's representer dispatches every value through its type's MRO and an
    alias check, and the emitter resolves each scalar's tag through Python regexes; for the
    plain data of a document the nodes are built directly and tags are remembered. Dumping
    each request's own objects was ~20% of the writer lane (0.44 ms per small object,
    measured; 0.2 ms this way). A document of ordinary words and numbers is written directly
    (`_write_ordinary`), in a fifth of that again."""
    ordinary = _write_ordinary(doc)
    if ordinary is not None:
        return ordinary.encode()
    stream = io.StringIO()
    dumper = _FastDumper(stream, **_DUMP_OPTIONS)
    try:
        try:
            node = _node(dumper, doc, {})
        except _NotPlain:
            return _dump_with_pyyaml(doc)
        dumper.open()
        dumper.serialize(node)
        dumper.close()
    finally:
        dumper.dispose()
    return stream.getvalue().encode()


# What `_write_ordinary` writes itself: text of these characters, which the emitter writes
# plain, or single-quoted when plain it would read as something else (`'8.9.0'`, `'yes'`).
_ORDINARY_TEXT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_MAX_ORDINARY_KEY = 120  # the emitter writes a key of 128 characters or more as "? key"


class _NotOrdinary(Exception):
    """A value `_write_ordinary` leaves to the emitter."""


def _write_ordinary(doc: dict[str, Any]) -> str | None:
    """`doc` in the block style the emitter writes (sorted keys, sequences in a mapping not
    indented, empty containers as `{}` and `[]`), when it holds only ordinary text (see
    `_ORDINARY_TEXT`), integers, booleans and nulls, and no container twice; else None.
    Property-tested against PyYAML with the same dumper."""
    if not doc:
        return None
    lines: list[str] = []
    try:
        _ordinary_block(doc, "", lines, set())
    except _NotOrdinary:
        return None
    lines.append("")
    return "\n".join(lines)


def _ordinary_block(value: dict[str, Any] | list[Any], pad: str, lines: list[str],
                    seen: set[int]) -> None:
    """Lines of a non-empty mapping or sequence whose entries start at indentation `pad`."""
    if id(value) in seen:
        raise _NotOrdinary("a container met twice (written as an alias)")
    seen.add(id(value))
    if isinstance(value, dict):  # a FrozenDict too
        if not all(type(key) is str and len(key) <= _MAX_ORDINARY_KEY for key in value):
            raise _NotOrdinary("a key the emitter writes otherwise")
        for key in sorted(value):
            item = value[key]
            head = f"{pad}{_ordinary_scalar(key, seen)}:"
            if item and (type(item) in DICTS or type(item) in LISTS):
                lines.append(head)
                _ordinary_block(item, pad + "  " if type(item) in DICTS else pad, lines, seen)
            else:
                lines.append(f"{head} {_ordinary_scalar(item, seen)}")
        return
    for item in value:
        if item and (type(item) in DICTS or type(item) in LISTS):
            first = len(lines)
            _ordinary_block(item, pad + "  ", lines, seen)
            lines[first] = f"{pad}- {lines[first][len(pad) + 2:]}"
        else:
            lines.append(f"{pad}- {_ordinary_scalar(item, seen)}")


def _ordinary_scalar(value: Any, seen: set[int]) -> str:
    kind = type(value)
    if kind is str:
        if not _ORDINARY_TEXT.fullmatch(value):
            raise _NotOrdinary("text the emitter may quote or escape")
        return value if _plain_tag(value) == _STR_TAG else f"'{value}'"
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is int:
        text = str(value)
        if _plain_tag(text) != _SCALAR_TAGS[int]:
            raise _NotOrdinary("an integer whose digits read otherwise")
        return text
    if (kind in DICTS or kind in LISTS) and not value:
        if id(value) in seen:
            raise _NotOrdinary("a container met twice (written as an alias)")
        seen.add(id(value))
        return "{}" if kind in DICTS else "[]"
    raise _NotOrdinary(kind.__name__)


def _plain_tag(text: str) -> str:
    """The tag the dumper's resolvers give `text` written plain (remembered)."""
    tag: str = _TAGGER.resolve(yaml.ScalarNode, text, (True, False))
    return tag


_DUMP_OPTIONS: dict[str, Any] = {
    "default_flow_style": False, "allow_unicode": True, "width": 1 << 16, "sort_keys": True,
}


def _dump_with_pyyaml(doc: dict[str, Any]) -> bytes:
    text: str = yaml.dump(doc, Dumper=_Dumper, **_DUMP_OPTIONS)
    return text.encode()


def dump_in_order(doc: dict[str, Any]) -> bytes:
    """`dump_document`, but every mapping's keys in the order they have: for a document
    whose author signed the order (a SOPS file's MAC covers its values in file order)."""
    text: str = yaml.dump(doc, Dumper=_Dumper, **{**_DUMP_OPTIONS, "sort_keys": False})
    return text.encode()


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {bool: "tag:yaml.org,2002:bool", int: "tag:yaml.org,2002:int",
                type(None): "tag:yaml.org,2002:null"}
# Without path resolvers (none are added), a scalar's tag depends on its text and whether it
# may be plain alone: tags of scalars up to this long are remembered, reading and writing,
# as most scalars of a promise's requests repeat.
_REMEMBERED_SCALAR = 64


class _NotPlain(Exception):
    """A value `_node` does not build (PyYAML's own representer takes the document)."""


class _FastDumper(_Dumper):
    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode or len(value) > _REMEMBERED_SCALAR:
            return super().resolve(kind, value, implicit)
        return _WRITE_TAGS[(value, implicit[0])]  # remembered: see _REMEMBERED_SCALAR


def _node(dumper: _Dumper, data: Any, seen: dict[int, yaml.Node]) -> yaml.Node:
    """The node PyYAML's SafeRepresenter builds for `data` (sort_keys, block style): the same
    node for a dict or list met again (written as an alias), scalars as it represents them."""
    kind = type(data)
    if kind is str:
        return _represent_str(dumper, data)
    if kind in DICTS or kind in LISTS:
        node = seen.get(id(data))
        if node is not None:
            return node
        items: list[Any] = []
        node = (yaml.MappingNode(_MAP_TAG, items, flow_style=False) if kind in DICTS
                else yaml.SequenceNode(_SEQ_TAG, items, flow_style=False))
        seen[id(data)] = node
        if kind in DICTS:
            try:
                pairs = sorted(data.items())
            except TypeError:  # keys of several types: PyYAML leaves them unsorted
                raise _NotPlain("unsortable keys") from None
            for key, value in pairs:
                items.append((_node(dumper, key, seen), _node(dumper, value, seen)))
        else:
            items.extend(_node(dumper, value, seen) for value in data)
        return node
    if kind is bool:
        return yaml.ScalarNode(_SCALAR_TAGS[bool], "true" if data else "false")
    if kind is int:
        return yaml.ScalarNode(_SCALAR_TAGS[int], str(data))
    if data is None:
        return yaml.ScalarNode(_SCALAR_TAGS[type(None)], "null")
    if kind is float:
        float_node: yaml.Node = dumper.represent_float(data)
        return float_node
    raise _NotPlain(kind.__name__)


# Instances whose resolvers alone are used: a scalar's tag as written (plain or not) and as
# read, remembered for scalars up to _REMEMBERED_SCALAR characters.
_TAGGER = _FastDumper(io.StringIO())
_READER = _DeliveryLoader("")
_WRITE_TAGS: Memo[tuple[str, bool], str] = caches.memo(
    "scalar tags written",
    lambda key: _Dumper.resolve(_TAGGER, yaml.ScalarNode, key[0], (key[1], False)),
    caches.SCALAR_TAGS)
_READ_TAGS: Memo[tuple[str, bool], str] = caches.memo(
    "scalar tags read",
    lambda key: _READER._resolve(yaml.ScalarNode, key[0], (key[1], False)), caches.SCALAR_TAGS)
