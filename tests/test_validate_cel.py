"""gitops/validate/cel.py: CRDs' x-kubernetes-validations rules as the API server runs them.

The Gateway API CRDs and examples under tests/fixtures/validate/cel/gateway-api (see the README
there) are the real-world check: every example passes, mutations are refused with the rule's
message at the rule's path. The small schemas below pin each piece of validation.go's
behaviour; the hostile rule shows the evaluation is bounded.

Measure (CPU per HTTPRoute, per rule, and compile time):
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m tests.test_validate_cel
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.validate import cel
from gitops.validate.cel import check_rules, compile_rule
from gitops.validate.findings import Finding

FIXTURES = Path(__file__).parent / "fixtures" / "validate" / "cel" / "gateway-api"


def _load(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as stream:
        for doc in yaml.load_all(stream, Loader=yaml.CSafeLoader):
            if isinstance(doc, dict):
                yield doc


def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted((FIXTURES / "crds").glob("*.yaml")):
        for crd in _load(path):
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                found[key] = version["schema"]["openAPIV3Schema"]
    return found


SCHEMAS = _schemas()


def _schema(kind: str, version: str = "gateway.networking.k8s.io/v1") -> dict[str, Any]:
    return SCHEMAS[(version, kind)]


def _examples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((FIXTURES / "examples").rglob("*.yaml")):
        for doc in _load(path):
            if (doc.get("apiVersion"), doc.get("kind")) in SCHEMAS:
                found.append((f"{path.relative_to(FIXTURES)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


EXAMPLES = _examples()


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.warning]


def test_every_gateway_api_example_passes() -> None:
    assert len(EXAMPLES) > 80
    for name, doc in EXAMPLES:
        assert check_rules(doc, SCHEMAS[(doc["apiVersion"], doc["kind"])]) == [], name


ROUTE = yaml.safe_load("""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: foo-route}
spec:
  parentRefs: [{name: example-gateway}]
  hostnames: ["foo.example.com"]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /login}
    backendRefs: [{name: foo-svc, port: 8080}]
  - matches:
    - headers: [{type: Exact, name: env, value: canary}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: my-header, value: foo}]}
    backendRefs: [{name: foo-svc-canary, port: 8080}]
""")


def _route(change: Any) -> dict[str, Any]:
    route = copy.deepcopy(ROUTE)
    change(route["spec"])
    return route


@pytest.mark.parametrize(("change", "path", "reason"), [
    (lambda s: s["rules"][0]["matches"][0]["path"].update(value="login"), "spec.rules[0].matches[0].path",
     "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
    (lambda s: s["rules"][0]["matches"][0]["path"].update(value="/a/../b"), "spec.rules[0].matches[0].path",
     "must not contain '/../' when type one of ['Exact', 'PathPrefix']"),
    # the path's type defaults to PathPrefix: the rule sees the default
    (lambda s: s["rules"][1]["matches"][0].update(path={"value": "x"}), "spec.rules[1].matches[0].path",
     "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"),
    (lambda s: s["rules"][1]["filters"][0].update(type="ResponseHeaderModifier"), "spec.rules[1].filters[0]",
     "filter.requestHeaderModifier must be nil if the filter.type is not RequestHeaderModifier"),
    (lambda s: s["rules"][0]["backendRefs"][0].pop("port"), "spec.rules[0].backendRefs[0]",
     "Must have port for Service reference"),
])
def test_a_broken_route_is_refused_with_the_rules_message_at_its_path(
    change: Any, path: str, reason: str
) -> None:
    findings = check_rules(_route(change), _schema("HTTPRoute"))
    assert Finding(path, reason) in findings
    assert all(not f.warning for f in findings)


def test_a_gateway_with_two_identical_listeners_is_refused() -> None:
    gateway = next(doc for _, doc in EXAMPLES if doc["kind"] == "Gateway")
    gateway = copy.deepcopy(gateway)
    gateway["spec"]["listeners"].append({**gateway["spec"]["listeners"][0], "name": "copy"})
    findings = errors(check_rules(gateway, _schema("Gateway")))
    assert [f.path for f in findings] == ["spec.listeners"]
    assert "Combination of port, protocol and hostname must be unique for each listener" in findings[0].reason


GATEWAY_CLASS = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "example"},
    "spec": {"controllerName": "example.net/gateway-controller"},
}


def test_an_immutable_field_refuses_a_change_and_accepts_the_same_value_and_a_create() -> None:
    schema = _schema("GatewayClass")
    changed = copy.deepcopy(GATEWAY_CLASS)
    changed["spec"]["controllerName"] = "example.net/other"
    immutable = Finding("spec.controllerName", "field is immutable")
    assert check_rules(changed, schema, GATEWAY_CLASS) == [immutable]
    assert check_rules(GATEWAY_CLASS, schema, copy.deepcopy(GATEWAY_CLASS)) == []
    assert check_rules(changed, schema) == []


# ----------------------------------------------------------------------------- small schemas

def _object(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec}}


def _rule(rule: str, **more: Any) -> dict[str, Any]:
    return {"rule": rule, **more}


def _check(spec_schema: dict[str, Any], spec: Any, old_spec: Any = None) -> list[Finding]:
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec}
    old = None if old_spec is None else {**obj, "spec": old_spec}
    return check_rules(obj, _object(spec_schema), old)


INTS = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}


def test_message_message_expression_and_the_default_text() -> None:
    schema = {**INTS, "x-kubernetes-validations": [
        _rule("self.a < self.b"),
        _rule("self.a < self.b", message="a must be below b"),
        _rule("self.a < self.b", messageExpression="'a is ' + string(self.a)", message="unused"),
        _rule("self.a < self.b", messageExpression="'two\\nlines'", message="fallback"),
    ]}
    assert _check(schema, {"a": 2, "b": 1}) == [
        Finding("spec", "failed rule: self.a < self.b"),
        Finding("spec", "a must be below b"),
        Finding("spec", "a is 2"),
        Finding("spec", "fallback"),
    ]
    assert _check(schema, {"a": 1, "b": 2}) == []


def test_field_path_and_reason() -> None:
    schema = {**INTS, "x-kubernetes-validations": [
        _rule("self.a < self.b", fieldPath=".a", reason="FieldValueForbidden", message="too big"),
        _rule("self.a < self.b", fieldPath=".b", reason="FieldValueRequired", message="too small"),
    ]}
    assert _check(schema, {"a": 2, "b": 1}) == [
        Finding("spec.a", "Forbidden: too big"), Finding("spec.b", "Required value: too small"),
    ]


def test_a_rule_on_an_absent_field_does_not_run_and_has_tests_presence() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "x-kubernetes-validations": [_rule("self == 'x'")]},
    }, "x-kubernetes-validations": [_rule("has(self.a)", message="a is required")]}
    assert _check(schema, {}) == [Finding("spec", "a is required")]
    assert _check(schema, {"a": "y"}) == [Finding("spec.a", "failed rule: self == 'x'")]


def test_reading_an_absent_field_is_an_error_as_in_kubernetes() -> None:
    schema = {**INTS, "x-kubernetes-validations": [_rule("self.a > 0")]}
    assert _check(schema, {"b": 1}) == [Finding("spec", "no such key: a evaluating rule: self.a > 0")]


def test_runtime_errors_kubernetes_shares_are_refusals() -> None:
    schema = {**INTS, "x-kubernetes-validations": [
        _rule("self.a * 9223372036854775807 > 0"), _rule("self.a / self.b > 0"), _rule("[1][self.a] == 1"),
    ]}
    findings = _check(schema, {"a": 2, "b": 0})
    assert [f.reason.split(" evaluating")[0] for f in findings] == [
        "integer overflow", "division by zero", "index out of bounds"]
    assert not any(f.warning for f in findings)


def test_what_cannot_be_evaluated_is_a_warning() -> None:
    schema = {**INTS, "x-kubernetes-validations": [
        _rule("self.?a.orValue(0) > 0"),  # optional syntax: celpy cannot parse it
        _rule("self.a.semverThing()"),  # a function not implemented
        _rule("cel.bind(x, self.a, x > 0)"),
        _rule("[1, 2].all(i, v, v > 0)"),  # two-variable comprehension
    ]}
    findings = _check(schema, {"a": 2, "b": 0})
    assert len(findings) == 4
    assert all(f.warning for f in findings)


def test_defaults_are_applied_before_the_rules_run() -> None:
    schema = {"type": "object", "properties": {
        "mode": {"type": "string", "default": "Fast"}, "n": {"type": "integer"},
    }, "x-kubernetes-validations": [
        _rule("self.mode == 'Fast' ? self.n < 10 : true", message="fast is small")]}
    assert _check(schema, {"n": 20}) == [Finding("spec", "fast is small")]
    assert _check(schema, {"n": 20, "mode": "Slow"}) == []


def test_heterogeneous_equality_and_int_or_string() -> None:
    schema = {"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": True}, "ratio": {"type": "number"},
    }, "x-kubernetes-validations": [
        _rule("self.port == 80 || self.port == 'http'", message="port"),
        _rule("!has(self.ratio) || self.ratio <= 1", message="ratio"),
        _rule("!has(self.ratio) || self.ratio == 1 || self.ratio < 1", message="ratio eq"),
    ]}
    assert _check(schema, {"port": 80, "ratio": 1}) == []
    assert _check(schema, {"port": "http", "ratio": 0.5}) == []
    assert _check(schema, {"port": "https", "ratio": 1.5}) == [
        Finding("spec", "port"), Finding("spec", "ratio"), Finding("spec", "ratio eq")]


def test_property_names_are_escaped_as_kubernetes_escapes_them() -> None:
    schema = {"type": "object", "properties": {
        "namespace": {"type": "string"}, "x-y": {"type": "string"}, "a.b": {"type": "string"},
    }, "x-kubernetes-validations": [
        _rule("self.__namespace__ == self.x__dash__y && self.a__dot__b == 'v'", message="escaped")]}
    assert _check(schema, {"namespace": "v", "x-y": "v", "a.b": "v"}) == []
    assert _check(schema, {"namespace": "v", "x-y": "w", "a.b": "v"}) == [Finding("spec", "escaped")]


def test_date_time_and_duration_strings_are_timestamps_and_durations() -> None:
    schema = {"type": "object", "properties": {
        "start": {"type": "string", "format": "date-time"}, "every": {"type": "string", "format": "duration"},
    }, "x-kubernetes-validations": [
        _rule("self.start > timestamp('2024-01-01T00:00:00Z')", message="start"),
        _rule("self.every >= duration('1m')", message="every"),
    ]}
    assert _check(schema, {"start": "2025-05-01T10:00:00+02:00", "every": "1h30m"}) == []
    assert _check(schema, {"start": "2023-05-01T10:00:00Z", "every": "30s"}) == [
        Finding("spec", "start"), Finding("spec", "every")]


def test_metadata_name_is_visible_at_the_root() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object"}},
              "x-kubernetes-validations": [_rule("self.metadata.name.startsWith('a')", message="name")]}
    assert check_rules({"metadata": {"name": "abc"}, "spec": {}}, schema) == []
    assert check_rules({"metadata": {"name": "xbc"}, "spec": {}}, schema) == [Finding("", "name")]


IMMUTABLE = [_rule("self == oldSelf", message="immutable")]


def test_transition_rules_follow_map_list_keys_not_positions() -> None:
    schema = {"type": "object", "properties": {"ports": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "port": {"type": "integer", "x-kubernetes-validations": IMMUTABLE},
        }},
    }}}
    old = {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}
    assert _check(schema, {"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1}]}, old) == []
    assert _check(schema, {"ports": [{"name": "b", "port": 3}, {"name": "c", "port": 9}]}, old) == [
        Finding("spec.ports[0].port", "immutable")]


def test_transition_rules_do_not_run_inside_atomic_lists() -> None:
    schema = {"type": "object", "properties": {"values": {
        "type": "array", "items": {"type": "integer", "x-kubernetes-validations": IMMUTABLE}}}}
    assert _check(schema, {"values": [5]}, {"values": [4]}) == []


def test_map_lists_compare_without_order_in_self_equal_old_self() -> None:
    schema = {"type": "object", "properties": {"ports": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}},
        "x-kubernetes-validations": IMMUTABLE,
    }}}
    old = {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}
    assert _check(schema, {"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 1}]}, old) == []
    assert _check(schema, {"ports": [{"name": "b", "port": 3}, {"name": "a", "port": 1}]}, old) == [
        Finding("spec.ports", "immutable")]


def test_optional_old_self_runs_on_create_with_an_empty_optional() -> None:
    rule = _rule("!oldSelf.hasValue() || self >= oldSelf.value()", optionalOldSelf=True,
                 message="no decrease")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "x-kubernetes-validations": [
        rule, _rule("oldSelf.orValue(0) <= self", optionalOldSelf=True, message="orValue")]}}}
    assert _check(schema, {"n": 3}) == []
    assert _check(schema, {"n": 3}, {"n": 2}) == []
    assert _check(schema, {"n": 1}, {"n": 2}) == [
        Finding("spec.n", "no decrease"), Finding("spec.n", "orValue")]


def test_an_error_on_an_unchanged_value_is_ratcheted_to_a_warning() -> None:
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "x-kubernetes-validations": [_rule("self.size() < 3", message="short")]},
        "b": {"type": "string"},
    }}
    old = {"a": "long", "b": "x"}
    [finding] = _check(schema, {"a": "long", "b": "y"}, old)
    assert finding.warning and finding.path == "spec.a"
    assert errors(_check(schema, {"a": "longer", "b": "x"}, old)) == [Finding("spec.a", "short")]


def test_compiled_once_per_rule_text() -> None:
    assert compile_rule("self.a > 1") is compile_rule("self.a > 1")


def test_a_hostile_rule_is_stopped_by_the_step_budget() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}},
              "x-kubernetes-validations": [
                  _rule("self.a.all(x, self.a.all(y, self.a.all(z, x + y + z >= 0)))")] * 30}
    findings = _check(schema, {"a": list(range(2000))})
    # stopped by the object's step budget (a warning: never a refusal), not run to its end
    assert findings and all(f.warning for f in findings)
    assert "not evaluated" in findings[0].reason


def test_the_budget_is_per_object() -> None:
    assert cel.RULE_STEPS < cel.OBJECT_STEPS


def _bench() -> None:
    """CPU per HTTPRoute (every rule of the example route), per rule, and compile time."""
    schema = _schema("HTTPRoute")
    rules = sorted({r["rule"] for r in _rules(schema)})
    check_rules(ROUTE, schema)
    runs = 50
    start = time.process_time()
    for _ in range(runs):
        check_rules(ROUTE, schema)
    per_object = (time.process_time() - start) / runs
    evaluated = _count_evaluations(schema)
    start = time.process_time()
    for rule in rules:
        cel._compile(rule)
    per_compile = (time.process_time() - start) / len(rules)
    print(f"HTTPRoute example: {per_object * 1000:.1f} ms CPU per object, {evaluated} rule evaluations, "
          f"{per_object / evaluated * 1000:.2f} ms per evaluation")
    print(f"compile: {per_compile * 1000:.2f} ms per rule ({len(rules)} distinct HTTPRoute rules)")


def _rules(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield from node.get("x-kubernetes-validations") or []
        for value in node.values():
            yield from _rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from _rules(value)


def _count_evaluations(schema: dict[str, Any]) -> int:
    count = 0
    original = cel._evaluate

    def counting(*args: Any) -> Any:
        nonlocal count
        count += 1
        return original(*args)

    cel._evaluate = counting  # type: ignore[assignment]
    try:
        check_rules(ROUTE, schema)
    finally:
        cel._evaluate = original  # type: ignore[assignment]
    return count


if __name__ == "__main__":
    _bench()
