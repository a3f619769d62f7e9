"""The string rules the API server checks with Go code: resource quantities
(k8s.io/apimachinery resource.ParseQuantity, against the inputs of its own tests), metav1.Time,
kube-openapi's string formats for custom resources, and RE2 patterns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.validate import formats
from gitops.validate.goregex import HAVE_RE2, compile_pattern
from gitops.validate.quantity import is_quantity, parses

FIXTURES = Path(__file__).parent / "fixtures" / "validate"
QUANTITIES = json.loads((FIXTURES / "quantities.json").read_text())


@pytest.mark.parametrize("text", QUANTITIES["valid"])
def test_quantities_go_parses(text: str) -> None:
    assert parses(text)


@pytest.mark.parametrize("text", QUANTITIES["invalid"])
def test_quantities_go_refuses(text: str) -> None:
    assert not parses(text)


@pytest.mark.parametrize("text", ["1Gi", " 1Gi", "1Gi\n", "\u00a01"])
def test_unmarshal_trims_go_white_space(text: str) -> None:
    """Quantity.UnmarshalJSON trims with strings.TrimSpace before parsing."""
    assert is_quantity(text)


@pytest.mark.parametrize("text", ["1 GB", "1GB", "1gi", "1.2.3", "", "\x1c1", "Ei", "e-12", "1e",
                                  "1e99999999999999999999", "one"])
def test_malformed_quantities(text: str) -> None:
    assert not is_quantity(text)


@pytest.mark.parametrize("text", [".", "+", "Ki", "1.G", "12E", "1e3", "-1", "0.5e-9", "1E-3"])
def test_surprising_quantities_go_accepts(text: str) -> None:
    """ParseQuantity is wider than the expression its error quotes."""
    assert is_quantity(text)


@given(st.integers(min_value=-(10**30), max_value=10**30), st.sampled_from(
    ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "e3", "E-2"]))
@settings(max_examples=200)
def test_digits_with_any_suffix_are_quantities(number: int, suffix: str) -> None:
    assert is_quantity(f"{number}{suffix}")
    assert is_quantity(f"{number}.5{suffix}")


@pytest.mark.parametrize(("text", "micro", "valid"), [
    ("2024-01-31T12:00:00Z", False, True),
    ("2024-01-31T12:00:00.123456789+05:30", False, True),
    ("2024-01-31T12:00:00,5Z", False, True),  # Go reads a comma as the fraction's point
    ("2024-01-31T1:00:00Z", False, True),  # the hour of layout "15" takes one digit
    ("2024-02-29T00:00:00Z", False, True),
    ("2023-02-29T00:00:00Z", False, False),
    ("2024-01-31t12:00:00Z", False, False),
    ("2024-01-31T12:00:00z", False, False),
    ("2024-01-31 12:00:00Z", False, False),
    ("2024-01-31T24:00:00Z", False, False),
    ("2024-01-31T12:00:60Z", False, False),
    ("2024-01-31", False, False),
    ("2024-01-31T12:00:00.000000Z", True, True),
    ("2024-01-31T12:00:00Z", True, False),
    ("2024-01-31T12:00:00.000Z", True, False),
])
def test_rfc3339_times(text: str, micro: bool, valid: bool) -> None:
    assert formats.is_rfc3339_time(text, micro) is valid


def test_offsets_some_go_releases_accept_are_undecided() -> None:
    assert formats.is_rfc3339_time("2024-01-31T12:00:00+25:00") is None


@pytest.mark.parametrize(("name", "text", "valid"), [
    ("date-time", "2024-01-31T12:00:00Z", True),
    ("date-time", "2024-01-31t12:00:00.5+01:00", True),  # strfmt lowers the text first
    ("datetime", "2024-01-31T25:00:00Z", False),
    ("date-time", "2024-01-31", False),
    ("date", "2024-12-31", True),
    ("date", "2024-13-01", False),
    ("duration", "1h30m", True),
    ("duration", "5 minutes", True),  # strfmt's fallback: a number and a unit, by prefix
    ("duration", "soon", False),
    ("uri", "https://example.com/path?q=1", True),
    ("uri", "/relative/path", True),
    ("uri", "relative", False),
    ("uri", "https://exa mple.com/", False),
    ("uri", "https://example.com:http/", False),
    ("uri", "https://example.com/%zz", False),
    ("hostname", "node-1.example.com", True),
    ("hostname", "-bad", False),
    ("ipv4", "10.0.0.1", True),
    ("ipv4", "010.000.000.001", True),  # ParseIPSloppy: leading zeros
    ("ipv4", "256.0.0.1", False),
    ("ipv4", "::1", False),
    ("ipv6", "fe80::1", True),
    ("ipv6", "fe80::1%eth0", False),
    ("ipv6", "10.0.0.1", False),
    ("cidr", "10.0.0.0/8", True),
    ("cidr", "fd00::/64", True),
    ("cidr", "10.0.0.0/33", False),
    ("cidr", "10.0.0.0", False),
    ("mac", "01:23:45:67:89:ab", True),
    ("mac", "0123.4567.89ab", True),
    ("mac", "01:23:45-67:89:ab", False),
    ("uuid", "123E4567-E89B-12D3-A456-426614174000", True),
    ("uuid4", "123e4567-e89b-12d3-a456-426614174000", False),
    ("byte", "aGVsbG8=", True),
    ("byte", "aGVsbG8", False),
    ("byte", "", False),  # govalidator's expression needs one quantum
    ("email", "ops@example.com", True),
    ("email", "not an address", False),
    ("bsonobjectid", "507f1f77bcf86cd799439011", True),
    ("hexcolor", "#fff", True),
    ("rgbcolor", "rgb(255, 0, 10)", True),
    ("rgbcolor", "rgb(256,0,0)", False),
    ("isbn10", "0-306-40615-2", True),
    ("isbn13", "978-0-306-40615-7", True),
    ("creditcard", "4111 1111 1111 1111", True),
    ("ssn", "123-45-6789", True),
    ("password", "anything", True),
])
def test_crd_formats(name: str, text: str, valid: bool) -> None:
    checker = formats.crd_format(name, (1, 37))
    assert checker is not None
    assert checker(text) is valid


def test_unknown_formats_are_not_checked() -> None:
    assert formats.crd_format("int-or-string", (1, 37)) is None
    assert formats.crd_format("quantity", (1, 37)) is None


def test_kubernetes_name_formats_arrive_in_1_34() -> None:
    assert formats.crd_format("k8s-short-name", (1, 33)) is None
    short = formats.crd_format("k8s-short-name", (1, 34))
    long = formats.crd_format("k8s-long-name", (1, 34))
    assert short is not None and long is not None
    assert short("web-1") and not short("Web") and not short("a" * 64)
    assert long("a.b-c.d") and not long("a..b")


def test_undecided_email_forms() -> None:
    assert formats.is_email('"Ops Team" <ops@example.com>') is None


@pytest.mark.skipif(not HAVE_RE2, reason="google-re2 is missing")
@pytest.mark.parametrize(("pattern", "text", "matched"), [
    (r"^[a-z]+$", "abc", True),
    (r"^[a-z]+$", "abc\n", False),  # Go's $ is the end of the text; Python's also before "\n"
    (r"^\d+$", "١٢", False),  # Go's \d is ASCII
    (r"^\w+$", "é", False),
    (r"^\pL+$", "é", True),
    (r"[[:alpha:]]", "x", True),
    (r"foo", "xfooy", True),  # unanchored, as regexp.MatchString
    (r"^a\z", "a", True),
])
def test_go_patterns(pattern: str, text: str, matched: bool) -> None:
    assert compile_pattern(pattern)(text) is matched


def test_patterns_go_cannot_compile_are_undecided() -> None:
    assert compile_pattern(r"(?=lookahead)")("x") is None
    assert compile_pattern(r"a\Z")("a") is None
