# ruff: noqa: RUF001  (the Greek letters are upstream's test strings)
"""gitops/validate/cel_k8s.py: Kubernetes' CEL libraries and operators on celpy.

The cases are taken from the upstream tests where they exist (cel-go ext/strings_test.go;
apiserver/pkg/cel/library/{lists,regex,urls,quantity,ip,cidr,format}_test.go), each
written as an expression that must evaluate to true, or to an error of a stated kind."""

from __future__ import annotations

import pytest
from celpy.evaluation import CELEvalError

from gitops.validate.cel import _classify, compile_rule
from gitops.validate.cel_k8s import NAMESPACES, go_float, parse_quantity


def run(expr: str) -> object:
    compiled = compile_rule(expr)
    assert compiled.runner is not None, compiled.error
    return compiled.runner.evaluate(dict(NAMESPACES))


def failure(expr: str) -> tuple[bool, str]:
    """(whether Kubernetes fails the same way, the text) for an expression that errs."""
    with pytest.raises(CELEvalError) as raised:
        run(expr)
    return _classify(raised.value)


TRUE = [
    # cel-go ext/strings_test.go (strings version 2)
    "'tacocat'.charAt(3) == 'o'", "'tacocat'.charAt(7) == ''",
    "'©αT'.charAt(0) == '©' && '©αT'.charAt(1) == 'α' && '©αT'.charAt(2) == 'T'",
    "'tacocat'.indexOf('') == 0", "'tacocat'.indexOf('ac') == 1", "'tacocat'.indexOf('none') == -1",
    "'tacocat'.indexOf('', 3) == 3", "'tacocat'.indexOf('a', 3) == 5", "'ta©o©αT'.indexOf('©', 3) == 4",
    "'ta©o©αT'.indexOf('©α', 5) == -1", "'hello wello'.indexOf('ello', 6) == 7",
    "'tacocat'.lastIndexOf('') == 7", "'tacocat'.lastIndexOf('at') == 5", "'tacocat'.lastIndexOf('', 3) == 3",
    "'tacocat'.lastIndexOf('a', 3) == 1", "'ta©o©αT'.lastIndexOf('©', 3) == 2",
    "'ta©o©αT'.lastIndexOf('©α', 4) == 4", "'bananananana'.lastIndexOf('nana', 7) == 6",
    "'TacoCÆt Xii'.lowerAscii() == 'tacocÆt xii'", "'tacoCαt'.upperAscii() == 'TACOCαT'",
    '"{0} days {0} hours".replace("{0}", "2", 1).replace("{0}", "23") == "2 days 23 hours"',
    '"hello hello".replace("", "_") == "_h_e_l_l_o_ _h_e_l_l_o_"',
    '"hello world".split(" ") == ["hello", "world"]', '"hello world events!".split(" ", 0) == []',
    '"hello world events!".split(" ", 1) == ["hello world events!"]',
    '"o©o©o©o".split("©", -1) == ["o", "o", "o", "o"]',
    '"tacocat".substring(4) == "cat"', '"tacocat".substring(0, 4) == "taco"',
    "'ta©o©αT'.substring(2, 6) == \"©o©α\"",
    '" \\f\\n\\r\\t\\vtext  ".trim() == "text"', '"\\u0085\\u00a0\\u1680text".trim() == "text"',
    "['x', 'y'].join() == 'xy'", "['x', 'y'].join('-') == 'x-y'", "[].join('-') == ''",
    'strings.quote("first\\nsecond") == "\\"first\\\\nsecond\\""',
    'strings.quote("verbatim") == "\\"verbatim\\""',
    "'%s is %d'.format(['x', 3]) == 'x is 3'",
    # lists_test.go
    "[1, 2, 3].isSorted()", "![3, 2, 1].isSorted()", "['a', 'b'].isSorted()", "[].isSorted()",
    "[1, 2, 3].sum() == 6", "[1.5, 2.5].sum() == 4.0",
    "[duration('1s'), duration('2s')].sum() == duration('3s')",
    "[3, 1, 2].min() == 1", "[3, 1, 2].max() == 3", "['b', 'a'].min() == 'a'",
    "[1, 2, 2, 3].indexOf(2) == 1", "[1, 2, 2, 3].lastIndexOf(2) == 2", "['a'].indexOf('b') == -1",
    # regex_test.go
    "'abc 123'.find('[0-9]+') == '123'", "'abc'.find('[0-9]+') == ''",
    "'123 abc 456'.findAll('[0-9]+') == ['123', '456']", "'123 abc 456'.findAll('[0-9]+', 1) == ['123']",
    "'123 abc 456'.findAll('[0-9]+', 0) == []", "'abc'.findAll('[0-9]+') == []",
    "'ab'.matches('^(?i)A')",
    # urls_test.go
    "url('https://example.com:80/path?query=val').getScheme() == 'https'",
    "url('https://example.com:80/path').getHost() == 'example.com:80'",
    "url('https://[::1]:80/path').getHost() == '[::1]:80'",
    "url('https://[::1]:80/path').getHostname() == '::1'",
    "url('https://example.com:80/path').getPort() == '80'", "url('https://example.com/path').getPort() == ''",
    "url('/absolute-path').getEscapedPath() == '/absolute-path'",
    "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
    "isURL('https://example.com/')", "!isURL('../relative-path')", "!isURL('')",
    # quantity_test.go
    "quantity('50M').isInteger()", "!quantity('50m').isInteger()", "quantity('1Mi').asInteger() == 1048576",
    "quantity('50m').asApproximateFloat() == 0.05", "quantity('-50m').sign() == -1",
    "quantity('0').sign() == 0",
    "quantity('50M').add(quantity('50k')) == quantity('50.05M')",
    "quantity('50M').add(20) == quantity('50000020')",
    "quantity('50M').sub(20000000) == quantity('30M')", "quantity('200M').compareTo(quantity('0.2G')) == 0",
    "quantity('50M').isLessThan(quantity('50Mi'))", "quantity('50Mi').isGreaterThan(quantity('50M'))",
    "isQuantity('200M')", "!isQuantity('20ZZ')", "!isQuantity('')", "quantity('1e3') == quantity('1k')",
    "quantity('1E') == quantity('1000P')",
    # ip_test.go, cidr_test.go
    "isIP('1.2.3.4')", "isIP('::1')", "!isIP('1.2.3.4.5')", "!isIP('::ffff:1.2.3.4')",
    "!isIP('fe80::1%eth0')",
    "!isIP('01.2.3.4')", "ip('127.0.0.1').isLoopback()", "ip('::1').family() == 6",
    "ip.isCanonical('2001:db8::abcd')", "!ip.isCanonical('2001:DB8::ABCD')",
    "ip('192.168.0.1').isGlobalUnicast()", "!ip('255.255.255.255').isGlobalUnicast()",
    "ip('169.254.169.254').isLinkLocalUnicast()", "ip('fe80::1').isLinkLocalUnicast()",
    "ip('224.0.0.1').isLinkLocalMulticast()", "ip('ff02::1').isLinkLocalMulticast()",
    "ip('0.0.0.0').isUnspecified()", "string(ip('::1')) == '::1'",
    "cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))",
    "!cidr('192.168.0.0/24').containsIP('192.168.1.1')",
    "cidr('192.168.0.0/24').containsCIDR('192.168.0.0/25')",
    "!cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.0/23'))",
    "cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')",
    "cidr('192.168.0.0/24').prefixLength() == 24",
    "cidr('::1/128').ip() == ip('::1')", "!isCIDR('192.168.0.0/33')", "isCIDR('2001:db8::/32')",
    "string(cidr('192.168.0.1/24')) == '192.168.0.1/24'",
    # format_test.go
    "!format.dns1123Label().validate('my-name').hasValue()",
    "format.dns1123Label().validate('MY').hasValue()",
    "format.dns1123Label().validate('a' + 'b'.replace('b', 'b') + '-').hasValue()",
    "!format.named('dns1123Subdomain').value().validate('apiextensions.k8s.io').hasValue()",
    "!format.named('nope').hasValue()",
    "!format.dns1123LabelPrefix().validate('my-label-prefix-').hasValue()",
    "!format.qualifiedName().validate('apiextensions.k8s.io/v1beta1').hasValue()",
    "format.dns1035Label().validate('1abc').hasValue()", "!format.labelValue().validate('').hasValue()",
    # sets (cel-go ext/sets_test.go)
    "sets.contains([1, 2, 3], [2])", "sets.equivalent([1, 2], [2, 1, 1])", "!sets.intersects([1], [2])",
    "sets.contains([1], [1.0])",
    # optional
    "optional.of(1).orValue(2) == 1", "optional.none().orValue(2) == 2",
    "!optional.ofNonZeroValue('').hasValue()",
    # Kubernetes' operators: heterogeneous equality, cross-type numeric comparisons
    "dyn(1) == 1.0", "1 < 1.5", "!(dyn('a') == 1)", "[1, [2]] == [1.0, [2u]]", "{'a': 1} == {'a': 1.0}",
    "'x' in ['x', 1]", "size('héllo') == 5",
    # cel-go's string(double): Go's %g
    "string(1.0) == '1'", "string(1e6) == '1e+06'", "string(123456.5) == '123456.5'",
    "string(0.00001) == '1e-05'",
]


@pytest.mark.parametrize("expr", TRUE)
def test_true(expr: str) -> None:
    assert run(expr) is not None and bool(run(expr)) is True, expr


@pytest.mark.parametrize(("expr", "text"), [
    ("quantity('1.5').asInteger()", "cannot convert value to integer"),
    ("quantity('20ZZ')", "quantities must match the regular expression"),
    ("ip('1.2.3')", "parse error"),
    ("cidr('1.2.3.4')", "parse error"),
    ("'tacocat'.substring(40)", "index out of range: 40"),
    ("'tacocat'.substring(4, 2)", "invalid substring range"),
    ("'tacocat'.charAt(30)", "index out of range: 30"),
    ("url('../relative')", "URL parse error"),
    ("optional.none().value()", "optional.none() dereference"),
])
def test_errors_kubernetes_also_raises(expr: str, text: str) -> None:
    faithful, reason = failure(expr)
    assert faithful and text in reason


@pytest.mark.parametrize("expr", [
    "'ab'.matches('a(?=b)')",  # lookahead: RE2 refuses it; whether Go does is not decided here
    "format.uri().validate('x')",  # strfmt's rules are not ported
    "isURL('mailto:someone@example.com')",  # opaque URLs: not parsed here
    "quantity('1') + quantity('2')",
    "semver('1.0.0')",  # the semver library is not implemented
])
def test_what_is_not_implemented_is_a_warning(expr: str) -> None:
    faithful, _ = failure(expr)
    assert not faithful


def test_quantity_parsing_follows_parse_quantity_string() -> None:
    assert parse_quantity("1.5Gi") is not None and parse_quantity("1.5Gi").value == 1.5 * 2**30  # type: ignore[union-attr]
    assert parse_quantity("-") is not None  # Go reads a lone sign as zero
    assert parse_quantity("1.5.5") is None
    assert parse_quantity("1e") is None
    assert parse_quantity("5i") is None


def test_go_float() -> None:
    assert [go_float(v) for v in (0.1, 100.0, 1234567.0, 1e21, -2.5, float("inf"))] == [
        "0.1", "100", "1.234567e+06", "1e+21", "-2.5", "+Inf"]
