"""String formats, as the API server checks them.

- Custom resources: `format` on a string is checked by kube-openapi's strfmt registry
  (pkg/validation/strfmt: default.go, time.go, date.go, duration.go, bson.go,
  kubernetes-extensions.go, and its vendored govalidator), for the formats apiextensions-apiserver
  keeps (pkg/apiserver/validation/formats.go: supportedVersionedFormats; every other format is
  dropped from the schema, so not checked). Names are compared without dashes, as strfmt does
  (`date-time` is `datetime`). `k8s-short-name` and `k8s-long-name` exist from Kubernetes 1.34.
- Built-in kinds: `metav1.Time` and `metav1.MicroTime` decode with Go's time.Parse and the
  layouts RFC3339 and "2006-01-02T15:04:05.000000Z07:00" (k8s.io/apimachinery/pkg/apis/meta/v1:
  time.go, micro_time.go).

Each checker answers True (valid), False (the API server refuses it) or None (not decided
here: a rule not ported exactly, such as net/mail's address grammar). Go's regular expressions
are ASCII-only for \\d and \\s; the patterns below spell out their classes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from gitops.validate.goregex import compile_pattern

Checker = Callable[[str], "bool | None"]


def _full(pattern: str, flags: int = 0) -> Callable[[str], bool]:
    compiled = re.compile(pattern, flags)
    return lambda text: compiled.fullmatch(text) is not None


# --- dates and times ------------------------------------------------------------------------

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_STRFMT_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")
# Go's time.Parse reads the hour of "15" with one or two digits, every other field with fixed
# digits, and a fraction after the seconds ('.' or ',') even when the layout has none.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(?:Z|[+-]([0-9]{2}):([0-9]{2}))"
)


def _days_in(month: int, year: int) -> int:
    """time.daysIn: the proleptic Gregorian calendar, year 0 included."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _valid_date(year: str, month: str, day: str) -> bool:
    number = int(month)
    return 1 <= number <= 12 and 1 <= int(day) <= _days_in(number, int(year))


def is_date(text: str) -> bool:
    """strfmt IsDate: time.Parse("2006-01-02", text)."""
    match = _DATE.fullmatch(text)
    return match is not None and _valid_date(*match.groups())


def is_strfmt_datetime(text: str) -> bool:
    """strfmt IsDateTime: a date, a 't' (any case) and a time its regexp accepts; the string is
    lowered and split at every 't', and only the first two parts are looked at."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not is_date(parts[0]):
        return False
    match = _STRFMT_TIME.fullmatch(parts[1])
    return match is not None and match[1] <= "23" and match[2] <= "59" and match[3] <= "59"


def is_rfc3339_time(text: str, micro: bool = False) -> bool | None:
    """What metav1.Time (or, with `micro`, metav1.MicroTime) decodes: time.Parse with RFC3339
    (fractional seconds optional, any number of digits) or the microsecond layout (exactly six
    digits). An offset over 24 hours or 60 minutes is left undecided: Go releases before 1.20
    accepted it, later ones do not."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return False
    year, month, day, hour, minute, second, fraction, off_hour, off_minute = match.groups()
    if micro and (fraction is None or len(fraction) != 6):
        return False
    if not _valid_date(year, month, day) or int(hour) > 23 or minute > "59" or second > "59":
        return False
    if off_hour is not None and (off_hour > "24" or off_minute > "60"):
        return None
    return True


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
# strfmt's fallback: every "<digits><spaces><letters>" in the text, with its units by prefix
_DURATION_FALLBACK = re.compile(r"([0-9]+)[\t\n\f\r ]*([A-Za-zµ]+)")
_FALLBACK_UNITS = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"),
                   ("m", "min"), ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))


def is_go_duration(text: str) -> bool:
    """time.ParseDuration: `[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`, "0" alone, within int64 ns."""
    body = text[1:] if text[:1] in ("-", "+") else text
    if body == "0":
        return True
    if not body:
        return False
    total = 0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        assert match is not None  # every group may be empty
        whole, fraction, unit = match.groups()
        if (not whole and not fraction) or unit not in _DURATION_UNITS:
            return False
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        pos = match.end()
    return total <= (1 << 63 if text.startswith("-") else (1 << 63) - 1)


def is_strfmt_duration(text: str) -> bool:
    """strfmt ParseDuration: Go's, or else any number followed by a unit it knows by name or
    prefix ("5 minutes", "1 day") anywhere in the text."""
    if is_go_duration(text):
        return True
    known = False
    for number, unit in _DURATION_FALLBACK.findall(text):
        if int(number) >= 1 << 63:  # strconv.Atoi fails: the whole parse fails
            return False
        lowered = unit.lower()
        for variants in _FALLBACK_UNITS:
            last = variants[-1]
            if lowered.startswith(last) or lowered in variants:
                known = True
    return known


# --- addresses ------------------------------------------------------------------------------

_IPV4_PART = re.compile(r"[0-9]+")


def _sloppy_ipv4(text: str) -> bool:
    """k8s.io/utils/net ParseIPSloppy for dotted IPv4: four decimal parts of at most 255,
    leading zeros allowed (Go's parser before 1.17)."""
    parts = text.split(".")
    return len(parts) == 4 and all(_IPV4_PART.fullmatch(part) and int(part) <= 255
                                   for part in parts)


def _ipv6(text: str, sloppy: bool) -> bool | None:
    """An IPv6 address without zone; `sloppy` lets its embedded IPv4 have leading zeros."""
    if "%" in text or not text.isascii():
        return False
    head, _, tail = text.rpartition(":")
    if "." in tail and sloppy:
        if not _sloppy_ipv4(tail):
            return False
        tail = ".".join(str(int(part)) for part in tail.split("."))
        text = f"{head}:{tail}"
    if any(len(group) > 4 for group in head.split(":")):
        # Go's older parser (the sloppy one) bounds a group's value, not its digits
        return None if sloppy else False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _sloppy_ip(text: str) -> bool | None:
    """ParseIPSloppy: the first '.' or ':' decides the family."""
    for ch in text:
        if ch == ".":
            return _sloppy_ipv4(text)
        if ch == ":":
            return _ipv6(text, sloppy=True)
    return False


def is_ipv4(text: str) -> bool | None:
    return False if "." not in text else _sloppy_ip(text)


def is_ipv6(text: str) -> bool | None:
    """govalidator.IsIPv6: net.ParseIP (strict) and a ':' in the text."""
    if ":" not in text:
        return False
    if "." in text.rpartition(":")[2]:
        tail = text.rpartition(":")[2]
        if not all(_IPV4_PART.fullmatch(p) and (p == "0" or p[0] != "0") for p in tail.split(".")):
            return False
    return _ipv6(text, sloppy=False)


_MASK = re.compile(r"[0-9]+")


def is_cidr(text: str) -> bool | None:
    """ParseCIDRSloppy: an address, '/', and a prefix length of decimal digits in range."""
    address, slash, mask = text.partition("/")
    if not slash or not _MASK.fullmatch(mask):
        return False
    if _sloppy_ipv4(address):
        return int(mask) <= 32
    family = _ipv6(address, sloppy=True)
    if family is None:
        return None
    return family and int(mask) <= 128


_MAC = re.compile(
    r"[0-9A-Fa-f]{2}(?P<sep>[:-])[0-9A-Fa-f]{2}(?:(?P=sep)[0-9A-Fa-f]{2}){4}"
    r"(?:(?:(?P=sep)[0-9A-Fa-f]{2}){2}|(?:(?P=sep)[0-9A-Fa-f]{2}){14})?"
    r"|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2}(?:\.[0-9A-Fa-f]{4}|(?:\.[0-9A-Fa-f]{4}){7})?"
)


def is_mac(text: str) -> bool:
    """net.ParseMAC: 6, 8 or 20 bytes as 01:23:..., 01-23-... or 0123.4567...."""
    return _MAC.fullmatch(text) is not None


_HOSTNAME = (r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}]"
             r"(([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$")


def is_hostname(text: str) -> bool | None:
    """strfmt IsHostname: its regexp (Unicode letters and symbols), at most 255 bytes, and no
    dot-separated part over 63 bytes."""
    matched = compile_pattern(_HOSTNAME)(text)
    if not matched:
        return matched
    encoded = text.encode()
    return len(encoded) <= 255 and all(len(part) <= 63 for part in encoded.split(b"."))


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_EMAIL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*")


def is_email(text: str) -> bool | None:
    """net/mail.ParseAddress: decided only for a bare dot-atom address (valid) and for a text
    without '@' (invalid); display names, quoting and comments are left undecided."""
    if _SIMPLE_EMAIL.fullmatch(text):
        return True
    return None if "@" in text else False


# --- URIs: net/url.ParseRequestURI -----------------------------------------------------------

_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_HOST_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                          "-_.~!$&'()*+,;=:[]<>\"")


def _escapes_valid(text: str, host: bool) -> bool:
    """url.unescape: every '%' starts two hex digits; in a host only %25 or a byte from %80."""
    at = text.find("%")
    while at >= 0:
        pair = text[at + 1:at + 3]
        if len(pair) != 2 or not set(pair) <= _HEX:
            return False
        if host and int(pair[0], 16) < 8 and pair != "25":
            return False
        at = text.find("%", at + 3)
    return True


def _scheme(text: str) -> tuple[str, str] | None:
    """url.getScheme: (scheme, rest); None for a leading ':' (missing protocol scheme)."""
    for at, ch in enumerate(text):
        if ch.isascii() and ch.isalpha():
            continue
        if ch in "0123456789+-." and at > 0:
            continue
        if ch == ":":
            return None if at == 0 else (text[:at], text[at + 1:])
        break
    return "", text


def is_request_uri(text: str) -> bool | None:
    """govalidator.IsRequestURI: url.ParseRequestURI. Authorities with a user, brackets or
    escapes are left undecided (their rules changed between Go releases)."""
    if not text or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        return False
    if text == "*":
        return True
    split = _scheme(text)
    if split is None:
        return False
    scheme, rest = split
    rest = rest.partition("?")[0]  # the query, with or without text, is not checked
    if not rest.startswith("/"):
        return bool(scheme)
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        if "@" in authority or "[" in authority or "%" in authority:
            return None
        host, colon, port = authority.rpartition(":")
        if colon and not set(port) <= _DIGITS:
            return False
        if not set(host if colon else authority) <= _HOST_ALLOWED | {ch for ch in authority
                                                                      if not ch.isascii()}:
            return False
    return _escapes_valid(rest, host=False)


# --- govalidator and bson --------------------------------------------------------------------

_CREDIT_CARD = re.compile(
    r"(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}"
    r"|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11})"
)
_NOT_DIGITS = re.compile(r"[^0-9]+")
_SPACES_AND_MINUS = re.compile(r"[\t\n\f\r -]+")


def is_credit_card(text: str) -> bool:
    digits = _NOT_DIGITS.sub("", text)
    if not _CREDIT_CARD.fullmatch(digits):
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        number = int(digit) * (2 if position % 2 else 1)
        total += number % 10 + 1 if number >= 10 else number
    return total % 10 == 0


def is_isbn10(text: str) -> bool:
    digits = _SPACES_AND_MINUS.sub("", text)
    if not re.fullmatch(r"[0-9]{9}X|[0-9]{10}", digits):
        return False
    total = sum((at + 1) * int(digits[at]) for at in range(9))
    total += 100 if digits[9] == "X" else 10 * int(digits[9])
    return total % 11 == 0


def is_isbn13(text: str) -> bool:
    digits = _SPACES_AND_MINUS.sub("", text)
    if not re.fullmatch(r"[0-9]{13}", digits):
        return False
    total = sum((1, 3)[at % 2] * int(digits[at]) for at in range(12))
    return int(digits[12]) == (10 - total % 10) % 10


def is_ssn(text: str) -> bool:
    return len(text.encode()) == 11 and re.fullmatch(r"[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}",
                                                     text) is not None


_RGB_PART = r"[\t\n\f\r ]*(0|[1-9][0-9]?|1[0-9][0-9]?|2[0-4][0-9]|25[0-5])[\t\n\f\r ]*"
_UUID = r"[0-9a-f]{8}-?[0-9a-f]{4}-?%s[0-9a-f]{3}-?%s[0-9a-f]{3}-?[0-9a-f]{12}"

_SHORT_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def _bounded(check: Callable[[str], bool], most: int) -> Callable[[str], bool]:
    return lambda text: len(text.encode()) <= most and check(text)


_STRFMT: Mapping[str, Checker] = {
    "bsonobjectid": _full(r"[0-9a-fA-F]{24}"),
    "uri": is_request_uri,
    "email": is_email,
    "hostname": is_hostname,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "cidr": is_cidr,
    "mac": is_mac,
    "uuid": _full(_UUID % ("[0-9a-f]", "[0-9a-f]"), re.IGNORECASE),
    "uuid3": _full(_UUID % ("3", "[0-9a-f]"), re.IGNORECASE),
    "uuid4": _full(_UUID % ("4", "[89ab]"), re.IGNORECASE),
    "uuid5": _full(_UUID % ("5", "[89ab]"), re.IGNORECASE),
    "isbn": lambda text: is_isbn10(text) or is_isbn13(text),
    "isbn10": is_isbn10,
    "isbn13": is_isbn13,
    "creditcard": is_credit_card,
    "ssn": is_ssn,
    "hexcolor": _full(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})"),
    "rgbcolor": _full(rf"rgb\({_RGB_PART},{_RGB_PART},{_RGB_PART}\)"),
    "byte": _full(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})"),
    "password": lambda text: True,
    "date": is_date,
    "duration": is_strfmt_duration,
    "datetime": is_strfmt_datetime,
}
_SINCE_1_34: Mapping[str, Checker] = {
    "k8sshortname": _bounded(_full(_SHORT_NAME), 63),
    "k8slongname": _bounded(_full(rf"{_SHORT_NAME}(\.{_SHORT_NAME})*"), 253),
}


def crd_format(name: str, kubernetes: tuple[int, int]) -> Checker | None:
    """The checker the API server of version `kubernetes` runs for `format: name` on a string
    of a custom resource, or None when it checks nothing (an unknown format)."""
    normalized = name.replace("-", "")
    if kubernetes >= (1, 34) and normalized in _SINCE_1_34:
        return _SINCE_1_34[normalized]
    return _STRFMT.get(normalized)
