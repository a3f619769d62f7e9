"""Which strings the API server accepts as a resource quantity (`cpu: 500m`, `memory: 1Gi`).

A port of the failure modes of k8s.io/apimachinery/pkg/api/resource: Quantity.UnmarshalJSON
(quantity.go) trims white space and calls ParseQuantity, which scans the text with
parseQuantityString and interprets the suffix with the suffixer of suffix.go. Only whether it
fails matters here; the value it makes is not computed. A JSON number is always accepted: its
Go text (`0.5`, `1e+21`) is itself a quantity.

What ParseQuantity accepts is wider than the regular expression its error message quotes: `.`,
`+`, `Ki` and `1.G` are all quantities (zero and one giga), while `Ei` and `e-12` are not (their
value has no digit and takes the slow path through inf.Dec.SetString, which needs one).
"""

from __future__ import annotations

from gitops import caches
from gitops.lru import Memo

# unicode.IsSpace, which strings.TrimSpace uses: not Python's str.isspace (that also strips the
# ASCII separators \x1c-\x1f).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_DIGITS = frozenset("0123456789")
_SUFFIX_LETTERS = frozenset("eEinumkKMGTP")
_DECIMAL = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_NANO = -9
_MAX_INT64_FACTORS = 18
_INT64 = 1 << 63


def is_quantity(text: str) -> bool:
    """Whether Quantity.UnmarshalJSON accepts the JSON string `text`."""
    return _KNOWN[text]


def parses(text: str) -> bool:
    """Whether ParseQuantity(text) succeeds (no white space allowed)."""
    if not text:
        return False
    if text == "0":
        return True
    scanned = _scan(text)
    if scanned is None:
        return False
    value, num, denom, suffix = scanned
    interpreted = _interpret(suffix)
    if interpreted is None:
        return False
    binary, exponent = interpreted
    if _fast_path(binary, exponent, num, denom):
        return True
    # inf.Dec.SetString(value): a sign, digits and at most one point, with at least one digit
    return any(ch in _DIGITS for ch in value)


def _scan(text: str) -> tuple[str, str, str, str] | None:
    """parseQuantityString: (value, numerator, denominator, suffix), or None when malformed."""
    end = len(text)
    pos = 1 if text[0] in "+-" else 0
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return "0", "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos >= end:
        return text, text[start:], "", ""
    num = text[start:pos] or "0"
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        if pos >= end:
            return text, num, text[start:], ""
        denom = text[start:pos]
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_LETTERS:
        pos += 1
    if pos >= end:
        return value, num, denom, text[suffix_start:]
    if text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos >= end:
        return value, num, denom, text[suffix_start:]
    return None


def _interpret(suffix: str) -> tuple[bool, int] | None:
    """(binary, exponent) of a suffix, or None when the suffixer does not know it."""
    if suffix in _DECIMAL:
        return False, _DECIMAL[suffix]
    if suffix in _BINARY:
        return True, _BINARY[suffix]
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        if not body or any(ch not in _DIGITS for ch in body):
            return None
        parsed = int(digits)
        if not -_INT64 <= parsed < _INT64:  # strconv.ParseInt(..., 10, 64) fails
            return None
        return False, _int32(parsed)
    return None


def _fast_path(binary: bool, exponent: int, num: str, denom: str) -> bool:
    """Whether ParseQuantity returns from its int64 path, which cannot fail."""
    if not binary:
        precision = _MAX_INT64_FACTORS - (len(num) + len(denom))
        scale = exponent
    elif denom == "":
        # 1Mi (2^20) has about 6 digits of decimal precision: float32(exponent)*3/10, truncated
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        scale = 0
    else:
        return False
    if precision < 0:
        return False
    scale -= len(denom)
    if scale < _NANO:
        return False
    mantissa = 1 << exponent if binary else 1
    result = int(num + denom) * mantissa
    return -_INT64 <= result < _INT64


def _int32(number: int) -> int:
    """Go's int32(x) conversion: the low 32 bits, signed."""
    number &= 0xFFFFFFFF
    return number - (1 << 32) if number >= 1 << 31 else number


# The same quantities come back in every bundle: remember the answers.
_KNOWN: Memo[str, bool] = caches.memo("quantities", lambda text: parses(text.strip(_GO_SPACE)),
                                      caches.QUANTITIES)
