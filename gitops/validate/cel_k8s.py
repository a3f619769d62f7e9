"""Kubernetes' CEL environment for celpy: the operators and libraries the API server adds to
plain CEL, written so that a value we cannot judge the way Kubernetes does becomes an
`unsupported` error (a warning) rather than a guess.

What the API server's environment has (apiserver/pkg/cel/environment/base.go) and celpy
lacks or does differently:

- heterogeneous equality and cross-type numeric comparisons (`CrossTypeNumericComparisons`):
  `dyn(1) == 1.0` is true, `1 == 'a'` false, `1 < 1.5` true; celpy raises for all three;
- list-type-aware values (common/values.go): lists with `x-kubernetes-list-type: map` or
  `set` compare without regard to order, and `+` merges them by key or value;
- the libraries: lists, regex, urls, quantity, ip, cidr, format, sets, optional (the
  functions, not the `.?` syntax, which celpy cannot parse) and cel-go's strings extension
  (version 2). Not here, so a warning: semver, image, authz, two-variable comprehensions,
  `cel.bind`, math.

Every function charges the evaluation budget (`charge`) in proportion to the size of what it
reads, so a rule cannot spend unbounded CPU inside one call."""

from __future__ import annotations

import contextvars
import ipaddress
import itertools
import math
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, cast

import re2
from celpy import celtypes
from celpy.evaluation import CELEvalError

from gitops import caches
from gitops.lru import Memo
from gitops.quoting import quoted

Value = Any  # a celpy value: celtypes, None, or one of the opaque classes below
Function = Callable[..., Value]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class K8sError(Exception):
    """An evaluation error Kubernetes raises in the same case: reported as invalid."""


class Unsupported(Exception):
    """A call statewriter cannot evaluate as Kubernetes does: a warning."""


class CostExceeded(Exception):
    """The rule spent more than its share of statewriter's evaluation budget. Not a
    CELEvalError, so celpy's short-circuit operators and macros cannot swallow it."""


def k8s_error(message: str) -> CELEvalError:
    return CELEvalError(message, K8sError, (message,))


def unsupported(message: str) -> CELEvalError:
    return CELEvalError(message, Unsupported, (message,))


class Budget:
    """Evaluation steps left: the evaluator spends one per syntax node it visits, the
    library functions one per element or per 64 characters they read."""

    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise CostExceeded("evaluation cost above statewriter's bound")


BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("cel_budget", default=None)


def charge(steps: int) -> None:
    budget = BUDGET.get()
    if budget is not None:
        budget.spend(steps)


def _size_cost(value: Value) -> int:
    if isinstance(value, (str, bytes)):
        return 1 + len(value) // 64
    if isinstance(value, (list, dict)):
        return 1 + len(value)
    return 1


def _bool(value: bool) -> celtypes.BoolType:
    return celtypes.BoolType(value)


# ----------------------------------------------------------------------------- equality

def _is_number(value: Value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, (bool, celtypes.BoolType))


_SCALARS: tuple[type, ...] = (
    celtypes.StringType, celtypes.BytesType, celtypes.TimestampType, celtypes.DurationType,
)


def equal(a: Value, b: Value) -> bool:
    """CEL's heterogeneous equality (cel-go `types.Equal`): numbers compare by value across
    int, uint and double; values of different kinds are unequal, never an error."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, celtypes.BoolType) or isinstance(b, celtypes.BoolType):
        return isinstance(a, celtypes.BoolType) and isinstance(b, celtypes.BoolType) and bool(a) == bool(b)
    if _is_number(a) and _is_number(b):
        return bool(_plain(a) == _plain(b))
    for kind in _SCALARS:
        if isinstance(a, kind) or isinstance(b, kind):
            return isinstance(a, kind) and isinstance(b, kind) and bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        charge(1 + len(a))
        if isinstance(a, (MapList, SetList)):
            return a.equals(b)
        if isinstance(b, (MapList, SetList)):
            return b.equals(a)
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        charge(1 + len(a))
        if len(a) != len(b):
            return False
        for key, value in a.items():
            other = _map_find(b, key)
            if other is _ABSENT or not equal(value, other):
                return False
        return True
    if isinstance(a, celtypes.TypeType) or isinstance(b, celtypes.TypeType):
        return bool(a == b)
    if type(a) is type(b):
        return bool(a == b)
    return False


_ABSENT = object()


def _map_find(mapping: dict[Value, Value], key: Value) -> Value:
    """A map's value by CEL key equality (1 and 1u and 1.0 are one key)."""
    if key in mapping and not isinstance(key, celtypes.BoolType):
        for existing in mapping:
            if equal(existing, key):
                return mapping[existing]
    for existing, value in mapping.items():
        if equal(existing, key):
            return value
    return _ABSENT


class MapList(celtypes.ListType):
    """A list with `x-kubernetes-list-type: map`: equal to another list holding the same
    entries by key in any order; `+` overwrites entries by key and appends new ones
    (apiserver common/values.go, unstructuredMapList)."""

    keys: tuple[str, ...] = ()

    def key_of(self, item: Value) -> tuple[Value, ...]:
        if not isinstance(item, dict):
            return (id(item),)
        return tuple(_hashable(item.get(celtypes.StringType(k))) for k in self.keys)

    def equals(self, other: list[Value]) -> bool:
        if len(self) != len(other):
            return False
        mine = {self.key_of(item): item for item in self}
        for item in other:
            found = mine.get(self.key_of(item), _ABSENT)
            if found is _ABSENT or not equal(found, item):
                return False
        return True

    def merged(self, other: list[Value]) -> MapList:
        items = list(self)
        where = {self.key_of(item): i for i, item in enumerate(items)}
        for item in other:
            key = self.key_of(item)
            if key in where:
                items[where[key]] = item
            else:
                where[key] = len(items)
                items.append(item)
        result = MapList(items)
        result.keys = self.keys
        return result


class SetList(celtypes.ListType):
    """A list with `x-kubernetes-list-type: set`: equal to a list of the same size whose
    every element it holds; `+` appends the elements it lacks (unstructuredSetList)."""

    def equals(self, other: list[Value]) -> bool:
        if len(self) != len(other):
            return False
        mine = {_hashable(item) for item in self}
        return all(_hashable(item) in mine for item in other)

    def merged(self, other: list[Value]) -> SetList:
        items = list(self)
        seen = {_hashable(item) for item in items}
        for item in other:
            if _hashable(item) not in seen:
                seen.add(_hashable(item))
                items.append(item)
        return SetList(items)


def _hashable(value: Value) -> Value:
    """Go compares set elements and map-list keys as interface values: the type counts."""
    if isinstance(value, (list, dict)):
        return (type(value).__name__, repr(value))
    return (type(value).__name__, value)


def op_eq(a: Value, b: Value) -> Value:
    return _bool(equal(a, b))


def op_ne(a: Value, b: Value) -> Value:
    return _bool(not equal(a, b))


def _plain(number: Value) -> int | float:
    """celpy's numeric types refuse to meet each other; Python's int and float compare
    exactly, as cel-go's cross-type comparisons do."""
    return float(number) if isinstance(number, float) else int(number)


def _ordered(a: Value, b: Value) -> bool:
    if _is_number(a) and _is_number(b):
        return True
    return any(isinstance(a, kind) and isinstance(b, kind) for kind in (celtypes.BoolType, *_SCALARS))


def _comparison(test: Callable[[Value, Value], bool]) -> Function:
    def compare(a: Value, b: Value) -> Value:
        if not _ordered(a, b):
            return unsupported(f"no such overload: {type(a).__name__} compared with {type(b).__name__}")
        charge(_size_cost(a))
        if _is_number(a):
            return _bool(test(_plain(a), _plain(b)))
        return _bool(test(a, b))
    return _propagating(compare)


def _propagating(function: Function) -> Function:
    """celpy hands an operand's error to the operator's function: pass it on, as CEL does."""
    def run(*args: Value) -> Value:
        for arg in args:
            if isinstance(arg, CELEvalError):
                return arg
        return function(*args)
    return run


def op_in(item: Value, container: Value) -> Value:
    charge(_size_cost(container))
    if isinstance(container, list):
        return _bool(any(equal(item, element) for element in container))
    if isinstance(container, dict):
        return _bool(_map_find(container, item) is not _ABSENT)
    return unsupported(f"no such overload: in {type(container).__name__}")


def op_add(a: Value, b: Value) -> Value:
    charge(_size_cost(a) + _size_cost(b))
    if isinstance(a, (MapList, SetList)) and isinstance(b, list):
        return a.merged(b)
    if isinstance(a, list) and isinstance(b, list):
        return celtypes.ListType([*a, *b])
    if isinstance(a, Quantity) or isinstance(b, Quantity):
        return unsupported("no such overload: + on quantities")
    return a + b


# ----------------------------------------------------------------------------- optional

class Optional:
    """cel-go's optional value (`optional.of`, `optional.none`, `hasValue`, `value`,
    `orValue`, `or`): what `optionalOldSelf` binds `oldSelf` to, and what the format library
    returns. The `.?` and `[?` syntax is not parsed by celpy, so rules using it warn."""

    __slots__ = ("item", "present")

    def __init__(self, item: Value = None, present: bool = False) -> None:
        self.present = present
        self.item = item

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Optional):
            return False
        return self.present == other.present and (not self.present or equal(self.item, other.item))

    def __hash__(self) -> int:
        return hash(self.present)

    def __repr__(self) -> str:
        return f"optional.of({self.item!r})" if self.present else "optional.none()"


NONE = Optional()


def _zero(value: Value) -> bool:
    if isinstance(value, (str, bytes, list, dict)):
        return len(value) == 0
    if value is None:
        return True
    if isinstance(value, (int, float)):
        return value == 0
    if isinstance(value, celtypes.DurationType):
        return value.total_seconds() == 0
    return False


def opt_has_value(opt: Optional) -> Value:
    return _bool(opt.present)


def opt_value(opt: Optional) -> Value:
    if not opt.present:
        return k8s_error("optional.none() dereference")
    return opt.item


def opt_or_value(opt: Optional, default: Value) -> Value:
    return opt.item if opt.present else default


def opt_or(opt: Optional, other: Optional) -> Value:
    return opt if opt.present else other


# ----------------------------------------------------------------------------- namespaces

class Namespace:
    """`strings`, `format`, `optional`, `sets`, `ip`, `cidr`: celpy parses `strings.quote(x)`
    as a method call on a variable, so each namespace is a variable whose methods are the
    namespaced functions."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NAMESPACES = {name: Namespace(name) for name in ("strings", "format", "optional", "sets", "ip", "cidr")}


def _in_namespace(receiver: Value, name: str) -> bool:
    return isinstance(receiver, Namespace) and receiver.name == name


# ----------------------------------------------------------------------------- lists

def lst_is_sorted(items: Value) -> Value:
    charge(_size_cost(items))
    for before, after in itertools.pairwise(items):
        if not _ordered(before, after):
            return unsupported("isSorted on unordered elements")
        if (_plain(before) > _plain(after)) if _is_number(before) else before > after:
            return _bool(False)
    return _bool(True)


def lst_sum(items: Value) -> Value:
    charge(_size_cost(items))
    if not items:
        return celtypes.IntType(0)  # a dyn empty list sums to int 0 (lists.go)
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _extreme(items: Value, name: str, better: Callable[[Value, Value], bool]) -> Value:
    charge(_size_cost(items))
    if not items:
        return k8s_error(f"{name} called on empty list")
    best = items[0]
    for item in items[1:]:
        if not _ordered(best, item):
            return unsupported(f"{name} on unordered elements")
        if better(item, best):
            best = item
    return best


def lst_min(items: Value) -> Value:
    return _extreme(items, "min", lambda a, b: bool(_key(a) < _key(b)))


def lst_max(items: Value) -> Value:
    return _extreme(items, "max", lambda a, b: bool(_key(a) > _key(b)))


def _key(value: Value) -> Value:
    return _plain(value) if _is_number(value) else value


def index_of(receiver: Value, needle: Value, offset: Value = None) -> Value:
    if isinstance(receiver, str):
        return str_index_of(receiver, needle, offset)
    charge(_size_cost(receiver))
    for i, item in enumerate(receiver):
        if equal(item, needle):
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


def last_index_of(receiver: Value, needle: Value, offset: Value = None) -> Value:
    if isinstance(receiver, str):
        return str_last_index_of(receiver, needle, offset)
    charge(_size_cost(receiver))
    for i in range(len(receiver) - 1, -1, -1):
        if equal(receiver[i], needle):
            return celtypes.IntType(i)
    return celtypes.IntType(-1)


# ----------------------------------------------------------------------------- regex

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would print every refused pattern on stderr


def _compile_re2(pattern: str) -> Any:
    return _RE2_PATTERNS[pattern]


def _new_re2(pattern: str) -> Any:
    """Go's regexp and the RE2 library share a syntax; a pattern RE2 refuses may still be one
    Go accepts (or the reverse), so a compile failure is not Kubernetes' error."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as error:
        raise _Warn(f"regular expression {quoted(str(pattern))} not compiled by RE2: "
                    f"{error}") from error


_RE2_PATTERNS: Memo[str, Any] = caches.memo("cel regexes", _new_re2, caches.CEL_REGEXES)


class _Warn(Exception):
    pass


def matches(text: Value, pattern: Value) -> Value:
    charge(_size_cost(text) + _size_cost(pattern))
    try:
        return _bool(_compile_re2(str(pattern)).search(text) is not None)
    except _Warn as warn:
        return unsupported(str(warn))


def rx_find(text: Value, pattern: Value) -> Value:
    charge(_size_cost(text) + _size_cost(pattern))
    try:
        found = _compile_re2(str(pattern)).search(text)
    except _Warn as warn:
        return unsupported(str(warn))
    return celtypes.StringType(found.group(0) if found else "")


def rx_find_all(text: Value, pattern: Value, limit: Value = None) -> Value:
    charge(_size_cost(text) + _size_cost(pattern))
    try:
        compiled = _compile_re2(str(pattern))
    except _Warn as warn:
        return unsupported(str(warn))
    if limit is not None and limit == 0:
        return celtypes.ListType([])
    found = [celtypes.StringType(m.group(0)) for m in compiled.finditer(text)]
    if limit is not None and limit > 0:
        found = found[: int(limit)]
    return celtypes.ListType(found)


# ----------------------------------------------------------------------------- strings ext

# Go's unicode.IsSpace, which strings.TrimSpace (cel-go's trim) uses; Python's str.strip
# also strips U+001C..U+001F, Go does not.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


def _int_arg(value: Value) -> int | None:
    if isinstance(value, celtypes.IntType) and not isinstance(value, celtypes.BoolType):
        return int(value)
    return None


def str_char_at(text: Value, index: Value) -> Value:
    i = _int_arg(index)
    if i is None:
        return unsupported("charAt needs an int")
    if i < 0 or i > len(text):
        return k8s_error(f"index out of range: {i}")
    return celtypes.StringType(text[i:i + 1])


def str_index_of(text: Value, needle: Value, offset: Value = None) -> Value:
    charge(_size_cost(text))
    start = 0 if offset is None else _int_arg(offset)
    if start is None or not isinstance(needle, str):
        return unsupported("indexOf arguments")
    if start < 0 or start > len(text):
        return k8s_error(f"index out of range: {start}")
    return celtypes.IntType(text.find(needle, start))


def str_last_index_of(text: Value, needle: Value, offset: Value = None) -> Value:
    charge(_size_cost(text))
    if not isinstance(needle, str):
        return unsupported("lastIndexOf arguments")
    if offset is None:
        return celtypes.IntType(text.rfind(needle))
    end = _int_arg(offset)
    if end is None:
        return unsupported("lastIndexOf arguments")
    if end < 0 or end > len(text):
        return k8s_error(f"index out of range: {end}")
    return celtypes.IntType(text.rfind(needle, 0, end + len(needle)))


def str_lower_ascii(text: Value) -> Value:
    charge(_size_cost(text))
    return celtypes.StringType("".join(c.lower() if "A" <= c <= "Z" else c for c in text))


def str_upper_ascii(text: Value) -> Value:
    charge(_size_cost(text))
    return celtypes.StringType("".join(c.upper() if "a" <= c <= "z" else c for c in text))


def str_replace(text: Value, old: Value, new: Value, count: Value = None) -> Value:
    charge(_size_cost(text) + _size_cost(new))
    limit = -1 if count is None else _int_arg(count)
    if limit is None:
        return unsupported("replace arguments")
    if limit < 0:
        limit = -1
    return celtypes.StringType(text.replace(old, new, limit))


def str_split(text: Value, separator: Value, count: Value = None) -> Value:
    """Go's strings.SplitN: n == 0 gives no parts, n < 0 all; an empty separator splits
    into characters."""
    charge(_size_cost(text))
    limit = -1 if count is None else _int_arg(count)
    if limit is None:
        return unsupported("split arguments")
    if limit == 0:
        return celtypes.ListType([])
    if separator == "":
        chars = list(text)
        if 0 < limit < len(chars):
            chars = [*chars[: limit - 1], "".join(chars[limit - 1:])]
        return celtypes.ListType([celtypes.StringType(c) for c in chars])
    parts = text.split(separator) if limit < 0 else text.split(separator, limit - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def str_substring(text: Value, start: Value, end: Value = None) -> Value:
    begin = _int_arg(start)
    stop = len(text) if end is None else _int_arg(end)
    if begin is None or stop is None:
        return unsupported("substring arguments")
    if begin < 0 or begin > len(text):
        return k8s_error(f"index out of range: {begin}")
    if stop < 0 or stop > len(text):
        return k8s_error(f"index out of range: {stop}")
    if begin > stop:
        return k8s_error(f"invalid substring range. start: {begin}, end: {stop}")
    charge(1 + (stop - begin) // 64)
    return celtypes.StringType(text[begin:stop])


def str_trim(text: Value) -> Value:
    charge(_size_cost(text))
    return celtypes.StringType(text.strip(_GO_SPACE))


def lst_join(items: Value, separator: Value = None) -> Value:
    charge(_size_cost(items))
    if not all(isinstance(item, str) for item in items):
        return unsupported("join on a list of non-strings")
    return celtypes.StringType(("" if separator is None else separator).join(items))


def go_float(value: float) -> str:
    """fmt.Sprintf("%g", v), as cel-go's string(double) writes it: the shortest digits, in
    exponent form when the exponent is below -4 or at least 6 ("1e+06")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    shortest = Decimal(repr(abs(value))).normalize()
    _, digit_tuple, exponent = shortest.as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    power = len(digits) + int(exponent) - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    return f"{sign}{shortest:f}"


def to_string(value: Value) -> Value:
    """`string()`, with Go's float formatting and the IP and CIDR conversions."""
    if isinstance(value, celtypes.DoubleType):
        return celtypes.StringType(go_float(float(value)))
    if isinstance(value, (IP, CIDR)):
        return celtypes.StringType(str(value))
    if isinstance(value, (Quantity, URL, Optional, Format)):
        return unsupported(f"string() of {type(value).__name__}")
    return celtypes.StringType(value)


def str_format(template: Value, args: Value) -> Value:
    """cel-go's `format` covers %s %d %f %e %b %o %x %X with their CEL-specific renderings;
    only the plainest (%s of strings and ints, %d of ints, %%) is done here."""
    charge(_size_cost(template) + _size_cost(args))
    out: list[str] = []
    position = 0
    i = 0
    while i < len(template):
        c = template[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(template):
            return unsupported("format: a lone %")
        verb = template[i + 1]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if position >= len(args):
            return k8s_error("index out of range")
        arg = args[position]
        position += 1
        if verb == "s" and isinstance(arg, str):
            out.append(str(arg))
        elif verb in "sd" and _int_arg(arg) is not None:
            out.append(str(int(arg)))
        else:
            return unsupported(f"format verb %{verb} of {type(arg).__name__}")
    return celtypes.StringType("".join(out))


def strings_quote(namespace: Value, text: Value) -> Value:
    if not _in_namespace(namespace, "strings"):
        return unsupported("quote")
    charge(_size_cost(text))
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    return celtypes.StringType('"' + "".join(escapes.get(c, c) for c in text) + '"')


# ----------------------------------------------------------------------------- sets

def _set_function(name: str, test: Callable[[list[Value], list[Value]], bool]) -> Function:
    def run(namespace: Value, a: Value, b: Value) -> Value:
        if not _in_namespace(namespace, "sets"):
            return unsupported(name)
        charge(_size_cost(a) * _size_cost(b))
        return _bool(test(a, b))
    return run


def _contains_all(a: list[Value], b: list[Value]) -> bool:
    return all(any(equal(x, y) for x in a) for y in b)


SETS = {
    "contains": _set_function("sets.contains", _contains_all),
    "equivalent": _set_function("sets.equivalent", lambda a, b: _contains_all(a, b) and _contains_all(b, a)),
    "intersects": _set_function("sets.intersects", lambda a, b: any(any(equal(x, y) for y in b) for x in a)),
}


# ----------------------------------------------------------------------------- quantity

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_SUFFIX_CHARS = set("eEinumkKMGTP")


class Quantity:
    """resource.Quantity, held as an exact decimal."""

    __slots__ = ("value",)

    def __init__(self, value: Decimal) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"quantity({self.value})"


def parse_quantity(text: str) -> Quantity | None:
    """resource.ParseQuantity's grammar, step by step as parseQuantityString walks it
    (apimachinery/pkg/api/resource/quantity.go); None when it fails."""
    if not text:
        return None
    end = len(text)
    pos = 0
    negative = False
    if text[0] in "+-":
        negative = text[0] == "-"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return Quantity(Decimal(0))
    start = pos
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    whole = text[start:pos] or "0"
    frac = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos].isascii() and text[pos].isdigit():
            pos += 1
        frac = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    if pos < end:
        return None
    suffix = text[suffix_start:end]
    number = Decimal(f"{whole}.{frac or '0'}")
    if suffix in _BINARY:
        number = number * (Decimal(2) ** _BINARY[suffix])
    elif suffix in _DECIMAL:
        number = number.scaleb(_DECIMAL[suffix])
    elif len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[+-]?[0-9]+", suffix[1:]):
        power = int(suffix[1:])
        if not INT64_MIN <= power <= INT64_MAX or abs(power) > 10_000:
            return None
        number = number.scaleb(power)
    else:
        return None
    return Quantity(-number if negative else number)


def q_quantity(text: Value) -> Value:
    if not isinstance(text, str):
        return unsupported("quantity of a non-string")
    parsed = parse_quantity(str(text))
    if parsed is None:
        return k8s_error("quantities must match the regular expression "
                         "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    return parsed


def q_is_quantity(text: Value) -> Value:
    return _bool(isinstance(text, str) and parse_quantity(str(text)) is not None)


def q_sign(q: Value) -> Value:
    if not isinstance(q, Quantity):
        return unsupported("sign")
    return celtypes.IntType((q.value > 0) - (q.value < 0))


def _as_int64(q: Quantity) -> int | None:
    if q.value != q.value.to_integral_value():
        return None
    whole = int(q.value)
    return whole if INT64_MIN <= whole <= INT64_MAX else None


def q_is_integer(q: Value) -> Value:
    if not isinstance(q, Quantity):
        return unsupported("isInteger")
    return _bool(_as_int64(q) is not None)


def q_as_integer(q: Value) -> Value:
    if not isinstance(q, Quantity):
        return unsupported("asInteger")
    whole = _as_int64(q)
    if whole is None:
        return k8s_error("cannot convert value to integer")
    return celtypes.IntType(whole)


def q_as_approximate_float(q: Value) -> Value:
    if not isinstance(q, Quantity):
        return unsupported("asApproximateFloat")
    return celtypes.DoubleType(float(q.value))


def _q_operand(value: Value) -> Decimal | None:
    if isinstance(value, Quantity):
        return value.value
    if _int_arg(value) is not None:
        return Decimal(int(value))
    return None


def q_add(q: Value, other: Value) -> Value:
    operand = _q_operand(other)
    if not isinstance(q, Quantity) or operand is None:
        return unsupported("add")
    return Quantity(q.value + operand)


def q_sub(q: Value, other: Value) -> Value:
    operand = _q_operand(other)
    if not isinstance(q, Quantity) or operand is None:
        return unsupported("sub")
    return Quantity(q.value - operand)


def _compare_to(a: Value, b: Value) -> int | None:
    if isinstance(a, Quantity) and isinstance(b, Quantity):
        return (a.value > b.value) - (a.value < b.value)
    return None


def compare_to(a: Value, b: Value) -> Value:
    result = _compare_to(a, b)
    return unsupported("compareTo") if result is None else celtypes.IntType(result)


def is_less_than(a: Value, b: Value) -> Value:
    result = _compare_to(a, b)
    return unsupported("isLessThan") if result is None else _bool(result < 0)


def is_greater_than(a: Value, b: Value) -> Value:
    result = _compare_to(a, b)
    return unsupported("isGreaterThan") if result is None else _bool(result > 0)


# ----------------------------------------------------------------------------- ip, cidr

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class IP:
    __slots__ = ("address",)

    def __init__(self, address: IPAddress) -> None:
        self.address = address

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IP) and self.address == other.address

    def __hash__(self) -> int:
        return hash(self.address)

    def __str__(self) -> str:
        return str(self.address)


class CIDR:
    __slots__ = ("address", "bits")

    def __init__(self, address: IPAddress, bits: int) -> None:
        self.address = address
        self.bits = bits

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.address}/{self.bits}", strict=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CIDR) and (self.address, self.bits) == (other.address, other.bits)

    def __hash__(self) -> int:
        return hash((self.address, self.bits))

    def __str__(self) -> str:
        return f"{self.address}/{self.bits}"


_IPV4 = re.compile(r"(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")


def parse_ip(text: str) -> IPAddress | None:
    """netip.ParseAddr as Kubernetes' ip() uses it: no zone, no IPv4-mapped IPv6 address,
    no leading zeros in IPv4 octets."""
    if _IPV4.fullmatch(text):
        try:
            return ipaddress.IPv4Address(text)
        except ipaddress.AddressValueError:
            return None
    if ":" not in text or not _IPV6_CHARS.fullmatch(text):
        return None
    try:
        address = ipaddress.IPv6Address(text)
    except ipaddress.AddressValueError:
        return None
    if "." in text and not _IPV4.fullmatch(text.rsplit(":", 1)[1]):
        return None
    if address.ipv4_mapped is not None:
        return None
    return address


def parse_cidr(text: str) -> CIDR | None:
    address_text, slash, bits_text = text.partition("/")
    if not slash or not re.fullmatch(r"0|[1-9][0-9]{0,2}", bits_text):
        return None
    address = parse_ip(address_text)
    if address is None or int(bits_text) > address.max_prefixlen:
        return None
    return CIDR(address, int(bits_text))


def ip_ip(receiver: Value, text: Value = None) -> Value:
    """`ip(string)`, and `<cidr>.ip()`: the address part of a CIDR."""
    if isinstance(receiver, CIDR) and text is None:
        return IP(receiver.address)
    if text is None and isinstance(receiver, str):
        text, receiver = receiver, NAMESPACES["ip"]
    if not isinstance(text, str):
        return unsupported("ip")
    address = parse_ip(str(text))
    if address is None:
        return k8s_error(f"IP Address {quoted(text)} parse error during conversion from string")
    return IP(address)


def ip_is_ip(text: Value) -> Value:
    return _bool(isinstance(text, str) and parse_ip(str(text)) is not None)


def ip_is_canonical(namespace: Value, text: Value) -> Value:
    if not _in_namespace(namespace, "ip") or not isinstance(text, str):
        return unsupported("ip.isCanonical")
    address = parse_ip(str(text))
    if address is None:
        return k8s_error(f"IP Address {quoted(text)} parse error during conversion from string")
    return _bool(str(address) == text)


def _ip_test(name: str, test: Callable[[IPAddress], bool]) -> Function:
    def run(value: Value) -> Value:
        if not isinstance(value, IP):
            return unsupported(name)
        return _bool(test(value.address))
    return run


def _go_global_unicast(address: IPAddress) -> bool:
    """Go's netip.Addr.IsGlobalUnicast: anything but unspecified, loopback, multicast,
    link-local unicast and the IPv4 broadcast address (private ranges count)."""
    if address.version == 4 and address == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (address.is_unspecified or address.is_loopback or address.is_multicast
                or _link_local_unicast(address))


def _link_local_unicast(address: IPAddress) -> bool:
    if address.version == 4:
        return address in ipaddress.IPv4Network("169.254.0.0/16")
    return address in ipaddress.IPv6Network("fe80::/10")


def _link_local_multicast(address: IPAddress) -> bool:
    if address.version == 4:
        return address in ipaddress.IPv4Network("224.0.0.0/24")
    return (int(address) >> 112) & 0xFF0F == 0xFF02


def ip_family(value: Value) -> Value:
    if not isinstance(value, IP):
        return unsupported("family")
    return celtypes.IntType(value.address.version)


def cidr_cidr(text: Value) -> Value:
    if not isinstance(text, str):
        return unsupported("cidr")
    parsed = parse_cidr(str(text))
    if parsed is None:
        return k8s_error(f"network address parse error during conversion from string: {quoted(text)}")
    return parsed


def cidr_is_cidr(text: Value) -> Value:
    return _bool(isinstance(text, str) and parse_cidr(str(text)) is not None)


def cidr_contains_ip(cidr: Value, other: Value) -> Value:
    if not isinstance(cidr, CIDR):
        return unsupported("containsIP")
    if isinstance(other, str):
        parsed = ip_ip(other)
        if isinstance(parsed, CELEvalError):
            return parsed
        other = parsed
    if not isinstance(other, IP):
        return unsupported("containsIP")
    return _bool(other.address.version == cidr.address.version and other.address in cidr.network())


def cidr_contains_cidr(cidr: Value, other: Value) -> Value:
    if not isinstance(cidr, CIDR):
        return unsupported("containsCIDR")
    if isinstance(other, str):
        parsed = cidr_cidr(other)
        if isinstance(parsed, CELEvalError):
            return parsed
        other = parsed
    if not isinstance(other, CIDR):
        return unsupported("containsCIDR")
    if other.address.version != cidr.address.version or other.bits < cidr.bits:
        return _bool(False)
    return _bool(other.network().subnet_of(cidr.network()))  # type: ignore[arg-type]


def cidr_masked(cidr: Value) -> Value:
    if not isinstance(cidr, CIDR):
        return unsupported("masked")
    return CIDR(cidr.network().network_address, cidr.bits)


def cidr_prefix_length(cidr: Value) -> Value:
    if not isinstance(cidr, CIDR):
        return unsupported("prefixLength")
    return celtypes.IntType(cidr.bits)


# ----------------------------------------------------------------------------- urls

class URL:
    __slots__ = ("host", "hostname", "path", "port", "query", "scheme")

    def __init__(self, scheme: str, host: str, hostname: str, port: str, path: str, query: str) -> None:
        self.scheme, self.host, self.hostname = scheme, host, hostname
        self.port, self.path, self.query = port, path, query

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URL) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__
        )

    def __hash__(self) -> int:
        return hash((self.scheme, self.host, self.path, self.query))


# The plain URLs whose parts Go's url.ParseRequestURI gives without any of its special
# cases: a scheme, an optional authority without user info, a path and a query of
# unreserved, sub-delim and percent-encoded characters; or an absolute path.
_URL_PATH = r"(?P<path>(?:/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)*)"
_URL_QUERY = r"(?:\?(?P<query>(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*))?"
_PLAIN_URL = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    r"(?P<host>(?P<hostname>[A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]*))?))?"
    + _URL_PATH + _URL_QUERY
)


def parse_url(text: str) -> URL | CELEvalError | None:
    """The URL, None when Go would refuse it too, or an `unsupported` error when this
    implementation cannot tell."""
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return None
    if not text.startswith("/") and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text):
        return None  # "invalid URI for request"
    found = _PLAIN_URL.fullmatch(text)
    if found is None or (found["scheme"] is None and not text.startswith("/")):
        return unsupported(f"URL {quoted(text)} not plain enough to parse as Go does")
    hostname = found["hostname"] or ""
    if hostname.startswith("["):
        hostname = hostname[1:-1]
    return URL(
        (found["scheme"] or "").lower() if found["scheme"] else "", found["host"] or "", hostname,
        found["port"] or "", found["path"] or "", found["query"] or "",
    )


def url_url(text: Value) -> Value:
    if not isinstance(text, str):
        return unsupported("url")
    parsed = parse_url(str(text))
    if parsed is None:
        return k8s_error(f"URL parse error during conversion from string: {quoted(text)}")
    return parsed


def url_is_url(text: Value) -> Value:
    if not isinstance(text, str):
        return unsupported("isURL")
    parsed = parse_url(str(text))
    return parsed if isinstance(parsed, CELEvalError) else _bool(parsed is not None)


def _url_part(name: str) -> Function:
    def part(url: Value) -> Value:
        if not isinstance(url, URL):
            return unsupported(name)
        return celtypes.StringType(getattr(url, name))
    return part


def url_get_query(url: Value) -> Value:
    if not isinstance(url, URL):
        return unsupported("getQuery")
    result: dict[Value, Value] = {}
    for pair in url.query.split("&") if url.query else []:
        if pair == "":
            continue
        if ";" in pair or "%" in pair or "+" in pair:
            return unsupported("getQuery with escapes or semicolons")
        key, _, value = pair.partition("=")
        result.setdefault(celtypes.StringType(key), celtypes.ListType()).append(celtypes.StringType(value))
    return celtypes.MapType(result)


# ----------------------------------------------------------------------------- format

class Format:
    __slots__ = ("check", "name")

    def __init__(self, name: str, check: Callable[[str], list[str]] | None) -> None:
        self.name = name
        self.check = check

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Format) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)


_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def _regex_error(message: str, pattern: re.Pattern[str], *examples: str) -> str:
    shown = ", ".join(f"'{e}'" for e in examples)
    return f"{message} (e.g. {shown}, regex used for validation is '{pattern.pattern}')"


def is_dns1123_label(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.fullmatch(value):
        errors.append(_regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character", _DNS1123_LABEL, "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(_regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character", _DNS1123_SUBDOMAIN, "example.com"))
    return errors


def is_dns1035_label(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.fullmatch(value):
        errors.append(_regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character", _DNS1035_LABEL, "my-name",
            "abc-123"))
    return errors


def is_qualified_name(value: str) -> list[str]:
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        errors: list[str] = []
    elif len(parts) == 2:
        prefix, name = parts
        errors = []
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + e for e in is_dns1123_subdomain(prefix))
    else:
        return [_regex_error(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character", _QUALIFIED_NAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.fullmatch(name):
        errors.append("name part " + _regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character", _QUALIFIED_NAME, "MyName", "my.name", "123-abc"))
    return errors


def is_label_value(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        errors.append(_regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character", _LABEL_VALUE, "MyValue", "my_value",
            "12345"))
    return errors


def _mask_trailing_dash(name: str) -> str:
    """apimachinery's maskTrailingDash: a generateName prefix may end in '-'."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def _prefixed(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    return lambda value: check(_mask_trailing_dash(value))


FORMATS: dict[str, Callable[[str], list[str]] | None] = {
    "dns1123Label": is_dns1123_label,
    "dns1123Subdomain": is_dns1123_subdomain,
    "dns1035Label": is_dns1035_label,
    "qualifiedName": is_qualified_name,
    "dns1123LabelPrefix": _prefixed(is_dns1123_label),
    "dns1123SubdomainPrefix": _prefixed(is_dns1123_subdomain),
    "dns1035LabelPrefix": _prefixed(is_dns1035_label),
    "labelValue": is_label_value,
    # strfmt's and url.ParseRequestURI's rules: not ported, a warning when used
    "uri": None, "uuid": None, "byte": None, "date": None, "datetime": None,
}


def _format_constant(name: str) -> Function:
    def constant(namespace: Value) -> Value:
        if not _in_namespace(namespace, "format"):
            return unsupported(name)
        return Format(name, FORMATS[name])
    return constant


def format_named(namespace: Value, name: Value) -> Value:
    if not _in_namespace(namespace, "format") or not isinstance(name, str):
        return unsupported("format.named")
    if str(name) not in FORMATS:
        return NONE
    return Optional(Format(str(name), FORMATS[str(name)]), True)


def format_validate(fmt: Value, text: Value) -> Value:
    if not isinstance(fmt, Format) or not isinstance(text, str):
        return unsupported("validate")
    if fmt.check is None:
        return unsupported(f"format.{fmt.name}() is not implemented")
    charge(_size_cost(text))
    errors = fmt.check(str(text))
    if not errors:
        return NONE
    return Optional(celtypes.ListType([celtypes.StringType(e) for e in errors]), True)


# ----------------------------------------------------------------------------- dispatch

def _namespace_or(namespace: str, inside: Function, outside: Function | None) -> Function:
    """One celpy function name serving both `ns.name(...)` and `x.name(...)`."""
    def dispatch(receiver: Value, *args: Value) -> Value:
        if isinstance(receiver, Namespace):
            if receiver.name != namespace:
                return unsupported(f"{receiver.name} namespace")
            return inside(receiver, *args)
        if outside is None:
            return unsupported("no such overload")
        return outside(receiver, *args)
    return dispatch


def _optional_of(namespace: Value, value: Value) -> Value:
    return Optional(value, True) if _in_namespace(namespace, "optional") else unsupported("of")


def _optional_none(namespace: Value) -> Value:
    return NONE if _in_namespace(namespace, "optional") else unsupported("none")


def _optional_of_non_zero(namespace: Value, value: Value) -> Value:
    if not _in_namespace(namespace, "optional"):
        return unsupported("ofNonZeroValue")
    return NONE if _zero(value) else Optional(value, True)


def _value(receiver: Value) -> Value:
    return opt_value(receiver) if isinstance(receiver, Optional) else unsupported("value")


def _typed(kind: type, name: str, run: Function) -> Function:
    def checked(receiver: Value, *args: Value) -> Value:
        if not isinstance(receiver, kind):
            return unsupported(f"no such overload: {name} on {type(receiver).__name__}")
        return run(receiver, *args)
    return checked


def _cidr_or_ip(receiver: Value, *args: Value) -> Value:
    if isinstance(receiver, Namespace):
        return unsupported(f"{receiver.name}.ip")
    return ip_ip(receiver, *args)


def _contains(receiver: Value, other: Value) -> Value:
    if isinstance(receiver, Namespace):
        return SETS["contains"](receiver, other)
    if isinstance(receiver, str) and isinstance(other, str):
        charge(_size_cost(receiver))
        return _bool(other in receiver)
    return unsupported("contains")


def _sets_contains(receiver: Value, *args: Value) -> Value:
    if isinstance(receiver, Namespace):
        return SETS["contains"](receiver, *args)
    return _contains(receiver, *args)


def _starts_with(text: Value, prefix: Value) -> Value:
    if not isinstance(text, str) or not isinstance(prefix, str):
        return unsupported("startsWith")
    return _bool(text.startswith(prefix))


def _ends_with(text: Value, suffix: Value) -> Value:
    if not isinstance(text, str) or not isinstance(suffix, str):
        return unsupported("endsWith")
    return _bool(text.endswith(suffix))


def functions() -> dict[str, Function]:
    """The function table handed to every celpy program: operators replaced by their
    Kubernetes behaviour, library functions added."""
    table: dict[str, Function] = {
        "_==_": _propagating(op_eq), "_!=_": _propagating(op_ne), "_in_": _propagating(op_in),
        "_+_": _propagating(op_add),
        "_<_": _comparison(lambda a, b: bool(a < b)), "_<=_": _comparison(lambda a, b: bool(a <= b)),
        "_>_": _comparison(lambda a, b: bool(a > b)), "_>=_": _comparison(lambda a, b: bool(a >= b)),
        "string": to_string,
        "matches": matches, "startsWith": _starts_with, "endsWith": _ends_with,
        "contains": _sets_contains,
        # lists
        "isSorted": _typed(list, "isSorted", lst_is_sorted), "sum": _typed(list, "sum", lst_sum),
        "min": _typed(list, "min", lst_min), "max": _typed(list, "max", lst_max),
        "indexOf": index_of, "lastIndexOf": last_index_of,
        # regex
        "find": _typed(str, "find", rx_find), "findAll": _typed(str, "findAll", rx_find_all),
        # strings ext
        "charAt": _typed(str, "charAt", str_char_at),
        "lowerAscii": _typed(str, "lowerAscii", str_lower_ascii),
        "upperAscii": _typed(str, "upperAscii", str_upper_ascii),
        "replace": _typed(str, "replace", str_replace), "split": _typed(str, "split", str_split),
        "substring": _typed(str, "substring", str_substring), "trim": _typed(str, "trim", str_trim),
        "join": _typed(list, "join", lst_join),
        "format": _typed(str, "format", str_format),
        "quote": strings_quote,
        # sets
        "equivalent": SETS["equivalent"], "intersects": SETS["intersects"],
        # optional
        "of": _optional_of, "none": _optional_none, "ofNonZeroValue": _optional_of_non_zero,
        "hasValue": _typed(Optional, "hasValue", opt_has_value), "value": _value,
        "orValue": _typed(Optional, "orValue", opt_or_value), "or": _typed(Optional, "or", opt_or),
        # quantity
        "quantity": q_quantity, "isQuantity": q_is_quantity, "sign": q_sign,
        "isInteger": q_is_integer, "asInteger": q_as_integer, "asApproximateFloat": q_as_approximate_float,
        "add": q_add, "sub": q_sub, "compareTo": compare_to,
        "isLessThan": is_less_than, "isGreaterThan": is_greater_than,
        # ip and cidr
        "ip": _cidr_or_ip, "isIP": ip_is_ip, "isCanonical": ip_is_canonical, "family": ip_family,
        "isUnspecified": _ip_test("isUnspecified", lambda a: a.is_unspecified),
        "isLoopback": _ip_test("isLoopback", lambda a: a.is_loopback),
        "isLinkLocalMulticast": _ip_test("isLinkLocalMulticast", _link_local_multicast),
        "isLinkLocalUnicast": _ip_test("isLinkLocalUnicast", _link_local_unicast),
        "isGlobalUnicast": _ip_test("isGlobalUnicast", _go_global_unicast),
        "cidr": cidr_cidr, "isCIDR": cidr_is_cidr, "containsIP": cidr_contains_ip,
        "containsCIDR": cidr_contains_cidr, "masked": cidr_masked, "prefixLength": cidr_prefix_length,
        # urls
        "url": url_url, "isURL": url_is_url, "getScheme": _url_part("scheme"), "getHost": _url_part("host"),
        "getHostname": _url_part("hostname"), "getPort": _url_part("port"),
        "getEscapedPath": _url_part("path"), "getQuery": url_get_query,
        # format
        "named": format_named, "validate": format_validate,
    }
    for name in FORMATS:
        table[name] = _format_constant(name)
    return table


def library_names() -> Iterable[str]:
    return functions().keys()


def as_value(value: object) -> Value:
    return cast(Value, value)
