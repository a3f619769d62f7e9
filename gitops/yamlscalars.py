"""How YAML readers resolve plain (unquoted) scalars, and where they disagree.

A YAML file statewriter writes is read by several families of readers, which give the same
plain scalar different values (`08544` is the string "08544" to PyYAML, 8544 to Go):

- `yaml1.1`: statewriter's own reader, PyYAML's SafeLoader (YAML 1.1 types) without its
  timestamp resolver, so timestamps stay strings. Sexagesimal numbers (`1:20` is 80),
  `0b`/`0x`/leading-`0` octal integers, underscores in numbers, yes/no/on/off booleans
  (but not y/n), `=` (the value key, which SafeLoader cannot construct) and `<<`.
- `yaml1.2`: the YAML 1.2 core schema: null, true/false, `[-+]?[0-9]+`, `0o` and `0x`
  integers, `[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?` floats, .inf and .nan.
- `goyaml.v2`: the Kubernetes API path (sigs.k8s.io/yaml, a fork of gopkg.in/yaml.v2),
  decoding into interface{}: a table of words (y/Y/yes/on/off/n/..., true/false, ~/null,
  .inf/.nan, `<<`), then for plain scalars starting with a digit, `+` or `-`: a timestamp
  (handed on as the string it is), strconv.ParseInt(base 0) and ParseUint with underscores
  removed, ParseFloat when the text matches the float pattern above, and `0b` binary; for
  ones starting with `.`, ParseFloat.
- `yaml.v3`: kustomize's reader (kyaml, gopkg.in/yaml.v3): the same without the YAML 1.1
  words (y, yes, on, off, n, no), plus `0o` octal, and timestamps become time values (which
  kustomize writes back as RFC 3339: `2024-01-01` reaches the cluster as
  "2024-01-01T00:00:00Z").

`readings` gives each family's value for one plain scalar; `ambiguous_plain_scalars` finds
the plain scalars in a YAML text that the families read differently.

Two readings are the same when they are the same kind of value (string, bool, null, number,
timestamp, special) and equal, numbers comparing by value (JSON, and so the API server,
cannot tell 1.0 from 1). `<<` and `=` read as `Special` markers whatever their place: `<<`
merges a mapping into the one it keys, and `=` as a value is refused by statewriter's
reader; both are treated as not-a-string in every position.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from gitops.errors import YamlError
from gitops.quoting import quoted

#: PyYAML's SafeLoader resolvers without the timestamp one: statewriter's own files are read
#: with these (`gitops.yamldocs`), and the `yaml1.1` family below models that reader.
READER_RESOLVERS: dict[object, list[tuple[str, re.Pattern[str]]]] = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

YAML11 = "yaml1.1"
YAML12 = "yaml1.2"
GOYAML_V2 = "goyaml.v2"
YAML_V3 = "yaml.v3"
FAMILIES = (YAML11, YAML12, GOYAML_V2, YAML_V3)


@dataclass(frozen=True)
class Special:
    """A reading that is not plain data."""

    what: str


MERGE = Special("merge key <<")
VALUE_KEY = Special("YAML 1.1 value key =")
TIMESTAMP = Special("timestamp out of Python's range")
UNREADABLE = Special("integer of more digits than Python converts")

Reading = str | int | float | bool | None | datetime.datetime | Special

# A plain scalar whose first character is none of these is a string to every family.
_FIRST_CHARACTERS = frozenset("0123456789+-.yYnNtTfFoO~<=")

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"


# ---- YAML 1.1: statewriter's reader ------------------------------------------------------


class _Reader(yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """Resolves and constructs single scalars as statewriter's loader does."""

    yaml_implicit_resolvers = READER_RESOLVERS


_READER = _Reader()
_resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = _READER.resolve  # untyped stub


def _implicit_tag(text: str) -> str:
    return _resolve(yaml.ScalarNode, text, (True, False))


def _yaml11(text: str) -> Reading:
    tag = _implicit_tag(text)
    if tag == _MERGE_TAG:
        return MERGE
    if tag == _VALUE_TAG:
        return VALUE_KEY
    construct = _Reader.yaml_constructors[tag]
    try:
        value: Reading = construct(_READER, yaml.ScalarNode(tag, text))
    except ValueError:  # an integer of more digits than Python converts
        return UNREADABLE
    return value


# ---- YAML 1.2 core schema ----------------------------------------------------------------

_CORE_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_CORE_INT = (
    (re.compile(r"[-+]?[0-9]+"), 10, 0),
    (re.compile(r"0o[0-7]+"), 8, 2),
    (re.compile(r"0x[0-9a-fA-F]+"), 16, 2),
)
# Also goyaml's yamlStyleFloat.
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_CORE_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_CORE_NAN = re.compile(r"\.(?:nan|NaN|NAN)")


def _yaml12(text: str) -> Reading:
    if text in _CORE_NULL:
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    for pattern, base, skip in _CORE_INT:
        if pattern.fullmatch(text):
            try:
                return int(text[skip:], base)
            except ValueError:
                return UNREADABLE
    if _FLOAT.fullmatch(text):
        return float(text)
    if _CORE_INF.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _CORE_NAN.fullmatch(text):
        return math.nan
    return text


# ---- Go: goyaml.v2 and yaml.v3 -----------------------------------------------------------

_GO_WORDS: dict[str, Reading] = {
    **dict.fromkeys(["true", "True", "TRUE"], True),
    **dict.fromkeys(["false", "False", "FALSE"], False),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], None),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], math.nan),
    **dict.fromkeys([".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], math.inf),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], -math.inf),
}
# YAML 1.1 booleans that goyaml.v2 keeps and yaml.v3 dropped.
_GO_V2_WORDS: dict[str, Reading] = {
    **_GO_WORDS,
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"], True),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "off", "Off", "OFF"], False),
}
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _go_parse_uint(text: str, base: int) -> int | None:
    """strconv.ParseUint(text, base, 64) for text without underscores, or None on an error."""
    if not text:
        return None
    if base == 0:
        base, text = _go_base_prefix(text)
    value = 0
    for character in text.lower():
        digit = _DIGITS.find(character)
        if not 0 <= digit < base:
            return None
        value = value * base + digit
        if value > _UINT64_MAX:
            return None  # Go: ErrRange
    return value


def _go_base_prefix(text: str) -> tuple[int, str]:
    """The base strconv reads `text` in with base 0, and the digits after the prefix."""
    if text[0] != "0":
        return 10, text
    if len(text) >= 3 and text[1] in "bBoOxX":
        return {"b": 2, "o": 8, "x": 16}[text[1].lower()], text[2:]
    return 8, text[1:]


def _go_parse_int(text: str, base: int) -> int | None:
    """strconv.ParseInt(text, base, 64) for text without underscores, or None on an error."""
    negative = text[:1] == "-"
    magnitude = _go_parse_uint(text[1:] if text[:1] in ("-", "+") else text, base)
    if magnitude is None or magnitude > _INT64_MAX + negative:
        return None
    return -magnitude if negative else magnitude


def _go_parse_decimal_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for text matching the float pattern: None on overflow
    (Go returns ±Inf with ErrRange, which resolve treats as a failure)."""
    value = float(text)
    return None if math.isinf(value) else value


# strconv.ParseFloat of a text starting with a dot: digits with single underscores between
# them (Go's underscoreOK), an optional exponent.
_GO_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?")


def _go_number(text: str, octal_prefix: bool) -> Reading:
    """goyaml's resolve for a plain scalar starting with a digit or a sign, after the
    timestamp check. `octal_prefix`: yaml.v3's extra `0o` branch."""
    plain = text.replace("_", "")
    for parse in (_go_parse_int, _go_parse_uint):
        number = parse(plain, 0)
        if number is not None:
            return number
    if _FLOAT.fullmatch(plain):
        value = _go_parse_decimal_float(plain)
        if value is not None:
            return value
    prefixes = [("0b", "", 2), ("-0b", "-", 2)]
    if octal_prefix:
        prefixes += [("0o", "", 8), ("-0o", "-", 8)]
    for prefix, sign, base in prefixes:
        if plain.startswith(prefix):
            digits = sign + plain[len(prefix) :]
            number = _go_parse_int(digits, base)
            if number is None and not sign:
                number = _go_parse_uint(digits, base)
            return text if number is None else number
    return text


def _go(text: str, *, v3: bool) -> Reading:
    words = _GO_WORDS if v3 else _GO_V2_WORDS
    if text in words:
        return words[text]
    if text == "<<":
        return MERGE  # not in the table's reach, but a plain `<<` key merges (isMerge)
    first = text[:1]
    if first == ".":
        if _GO_DOT_FLOAT.fullmatch(text):
            value = _go_parse_decimal_float(text.replace("_", ""))
            if value is not None:
                return value
        return text
    if first and first in "+-0123456789":
        stamp = _go_timestamp(text)
        if stamp is not None:
            # goyaml.v2 hands a timestamp to interface{} as the string it read.
            return stamp if v3 else text
        return _go_number(text, octal_prefix=v3)
    return text


# goyaml's allowedTimestampFormats as time.Parse reads them: month, day, hour, minute and
# second take one or two digits, a fraction any number (after `.` or `,`).
_GO_TIMESTAMP = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{1,2})-(?P<day>[0-9]{1,2})"
    r"(?:(?:(?P<t>[Tt])|(?P<space> ))"
    r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{1,2}):(?P<second>[0-9]{1,2})(?:[.,](?P<fraction>[0-9]+))?"
    r"(?P<zone>Z|[-+][0-9]{2}:[0-9]{2})?)?"
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _go_timestamp(text: str) -> datetime.datetime | Special | None:
    """goyaml's parseTimestamp: the time `text` reads as, or None when it is not one."""
    match = _GO_TIMESTAMP.fullmatch(text)
    if match is None or bool(match["t"]) != bool(match["zone"]):
        return None  # the T form needs a zone, the space form has none
    year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
    hour, minute, second = (int(match[part] or 0) for part in ("hour", "minute", "second"))
    if not (1 <= month <= 12 and 1 <= day <= _days_in(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = _zone_offset(match["zone"])
    if offset is None:
        return None
    micro = int((match["fraction"] or "0")[:6].ljust(6, "0"))
    try:
        zone = datetime.timezone(offset)
        return datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:
        return TIMESTAMP  # year 0, or a 24-hour offset: a time to Go, not to Python


def _days_in(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]


def _zone_offset(zone: str | None) -> datetime.timedelta | None:
    if zone in (None, "Z"):
        return datetime.timedelta(0)
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 24 or minutes > 60:
        return None
    offset = datetime.timedelta(hours=hours, minutes=minutes)
    return -offset if zone[0] == "-" else offset


# ---- the model ---------------------------------------------------------------------------

_FAMILY_READERS: dict[str, Callable[[str], Reading]] = {
    YAML11: _yaml11,
    YAML12: _yaml12,
    GOYAML_V2: lambda text: _go(text, v3=False),
    YAML_V3: lambda text: _go(text, v3=True),
}


class Disagreement(YamlError):
    """The Go readers on the way to a cluster read one plain scalar differently."""


def go_reading(text: str) -> Reading:
    """The value the Kubernetes API (goyaml.v2) and kustomize (yaml.v3) both read the plain
    scalar `text` as; Disagreement when they read it differently (`yes`, `on`, a date)."""
    v2, v3 = _go(text, v3=False), _go(text, v3=True)
    if _comparable(v2) != _comparable(v3):
        raise Disagreement(f"reads as {_shown(v2)} to the Kubernetes API and as {_shown(v3)} "
                           "to kustomize")
    return v3


def _shown(value: Reading) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, str):
        return f"the string {quoted(value)}"
    if isinstance(value, datetime.datetime):
        return f"the time {value.isoformat()}"
    if isinstance(value, Special):
        return value.what
    return f"the number {quoted(value)}"


def readings(text: str) -> dict[str, Reading]:
    """Reader family -> the value the plain scalar `text` reads as."""
    return {family: read(text) for family, read in _FAMILY_READERS.items()}


def _comparable(value: Reading) -> tuple[str, object]:
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int | float):
        return "number", "nan" if isinstance(value, float) and math.isnan(value) else value
    if value is None:
        return "null", None
    return type(value).__name__, value


def is_ambiguous(text: str, non_specific_tag: bool = False) -> bool:
    """Whether the families read the plain scalar `text` differently. `non_specific_tag`:
    the scalar is tagged `!`, which makes it a string to goyaml.v2 (as YAML says) while
    PyYAML and yaml.v3 resolve it as if it were untagged."""
    if text and text[0] not in _FIRST_CHARACTERS:
        return False
    read = readings(text)
    if non_specific_tag:
        read[GOYAML_V2] = text
    return len({_comparable(value) for value in read.values()}) > 1


_ParserBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def ambiguous_plain_scalars(yaml_text: str) -> list[tuple[int, str]]:
    """(1-based line, text) of every plain scalar, key or value, in `yaml_text` (one or more
    documents) that the reader families read differently, in the order of the text. Plain
    scalars with a specific tag (`!!str 08544`) are left out: every reader obeys it.

    Reads the parser's events rather than composed nodes: only events tell an explicitly
    tagged scalar from one resolved to the same tag, and an alias is not read twice."""
    found: list[tuple[int, str]] = []
    for event in yaml.parse(yaml_text, Loader=_ParserBase):
        if (
            isinstance(event, yaml.ScalarEvent)
            and not event.style  # None, or "" from libyaml, for plain
            and event.tag in (None, "!")
            and is_ambiguous(event.value, non_specific_tag=event.tag == "!")
        ):
            found.append((event.start_mark.line + 1 if event.start_mark else 0, event.value))
    return found
