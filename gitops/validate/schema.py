"""A compiled schema (`Node`) and `check`: one JSON value against it, the way the API server
checks it, every problem found at once.

Two kinds of schema compile to nodes, with the semantics of the part of the API server that
handles them:

- Custom resources (`compile_crd`): a CRD's structural `openAPIV3Schema`. The API server decodes
  the object, drops (prunes) fields the schema does not declare and non-nullable nulls, applies
  `default`s, then validates the result with kube-openapi (apiextensions-apiserver:
  pkg/apiserver/customresource_handler.go unstructuredSchemaCoercer, schema/pruning,
  schema/defaulting, schema/objectmeta, schema/listtype; kube-openapi pkg/validation/validate).
  Flux applies with server-side apply, whose typed conversion (structured-merge-diff
  typed/validate.go, from the schema as kube-openapi pkg/schemaconv converts it) refuses a field
  the schema does not declare: "field not declared in schema".
- Built-in kinds (`gitops.validate.builtin` builds their nodes): the Go types, decoded from JSON.
  Unknown fields, wrong JSON types and duplicate list-map keys are refused by the same typed
  conversion; values Go cannot decode (a quantity, an int-or-string, a time, base64) are refused
  by the decoding; enums and required fields are enforced by the Go validation code.

`check` walks only the value: everything about the schema (references, `type: [x, "null"]`,
formats, patterns, defaults) is settled when the node is compiled.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gitops import caches
from gitops.frozen import DICTS, LISTS, FrozenDict, FrozenList
from gitops.lru import LRU
from gitops.quoting import quoted
from gitops.validate import formats
from gitops.validate.findings import Finding, child, describe, index
from gitops.validate.goregex import compile_pattern
from gitops.validate.quantity import is_quantity

# JSON kinds, as bits
OBJECT, ARRAY, STRING, INTEGER, NUMBER, BOOLEAN = 1, 2, 4, 8, 16, 32
# FrozenDict and FrozenList: documents a cache shares between bundles (gitops.frozen)
_KIND_OF: Mapping[type, int] = {dict: OBJECT, FrozenDict: OBJECT, list: ARRAY, FrozenList: ARRAY,
                                str: STRING, int: INTEGER,
                                float: NUMBER, bool: BOOLEAN}
_TYPE_BITS: Mapping[str, int] = {"object": OBJECT, "array": ARRAY, "string": STRING,
                                 "integer": INTEGER, "number": NUMBER, "boolean": BOOLEAN}
_EXPECTED = ((OBJECT, "an object"), (ARRAY, "a list"), (STRING, "a string"),
             (INTEGER, "an integer"), (NUMBER, "a number"), (BOOLEAN, "true or false"))
_PY_TYPES: Mapping[int, tuple[type, ...]] = {OBJECT: DICTS, ARRAY: LISTS, STRING: (str,),
                                            INTEGER: (int,), NUMBER: (int, float), BOOLEAN: (bool,)}

# What happens to a field an object's schema does not declare
OPEN = 0  # kept: x-kubernetes-preserve-unknown-fields, a free-form object
DROPPED = 1  # pruned silently: accepted, but the cluster will not have it
REFUSED = 2  # server-side apply's typed conversion refuses it

# Values the API server decodes with Go code of its own (built-in kinds)
PLAIN, ANY, INT_OR_STRING, QUANTITY, TIME, MICRO_TIME, BYTES = range(7)

# The walk's shortcuts past _walk, for the commonest nodes (Node.quick): the scalar ones come
# before _QUICK_OBJECT
_QUICK_NONE, _QUICK_TYPE, _QUICK_INT, _QUICK_INT_OR_STRING, _QUICK_QUANTITY = range(5)
_QUICK_OBJECT, _QUICK_ARRAY = 5, 6

INT32 = (-(1 << 31), (1 << 31) - 1)
INT64 = (-(1 << 63), (1 << 63) - 1)
FLOAT32_MAX = 3.4028234663852886e38
UNDECLARED = "field not declared in schema"


class Node:
    """One compiled schema. Built by the compilers below and by `builtin`, then only read."""

    __slots__ = (
        "accepts", "additional", "all_of", "any_of", "builtin", "default", "embedded", "enum",
        "enum_keys", "exclusive_maximum", "exclusive_minimum", "format", "format_name", "has_default",
        "int_range", "items", "key_defaults", "list_type", "map_keys", "max_items", "max_length",
        "max_properties", "maximum", "min_items", "min_length", "min_properties", "minimum",
        "multiple_of", "name", "not_", "nullable", "one_of", "pattern", "pattern_source",
        "plain", "properties", "quick", "range_refused", "required", "required_errors", "resets",
        "special", "types", "unique_items", "unknown", "value_only",
    )

    def __init__(self, name: str = "") -> None:
        self.name = name  # where the schema comes from, for messages ("io.k8s.api.core.v1.Container")
        self.types = 0  # allowed JSON kinds; 0: any
        self.nullable = False
        self.special = PLAIN
        self.builtin = False  # a Go type: nulls decode to zero values, decoding rules apply
        self.value_only = False  # in allOf/anyOf/oneOf/not: value validations only
        self.has_default = False
        self.default: Any = None  # the value defaulting fills in (with has_default)
        self.enum: tuple[Any, ...] | None = None
        self.enum_keys: frozenset[Any] = frozenset()
        # objects
        self.properties: dict[str, Node] = {}
        self.additional: Node | None = None
        self.unknown = OPEN
        self.required: tuple[str, ...] = ()
        self.required_errors: frozenset[str] = frozenset()  # built-ins: missing is certainly refused
        self.min_properties: int | None = None
        self.max_properties: int | None = None
        self.embedded = False
        self.resets: frozenset[str] = frozenset()  # fields the API server resets (status)
        # lists
        self.items: Node | None = None
        self.list_type = ""
        self.map_keys: tuple[str, ...] = ()
        self.key_defaults: dict[str, Any] = {}
        self.min_items: int | None = None
        self.max_items: int | None = None
        self.unique_items = False
        # strings
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.pattern: Callable[[str], bool | None] | None = None
        self.pattern_source = ""
        self.format: Callable[[str], bool | None] | None = None
        self.format_name = ""
        # numbers
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.exclusive_minimum = False
        self.exclusive_maximum = False
        self.multiple_of: float | None = None
        self.int_range: tuple[int, int] | None = None
        self.range_refused = False  # out of int_range (or float32) is refused, not only warned
        # combinations (custom resources)
        self.all_of: tuple[Node, ...] = ()
        self.any_of: tuple[Node, ...] = ()
        self.one_of: tuple[Node, ...] = ()
        self.not_: Node | None = None
        # derived by finish(): a leaf whose only rule is its type, the Python types it takes, and
        # which shortcut the walk may take past _walk (one of the _QUICK_* below)
        self.plain = False
        self.accepts: frozenset[type] = frozenset()
        self.quick = _QUICK_NONE

    def finish(self) -> Node:
        """Derive the walk's shortcuts once the node is filled in."""
        scalar = self.types and not self.types & (OBJECT | ARRAY)
        self.plain = bool(
            scalar and self.special == PLAIN and self.enum is None and self.pattern is None
            and self.format is None and self.min_length is None and self.max_length is None
            and self.minimum is None and self.maximum is None and self.multiple_of is None
            and self.int_range is None and not self.range_refused
            and not (self.all_of or self.any_of or self.one_of)
            and self.not_ is None
        )
        self.accepts = frozenset(t for bit, py in _PY_TYPES.items() if self.types & bit for t in py)
        if self.enum is not None:
            self.enum_keys = frozenset(_scalar_key(value) for value in self.enum)
        self.quick = self._quick()
        return self

    def _quick(self) -> int:
        if self.plain:
            return _QUICK_TYPE
        if self.special == INT_OR_STRING:
            return _QUICK_INT_OR_STRING
        if self.special == QUANTITY:
            return _QUICK_QUANTITY
        if self.special or self.enum is not None or self.all_of or self.any_of or self.one_of \
                or self.not_ is not None:
            return _QUICK_NONE
        if self.types == INTEGER and self.int_range is not None and self.minimum is None \
                and self.maximum is None and self.multiple_of is None:
            return _QUICK_INT
        if self.types == OBJECT:
            return _QUICK_OBJECT
        if self.types == ARRAY:
            return _QUICK_ARRAY
        return _QUICK_NONE

    def copy(self) -> Node:
        twin = Node(self.name)
        for slot in Node.__slots__:
            setattr(twin, slot, getattr(self, slot))
        return twin


# --- checking -------------------------------------------------------------------------------


def check(value: Any, schema: Node, path: str = "") -> list[Finding]:
    """Every problem of `value` (as PyYAML or json loads it) against `schema`, errors and
    warnings, in document order."""
    out: list[Finding] = []
    if value is None:
        _null(schema, path, out, False, item=True)
    else:
        _walk(value, schema, path, out, False)
    return out


def _walk(value: Any, node: Node, path: str, out: list[Finding], reset: bool) -> None:
    """`reset`: inside a part the API server resets (status). Only what server-side apply's
    typed conversion checks is an error there; value validations do not run on it."""
    if node.special:
        _special(value, node, path, out, reset)
        return
    kind = _KIND_OF.get(type(value), 0)
    if not kind:
        out.append(Finding(path, f"{describe(value)} cannot be written as JSON", warning=True))
        return
    if node.types and not kind & node.types:
        kind = _mismatch(value, kind, node, path, out, reset)
        if not kind:
            return
    if kind == OBJECT:
        _object(value, node, path, out, reset)
    elif kind == ARRAY:
        _array(value, node, path, out, reset)
    elif not reset:
        if kind == STRING:
            _string(value, node, path, out)
        elif kind != BOOLEAN:
            _number(value, node, path, out)
    if reset:
        return
    if node.enum is not None:
        _enum(value, node, path, out)
    if node.all_of or node.any_of or node.one_of or node.not_ is not None:
        # the API server applies defaults before it validates (a oneOf that tells two kinds
        # of address apart by a `type` field with a default sees the default)
        _combinations(_defaulted(value, node), node, path, out)


def _defaulted(value: Any, node: Node) -> Any:
    """`value` with what defaulting fills in below `node`: a missing (or null, where not
    nullable) property that has a default takes it; parents are never created. A copy of
    the containers it changes, never `value` itself (it may be shared: gitops.frozen)."""
    if type(value) in DICTS:
        changed = False
        result = dict(value)
        for name, below in node.properties.items():
            current = result.get(name, _ABSENT)
            if below.has_default and (current is _ABSENT or (current is None and not below.nullable)):
                result[name] = copy.deepcopy(below.default)
                changed = True
            elif current is not _ABSENT and current is not None:
                filled = _defaulted(current, below)
                if filled is not current:
                    result[name], changed = filled, True
        return result if changed else value
    if type(value) in LISTS and node.items is not None:
        items = [_defaulted(item, node.items) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


_ABSENT = object()


def _mismatch(value: Any, kind: int, node: Node, path: str, out: list[Finding], reset: bool) -> int:
    """The kind to go on with when `value` is not of the node's types (0: reported)."""
    types = node.types
    scalar = kind not in (OBJECT, ARRAY)
    if kind == INTEGER and types & NUMBER:
        return NUMBER
    if kind == NUMBER and types & INTEGER:
        if value.is_integer():
            # 3.0 reaches the API server as 3 (Go's encoder writes whole floats without a
            # fraction), and an integral float passes both kube-openapi and Go's decoding
            return INTEGER
        if reset and not node.builtin:
            return NUMBER  # server-side apply's typed conversion has one numeric type
        if not node.builtin and _nearly_integer(value):
            out.append(Finding(path, f"must be an integer, not {describe(value)}: it may be taken "
                                     "for one (kube-openapi allows a relative error of 1e-9)",
                               warning=True))
            return 0
    if reset and not node.builtin and scalar and types & (types - 1):
        return kind  # int-or-string in a status: typed conversion takes any scalar
    out.append(Finding(path, f"must be {_expected(types)}, not {describe(value)}",
                       warning=reset and node.builtin and kind == NUMBER))
    return 0


def _object(value: dict[Any, Any], node: Node, path: str, out: list[Finding], reset: bool) -> None:
    properties = node.properties
    additional = node.additional
    resets = node.resets
    for name, item in value.items():
        if type(name) is not str:
            name = _go_key(name)
        declared = properties.get(name)
        below = declared if declared is not None else additional
        if below is None:
            if node.unknown == REFUSED:
                out.append(Finding(child(path, name), UNDECLARED))
            elif node.unknown == DROPPED:
                out.append(Finding(child(path, name), f"{UNDECLARED}: the API server drops it "
                                   "(pruning) without an error", warning=True))
            continue
        quick = below.quick
        if quick == _QUICK_TYPE:
            if type(item) in below.accepts:
                continue
        elif quick < _QUICK_OBJECT and quick and _passes(item, below):
            continue
        at = f"{path}.{name}" if declared is not None and path else name if declared is not None \
            else f"{path}[{name}]"
        if item is None:
            if name not in node.required and not (node.embedded and name in _TYPE_META):
                _null(below, at, out, reset, item=False)
        else:
            _descend(item, below, at, out, reset or name in resets)
    if reset:
        return
    if node.required:
        _required(value, node, path, out)
    if node.min_properties is not None and len(value) < node.min_properties:
        out.append(Finding(path, f"must have at least {node.min_properties} fields, not "
                                 f"{len(value)}"))
    if node.max_properties is not None and len(value) > node.max_properties:
        out.append(Finding(path, f"must have at most {node.max_properties} fields, not "
                                 f"{len(value)}"))
    if node.embedded:
        _embedded(value, path, out)


def _passes(item: Any, node: Node) -> bool:
    """Whether a scalar is certainly fine, decided without a call to _walk (most leaves)."""
    quick = node.quick
    kind = type(item)
    if quick == _QUICK_TYPE:
        return kind in node.accepts
    if quick == _QUICK_INT:
        low, high = node.int_range or INT64
        return kind is int and low <= item <= high
    if quick == _QUICK_INT_OR_STRING:
        return kind is str or (kind is int and INT32[0] <= item <= INT32[1])
    if quick == _QUICK_QUANTITY:
        return (kind is str and is_quantity(item)) or kind is int or kind is float
    return False


def _descend(item: Any, node: Node, path: str, out: list[Finding], reset: bool) -> None:
    """_walk, or straight to the object or list check when the node has no other rule."""
    quick = node.quick
    if quick == _QUICK_OBJECT and type(item) in DICTS:
        _object(item, node, path, out, reset)
    elif quick == _QUICK_ARRAY and type(item) in LISTS:
        _array(item, node, path, out, reset)
    else:
        _walk(item, node, path, out, reset)


def _required(value: dict[Any, Any], node: Node, path: str, out: list[Finding]) -> None:
    for name in node.required:
        below = node.properties.get(name)
        present = value.get(name, _MISSING)
        if node.builtin:
            if present is not None and present is not _MISSING:
                continue
            if name in node.required_errors:
                out.append(Finding(child(path, name), "required field is missing"))
            else:
                owner = node.name.rpartition(".")[2] or "this object"
                out.append(Finding(child(path, name), f"missing, and required by Kubernetes' schema "
                                   f"of {owner}: its validation may still accept that (not "
                                   "decided here)", warning=True))
            continue
        if below is not None and below.has_default:
            continue  # defaulting fills it (or replaces a non-nullable null) before validation
        if present is _MISSING:
            out.append(Finding(child(path, name), "required field is missing"))
        elif present is None and not (below is not None and below.nullable):
            out.append(Finding(child(path, name), "required field is null, which the API server "
                                                  "drops, leaving it missing"))


def _null(node: Node, path: str, out: list[Finding], reset: bool, item: bool) -> None:
    """A JSON null where `node` applies: a field's or map entry's value (item=False), or a list
    item, or the whole value (item=True)."""
    if node.builtin:
        if item and node.types & OBJECT and not reset:
            out.append(Finding(path, "null decodes to an empty object here, which Kubernetes' "
                                     "validation may refuse", warning=True))
        return
    if reset or node.has_default or not node.types:
        return
    if node.nullable:
        if node.enum is not None and not node.value_only:
            # kube-openapi's enum check skips null enum values: null never matches
            out.append(Finding(path, "null is not one of the values of its enum, even where the "
                                     "field is nullable"))
        return
    if node.value_only or item:
        out.append(Finding(path, f"must be {_expected(node.types)}, not null"))
    else:
        out.append(Finding(path, "null for a field that is not nullable: the API server drops "
                                 "it; server-side apply may refuse it", warning=True))


def _embedded(value: dict[Any, Any], path: str, out: list[Finding]) -> None:
    """x-kubernetes-embedded-resource: apiVersion and kind are required strings, the kind a
    DNS-1035 label once lowered (schema/objectmeta/validation.go validateEmbeddedResource)."""
    api_version = value.get("apiVersion", _MISSING)
    kind = value.get("kind", _MISSING)
    for name, given in (("apiVersion", api_version), ("kind", kind)):
        if given is _MISSING:
            out.append(Finding(child(path, name), "required field is missing"))
        elif given is None:
            out.append(Finding(child(path, name), "must be a string, not null"))
        elif given == "":
            out.append(Finding(child(path, name), "must not be empty"))
    if type(api_version) is str and api_version.count("/") > 1:
        out.append(Finding(child(path, "apiVersion"), "must be a version or group/version "
                                                      f"(with one '/'), not {describe(api_version)}"))
    if type(kind) is str and kind and not _dns1035(kind.lower()):
        out.append(Finding(child(path, "kind"), "must be a DNS-1035 label once lowered: at most 63 "
                                                "letters, digits and '-', starting with a letter"))


def _array(value: list[Any], node: Node, path: str, out: list[Finding], reset: bool) -> None:
    items = node.items
    if items is not None:
        for number, item in enumerate(value):
            if item is None:
                if node.list_type not in ("set", "map"):  # those report it with their rule
                    _null(items, f"{path}[{number}]", out, reset, item=True)
            elif not (type(item) in items.accepts if items.quick == _QUICK_TYPE
                      else items.quick < _QUICK_OBJECT and _passes(item, items)):
                _descend(item, items, f"{path}[{number}]", out, reset)
    if node.list_type == "set":
        _set(value, path, out)
    elif node.list_type == "map":
        _list_map(value, node, path, out, reset)
    if reset:
        return
    if node.min_items is not None and len(value) < node.min_items:
        out.append(Finding(path, f"must have at least {node.min_items} items, not {len(value)}"))
    if node.max_items is not None and len(value) > node.max_items:
        out.append(Finding(path, f"must have at most {node.max_items} items, not {len(value)}"))
    if node.unique_items:
        seen: set[Any] = set()
        for number, item in enumerate(value):
            marker = _json_key(item)
            if marker in seen:
                out.append(Finding(index(path, number), "duplicate item: the items must be unique"))
            seen.add(marker)


def _set(value: list[Any], path: str, out: list[Finding]) -> None:
    """x-kubernetes-list-type: set. Typed conversion refuses a null item and a repeated one;
    it also refuses an object or list item (its TODO says it may not in future, so: warned)."""
    seen: set[Any] = set()
    for number, item in enumerate(value):
        at = index(path, number)
        if item is None:
            out.append(Finding(at, "a list of type set may not hold null"))
            continue
        if isinstance(item, dict | list):
            out.append(Finding(at, "a list of type set should hold only scalars: server-side "
                                   "apply refuses an object or list in it", warning=True))
            continue
        marker = _scalar_key(item)
        if marker in seen:
            out.append(Finding(at, f"duplicate {describe(item)} in a list of type set"))
        seen.add(marker)


def _list_map(value: list[Any], node: Node, path: str, out: list[Finding], reset: bool) -> None:
    """x-kubernetes-list-type: map. Every item is an object, identified by its key fields (a
    missing one takes its default, or is left out of the key); no two items share a key."""
    keys = node.map_keys
    items = node.items
    required = items.required if items is not None and not reset else ()
    seen: set[Any] = set()
    for number, item in enumerate(value):
        at = index(path, number)
        if not isinstance(item, dict):
            if item is None:
                out.append(Finding(at, "a list of type map may not hold null"))
            elif items is None or not items.types or items.types & OBJECT == 0:
                out.append(Finding(at, f"must be an object (the list is of type map), not "
                                       f"{describe(item)}"))
            continue  # a wrong type was reported by the item's own check
        identity = []
        for name in keys:
            if name in item:
                identity.append((name, _json_key(item[name])))
            elif name in node.key_defaults:
                identity.append((name, _json_key(node.key_defaults[name])))
        if not identity:
            if not all(name in required for name in keys):
                # built-in schemas here lack the defaults of key fields (a port's protocol)
                out.append(Finding(at, "has none of the key fields of its list "
                                       f"({', '.join(keys)}), so cannot be told from the others",
                                   warning=node.builtin))
            continue
        marker = tuple(identity)
        if marker in seen:
            shown = ",".join(f"{name}={json.dumps(item.get(name, node.key_defaults.get(name)))}"
                             for name in keys if name in item or name in node.key_defaults)
            out.append(Finding(at, f"duplicate entry for key [{shown}]"))
        seen.add(marker)


def _string(value: str, node: Node, path: str, out: list[Finding]) -> None:
    if node.max_length is not None and len(value) > node.max_length:
        out.append(Finding(path, f"may not be longer than {node.max_length} characters, not "
                                 f"{len(value)}"))
    if node.min_length is not None and len(value) < node.min_length:
        out.append(Finding(path, f"must be at least {node.min_length} characters long"))
    if node.pattern is not None:
        matched = node.pattern(value)
        if matched is None:
            out.append(Finding(path, f"the pattern {quoted(node.pattern_source)} cannot be checked here",
                               warning=True))
        elif not matched:
            out.append(Finding(path, f"must match the pattern {quoted(node.pattern_source)}, not "
                                     f"{describe(value)}"))
    if node.format is not None:
        valid = node.format(value)
        if valid is None:
            out.append(Finding(path, f"whether {describe(value)} is a valid {node.format_name} "
                                     "cannot be decided here", warning=True))
        elif not valid:
            out.append(Finding(path, f"must be a valid {node.format_name}, not {describe(value)}"))


def _number(value: float, node: Node, path: str, out: list[Finding]) -> None:
    if node.minimum is not None and (value < node.minimum or (node.exclusive_minimum
                                     and value == node.minimum)):
        relation = "greater than" if node.exclusive_minimum else "greater than or equal to"
        out.append(Finding(path, f"must be {relation} {_number_text(node.minimum)}, not "
                                 f"{_number_text(value)}"))
    if node.maximum is not None and (value > node.maximum or (node.exclusive_maximum
                                     and value == node.maximum)):
        relation = "less than" if node.exclusive_maximum else "less than or equal to"
        out.append(Finding(path, f"must be {relation} {_number_text(node.maximum)}, not "
                                 f"{_number_text(value)}"))
    if node.multiple_of is not None:
        _multiple(value, node.multiple_of, path, out)
    if node.int_range is not None:
        low, high = node.int_range
        if not low <= value <= high:
            bits = 32 if high == INT32[1] else 64
            if node.range_refused:
                out.append(Finding(path, f"must fit in a {bits}-bit integer, not "
                                         f"{_number_text(value)}"))
            else:
                wrapped = _wrap(int(value), bits)
                out.append(Finding(path, f"does not fit in a {bits}-bit integer: server-side apply "
                                         f"stores it as {wrapped}, other requests refuse it",
                                   warning=True))
    elif node.range_refused and abs(value) > FLOAT32_MAX:
        out.append(Finding(path, f"must fit in a 32-bit float, not {_number_text(value)}"))


def _multiple(value: float, factor: float, path: str, out: list[Finding]) -> None:
    """kube-openapi MultipleOf: exact for integers, within 1e-9 for floats."""
    if factor <= 0:
        return
    if isinstance(value, int) and float(factor).is_integer():
        if value % int(factor) == 0:
            return
        out.append(Finding(path, f"must be a multiple of {_number_text(factor)}"))
        return
    ratio = value * (1 / factor) if factor < 1 else value / factor
    if float(ratio).is_integer():
        return
    out.append(Finding(path, f"must be a multiple of {_number_text(factor)}",
                       warning=_nearly_integer(ratio)))


def _enum(value: Any, node: Node, path: str, out: list[Finding]) -> None:
    """kube-openapi converts the value to each enum value's Go type before comparing; for JSON
    that means numbers compare by value, a float against an integer after truncation."""
    if _scalar_key(value) in node.enum_keys:
        return
    assert node.enum is not None
    if type(value) is float and _scalar_key(float(math.trunc(value))) in node.enum_keys:
        return
    shown = ", ".join(_enum_text(allowed) for allowed in node.enum[:8])
    more = ", ..." if len(node.enum) > 8 else ""
    if node.builtin and value == "":
        out.append(Finding(path, f"the empty string is not one of {shown}{more}: Kubernetes often "
                                 "takes it as unset and uses its default", warning=True))
        return
    out.append(Finding(path, f"must be one of {shown}{more}, not {_enum_text(value)}"))


def _combinations(value: Any, node: Node, path: str, out: list[Finding]) -> None:
    """allOf, anyOf, oneOf and not, as kube-openapi's schemaPropsValidator; a sub-schema whose
    check was not decided (warnings only) makes the result undecided."""
    for below in node.all_of:
        out.extend(_alternative(value, below, path))
    if node.any_of:
        results = []
        for below in node.any_of:
            found = _alternative(value, below, path)
            if not found:
                break
            results.append(found)
        else:
            undecided = any(_only_warnings(found) for found in results)
            out.append(Finding(path, "must match at least one of the schemas of anyOf"
                                     f"{_first_reason(results)}", warning=undecided))
    if node.one_of:
        results = [_alternative(value, below, path) for below in node.one_of]
        passed = sum(1 for found in results if not found)
        unsure = sum(1 for found in results if found and _only_warnings(found))
        if passed > 1:
            out.append(Finding(path, f"must match exactly one of the schemas of oneOf, not {passed}"))
        elif passed == 0:
            out.append(Finding(path, "must match exactly one of the schemas of oneOf, not none"
                                     f"{_first_reason(results)}", warning=unsure > 0))
        elif unsure:
            out.append(Finding(path, "may match more than one of the schemas of oneOf",
                               warning=True))
    if node.not_ is not None:
        found = _alternative(value, node.not_, path)
        if not found:
            out.append(Finding(path, "must not match the schema of not"))
        elif _only_warnings(found):
            out.append(Finding(path, "may match the schema of not", warning=True))


def _alternative(value: Any, below: Node, path: str) -> list[Finding]:
    """check() of one sub-schema, with a shortcut for those that only name a type (anyOf
    [{type: integer}, {type: string}] under x-kubernetes-int-or-string)."""
    if below.plain and not (type(value) is float and below.types & INTEGER):
        if type(value) in below.accepts:
            return []
        return [Finding(path, f"must be {_expected(below.types)}")]
    return check(value, below, path)


def _special(value: Any, node: Node, path: str, out: list[Finding], reset: bool) -> None:
    """Values built-in kinds decode with Go code of their own (k8s.io/apimachinery: intstr,
    resource.Quantity, metav1.Time and MicroTime; encoding/json for []byte)."""
    special = node.special
    kind = type(value)
    if special == ANY:
        return
    if special == INT_OR_STRING:
        if kind is str:
            return
        if kind is int or (kind is float and value.is_integer()):
            if INT32[0] <= value <= INT32[1]:
                return
            reason = f"must be a string or a 32-bit integer, not {_number_text(value)}"
        else:
            reason = f"must be an integer or a string, not {describe(value)}"
    elif special == QUANTITY:
        if kind is int or kind is float or (kind is str and is_quantity(value)):
            return
        reason = (f"must be a quantity such as 500m, 0.5, 1Gi or 1e3 (digits, an optional "
                  f"fraction and one suffix of n u m k M G T P E Ki Mi Gi Ti Pi Ei or an exponent), "
                  f"not {describe(value)}")
    elif special in (TIME, MICRO_TIME):
        if kind is str:
            valid = formats.is_rfc3339_time(value, micro=special == MICRO_TIME)
            if valid:
                return
            if valid is None:
                out.append(Finding(path, f"{describe(value)} has a time zone offset only some "
                                         "Kubernetes versions accept", warning=True))
                return
        layout = "2024-01-31T12:00:00.000000Z" if special == MICRO_TIME else "2024-01-31T12:00:00Z"
        reason = f"must be an RFC 3339 time such as {layout}, not {describe(value)}"
    else:  # BYTES
        if kind is str:
            if _is_base64(value):
                return
            reason = f"must be base64 (standard alphabet, padded), not {describe(value)}"
        else:
            reason = f"must be a base64 string, not {describe(value)}"
    # In a status, only typed conversion's check counts: these are scalars to it (the value an
    # object or a list is refused), and what Go then decodes is reset anyway.
    out.append(Finding(path, reason, warning=reset and kind is not dict and kind is not list))


# --- helpers --------------------------------------------------------------------------------

_MISSING: Any = object()
_TYPE_META = ("apiVersion", "kind")
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _is_base64(text: str) -> bool:
    """encoding/json decodes []byte with base64.StdEncoding, which skips \\r and \\n and wants
    the padding."""
    body = text.replace("\r", "").replace("\n", "")
    if len(body) % 4:
        return False
    stripped = body[:-2] + body[-2:].rstrip("=") if body else body
    return all(ch in _BASE64 for ch in stripped) and len(body) - len(stripped) <= 2


def _expected(types: int) -> str:
    text = _EXPECTED_TEXT.get(types)
    if text is None:
        shown = types & ~INTEGER if types & INTEGER and types & NUMBER else types
        text = _EXPECTED_TEXT[types] = " or ".join(name for bit, name in _EXPECTED
                                                   if shown & bit) or "a value"
    return text


_EXPECTED_TEXT: dict[int, str] = {}


def _scalar_key(value: Any) -> Any:
    """A value's identity as Go compares decoded JSON scalars: true is not 1, 1.0 is 1."""
    kind = type(value)
    if kind is bool or kind is str:
        return (kind.__name__, value)
    if kind is int or kind is float:
        return ("number", value)
    return ("json", _json_text(value))


def _json_key(value: Any) -> Any:
    return _scalar_key(value) if not isinstance(value, dict | list) else ("json", _json_text(value))


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _go_key(name: Any) -> str:
    """A non-string YAML key as sigs.k8s.io/yaml turns it into a JSON key."""
    if name is True or name is False:
        return "true" if name else "false"
    return "null" if name is None else str(name)


def _nearly_integer(number: float) -> bool:
    if not math.isfinite(number):
        return False
    nearest = round(number)
    return abs(number - nearest) <= 1e-9 * max(abs(number), 1.0)


def _wrap(number: int, bits: int) -> int:
    """Go's conversion of an int64 to a narrower signed integer: the low bits."""
    number &= (1 << bits) - 1
    return number - (1 << bits) if number >= 1 << (bits - 1) else number


def _number_text(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)


def _enum_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else _json_text(value)


def _only_warnings(found: Iterable[Finding]) -> bool:
    return all(finding.warning for finding in found)


def _first_reason(results: list[list[Finding]]) -> str:
    for found in results:
        for finding in found:
            if not finding.warning:
                where = f"{finding.path}: " if finding.path else ""
                return f" (the first: {where}{finding.reason})"
    return ""


def _dns1035(text: str) -> bool:
    return (len(text) <= 63 and text[:1].isascii() and text[:1].isalpha()
            and all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in text)
            and text[-1] != "-" and text == text.lower())


# --- compiling custom resource schemas ------------------------------------------------------


def compile_crd(
    schema: Mapping[str, Any],
    kubernetes: tuple[int, int] = (1, 37),
    *,
    status_subresource: bool = False,
    object_meta: Node | None = None,
) -> Node:
    """The node of a CRD version's `openAPIV3Schema` for an API server of version `kubernetes`
    (formats and int32 ranges depend on it). With `status_subresource`, the API server resets
    `status` on create and update, so only its shape is checked. `object_meta` is ObjectMeta's
    node (builtin.object_meta): with it, `metadata` (of the object and of embedded resources)
    is checked as server-side apply does; without it, any object is taken."""
    compiler = _CrdCompiler(kubernetes, object_meta)
    root = compiler.node(schema, inherited=False, value_only=False, resource=True)
    if status_subresource and "status" in root.properties:
        root.resets = frozenset({"status"})
    return root


def cached_crd(
    schema: Mapping[str, Any],
    kubernetes: tuple[int, int] = (1, 37),
    *,
    status_subresource: bool = False,
    object_meta: Node | None = None,
) -> Node:
    """`compile_crd`, remembered by the schema's content: the same CRD sent again in another
    bundle is compiled once."""
    digest = hashlib.sha256(json.dumps(schema, sort_keys=True, default=str).encode()).digest()
    cache_key = (digest, kubernetes, status_subresource, id(object_meta))
    compiled = _COMPILED.get(cache_key)
    if compiled is None:
        compiled = compile_crd(schema, kubernetes, status_subresource=status_subresource,
                               object_meta=object_meta)
        _COMPILED.put(cache_key, compiled)
    return compiled


_COMPILED: LRU[tuple[bytes, tuple[int, int], bool, int], Node] = caches.lru(
    "crd schemas", caches.CRD_SCHEMAS)


class _CrdCompiler:
    def __init__(self, kubernetes: tuple[int, int], object_meta: Node | None) -> None:
        self.kubernetes = kubernetes
        self.object_meta = object_meta

    def node(self, raw: Any, inherited: bool, value_only: bool, resource: bool = False,
             kept: bool = False) -> Node:
        """`inherited`: an ancestor preserves unknown fields, which server-side apply's typed
        conversion carries down to every nested object (kube-openapi schemaconv), while pruning
        does not: an undeclared field there is dropped, not refused. `kept`: an item of a list
        that preserves unknown fields, whose own unknown fields pruning keeps (skipPrune)."""
        node = Node()
        if not isinstance(raw, Mapping):
            return node.finish()  # `true`, or a malformed schema: anything goes
        node.value_only = value_only
        preserve = raw.get("x-kubernetes-preserve-unknown-fields") is True or kept
        inherited = inherited or preserve
        kind = raw.get("type")
        if raw.get("x-kubernetes-int-or-string") is True:
            node.types = INTEGER | STRING
        elif isinstance(kind, str) and kind in _TYPE_BITS:
            node.types = _TYPE_BITS[kind]
        node.nullable = raw.get("nullable") is True
        node.has_default = "default" in raw
        node.default = raw.get("default")
        if isinstance(raw.get("enum"), list):
            node.enum = tuple(raw["enum"])
        self._strings(raw, node, kind)
        self._numbers(raw, node, kind)
        self._objects(raw, node, inherited, value_only, preserve, resource)
        self._lists(raw, node, inherited, value_only, preserve)
        self._combinations(raw, node, inherited)
        return node.finish()

    def _strings(self, raw: Mapping[str, Any], node: Node, kind: Any) -> None:
        node.min_length = _count(raw.get("minLength"))
        node.max_length = _count(raw.get("maxLength"))
        pattern = raw.get("pattern")
        if isinstance(pattern, str) and pattern:
            node.pattern = compile_pattern(pattern)
            node.pattern_source = pattern
        name = raw.get("format")
        if isinstance(name, str) and name and kind in (None, "string"):
            node.format = formats.crd_format(name, self.kubernetes)
            node.format_name = name if node.format is not None else ""

    def _numbers(self, raw: Mapping[str, Any], node: Node, kind: Any) -> None:
        node.minimum = _numeric(raw.get("minimum"))
        node.maximum = _numeric(raw.get("maximum"))
        node.exclusive_minimum = raw.get("exclusiveMinimum") is True
        node.exclusive_maximum = raw.get("exclusiveMaximum") is True
        node.multiple_of = _numeric(raw.get("multipleOf"))
        if self.kubernetes < (1, 36):
            return  # kube-openapi checks numeric formats from Kubernetes 1.36 (numberValidator)
        name = raw.get("format")
        if kind == "integer" and name == "int32":
            node.int_range, node.range_refused = INT32, True
        elif kind == "number" and name == "float":
            node.range_refused = True

    def _objects(self, raw: Mapping[str, Any], node: Node, inherited: bool, value_only: bool,
                 preserve: bool, resource: bool) -> None:
        properties = raw.get("properties")
        if isinstance(properties, Mapping):
            node.properties = {str(name): self.node(below, inherited, value_only)
                               for name, below in properties.items()}
        additional = raw.get("additionalProperties")
        if isinstance(additional, Mapping):
            node.additional = self.node(additional, inherited, value_only)
        required = raw.get("required")
        if isinstance(required, list):
            node.required = tuple(str(name) for name in required)
        node.min_properties = _count(raw.get("minProperties"))
        node.max_properties = _count(raw.get("maxProperties"))
        embedded = raw.get("x-kubernetes-embedded-resource") is True and not value_only
        node.embedded = embedded
        if resource or embedded:
            self._type_meta(node, raw)
        if value_only or preserve or additional is True or node.additional is not None:
            node.unknown = OPEN
        elif additional is False:
            node.unknown = REFUSED
        elif inherited or not node.properties:
            node.unknown = DROPPED
        else:
            node.unknown = REFUSED

    def _type_meta(self, node: Node, raw: Mapping[str, Any]) -> None:
        """apiVersion, kind and metadata are always declared for server-side apply at the root
        and in embedded resources (apiextensions' openapi builder), with ObjectMeta's schema for
        metadata; pruning keeps them there."""
        for name in ("apiVersion", "kind"):
            if name not in node.properties:
                node.properties[name] = _string_node()
        meta = self.object_meta if self.object_meta is not None else _object_node()
        if "metadata" in node.properties:
            meta = meta.copy()  # the CRD's own rules on metadata (a name's length) still apply
            meta.all_of = (self.node(raw["properties"]["metadata"], False, True),)
            meta.finish()
        node.properties["metadata"] = meta

    def _lists(self, raw: Mapping[str, Any], node: Node, inherited: bool, value_only: bool,
               preserve: bool) -> None:
        items = raw.get("items")
        if isinstance(items, Mapping):
            node.items = self.node(items, inherited, value_only, kept=preserve)
        node.min_items = _count(raw.get("minItems"))
        node.max_items = _count(raw.get("maxItems"))
        node.unique_items = raw.get("uniqueItems") is True
        if value_only:
            return  # list types are structural: sub-schemas do not have them
        list_type = raw.get("x-kubernetes-list-type")
        if list_type in ("set", "map"):
            node.list_type = list_type
        keys = raw.get("x-kubernetes-list-map-keys")
        if list_type == "map" and isinstance(keys, list):
            node.map_keys = tuple(str(name) for name in keys)
            declared = raw["items"].get("properties", {}) if isinstance(items, Mapping) else {}
            node.key_defaults = {name: declared[name]["default"] for name in node.map_keys
                                 if isinstance(declared.get(name), Mapping)
                                 and "default" in declared[name]}

    def _combinations(self, raw: Mapping[str, Any], node: Node, inherited: bool) -> None:
        for word, slot in (("allOf", "all_of"), ("anyOf", "any_of"), ("oneOf", "one_of")):
            below = raw.get(word)
            if isinstance(below, list) and below:
                setattr(node, slot, tuple(self.node(each, inherited, True) for each in below))
        if isinstance(raw.get("not"), Mapping):
            node.not_ = self.node(raw["not"], inherited, True)


def _string_node() -> Node:
    node = Node()
    node.types = STRING
    return node.finish()


def _object_node() -> Node:
    node = Node()
    node.types = OBJECT
    return node.finish()


def _count(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _numeric(value: Any) -> float | None:
    return value if type(value) in (int, float) else None
