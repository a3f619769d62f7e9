"""Custom resources against their CRD's structural schema, rule by rule: each test names the
field the finding is about and whether the API server would certainly refuse (an error) or
not (a warning). The expected behaviour is apiextensions-apiserver's (pruning, defaulting,
objectmeta, listtype), kube-openapi's validators and server-side apply's typed conversion."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.validate import builtin
from gitops.validate.findings import Finding
from gitops.validate.schema import cached_crd, check, compile_crd

META = builtin.object_meta("1.37")
ERROR, WARNING = False, True


def crd(spec: dict[str, Any], kubernetes: tuple[int, int] = (1, 37), status: dict[str, Any] | None = None,
        **root: Any) -> Any:
    properties: dict[str, Any] = {"spec": spec}
    if status is not None:
        properties["status"] = status
    schema = {"type": "object", "properties": properties, **root}
    return compile_crd(schema, kubernetes, status_subresource=status is not None, object_meta=META)


def cr(spec: Any = None, **top: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"apiVersion": "example.com/v1", "kind": "Widget",
                             "metadata": {"name": "w", "namespace": "default"}, **top}
    if spec is not None:
        value["spec"] = spec
    return value


def found(value: Any, node: Any) -> set[tuple[str, bool]]:
    return {(finding.path, finding.warning) for finding in check(value, node)}


def props(**fields: Any) -> dict[str, Any]:
    return {"type": "object", "properties": fields}


INT = {"type": "integer"}
STR = {"type": "string"}


# --- types ----------------------------------------------------------------------------------


def test_a_string_for_an_integer_is_refused_at_its_field() -> None:
    node = crd(props(replicas=INT))
    [finding] = check(cr({"replicas": "three"}), node)
    assert finding == Finding("spec.replicas", 'must be an integer, not the string "three"')


@pytest.mark.parametrize(("schema", "value", "expected"), [
    (INT, 3, set()),
    (INT, 3.0, set()),  # JSON decoding makes 3.0 the integer 3
    (INT, 1.5, {("spec.x", ERROR)}),
    (INT, 2.0000000001, {("spec.x", WARNING)}),  # kube-openapi: within 1e-9 is an integer
    (INT, True, {("spec.x", ERROR)}),
    ({"type": "number"}, 3, set()),
    ({"type": "number"}, "3", {("spec.x", ERROR)}),
    ({"type": "boolean"}, "true", {("spec.x", ERROR)}),
    ({"type": "boolean"}, 1, {("spec.x", ERROR)}),
    (STR, 80, {("spec.x", ERROR)}),
    ({"type": "array", "items": STR}, "a", {("spec.x", ERROR)}),
    ({"type": "object", "additionalProperties": STR}, [], {("spec.x", ERROR)}),
])
def test_json_types(schema: dict[str, Any], value: Any, expected: set[tuple[str, bool]]) -> None:
    assert found(cr({"x": value}), crd(props(x=schema))) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("25%", set()), (3, set()), (3.0, set()),
    (True, {("spec.port", ERROR)}), (1.5, {("spec.port", ERROR)}), ({}, {("spec.port", ERROR)}),
])
def test_int_or_string(value: Any, expected: set[tuple[str, bool]]) -> None:
    schema = {"x-kubernetes-int-or-string": True, "anyOf": [INT, STR]}
    assert found(cr({"port": value}), crd(props(port=schema))) == expected


# --- nulls and defaults ---------------------------------------------------------------------


def test_nulls_and_defaults() -> None:
    node = crd({"type": "object", "required": ["must", "defaulted"], "properties": {
        "optional": STR, "nullable": {"type": "string", "nullable": True},
        "must": STR, "defaulted": {"type": "string", "default": "x"},
        "list": {"type": "array", "items": STR},
        "nullableItems": {"type": "array", "items": {"type": "string", "nullable": True}},
        "withDefault": {"type": "integer", "default": 1},
    }})
    value = cr({"optional": None, "nullable": None, "must": None, "defaulted": None,
                "list": ["a", None], "nullableItems": [None], "withDefault": None})
    assert found(value, node) == {
        ("spec.optional", WARNING),  # pruned (dropped) on decoding: accepted
        ("spec.must", ERROR),  # pruned, then missing
        ("spec.list[1]", ERROR),  # list items are not pruned
    }


def test_required_fields_with_defaults_are_filled_before_validation() -> None:
    node = crd({"type": "object", "required": ["mode", "size"], "properties": {
        "mode": {"type": "string", "default": "fast"}, "size": INT}})
    assert found(cr({}), node) == {("spec.size", ERROR)}
    assert found(cr(), node) == set()  # no spec: defaulting does not create it


def test_null_never_matches_an_enum_even_when_nullable() -> None:
    node = crd(props(tier={"type": "string", "nullable": True, "enum": ["gold", "silver"]}))
    assert found(cr({"tier": None}), node) == {("spec.tier", ERROR)}


# --- unknown fields -------------------------------------------------------------------------


def test_unknown_fields_are_refused_where_nothing_preserves_them() -> None:
    node = crd(props(size=INT, nested=props(a=STR)))
    value = cr({"size": 1, "colour": "red", "nested": {"a": "x", "b": "y"}}, extra=1)
    assert found(value, node) == {("spec.colour", ERROR), ("spec.nested.b", ERROR), ("extra", ERROR)}
    assert {f.reason for f in check(value, node)} == {"field not declared in schema"}


def test_type_meta_and_metadata_are_always_declared() -> None:
    node = compile_crd({"type": "object", "properties": {"spec": props(a=STR)}}, object_meta=META)
    assert found(cr({"a": "x"}), node) == set()


def test_metadata_is_object_meta() -> None:
    node = crd(props(a=STR))
    value = cr({"a": "x"})
    value["metadata"].update(labels={"app": 1}, colour="red", annotations={"a": "b"})
    assert found(value, node) == {("metadata.labels[app]", ERROR), ("metadata.colour", ERROR)}


def test_the_crd_rules_on_metadata_still_apply() -> None:
    node = crd(props(a=STR), properties={
        "spec": props(a=STR), "metadata": props(name={"type": "string", "maxLength": 5})})
    value = cr({"a": "x"})
    value["metadata"]["name"] = "too-long-a-name"
    assert found(value, node) == {("metadata.name", ERROR)}


def test_preserved_fields_are_kept() -> None:
    node = crd({"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"size": INT}})
    assert found(cr({"size": 1, "anything": {"goes": [1, "x"]}}), node) == set()
    assert found(cr({"size": "1", "anything": 1}), node) == {("spec.size", ERROR)}


def test_below_a_preserving_field_undeclared_fields_are_dropped_not_refused() -> None:
    """Typed conversion inherits x-kubernetes-preserve-unknown-fields; pruning does not."""
    node = crd({"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"nested": props(a=STR)}})
    assert found(cr({"nested": {"a": "x", "b": "y"}}), node) == {("spec.nested.b", WARNING)}


def test_an_object_without_properties_drops_everything() -> None:
    """`metadata: {type: object}` in a pod template: a classic of generated CRDs."""
    node = crd(props(template=props(metadata={"type": "object"}, spec={"type": "object"})))
    value = cr({"template": {"metadata": {"labels": {"a": "b"}}}})
    [finding] = check(value, node)
    assert (finding.path, finding.warning) == ("spec.template.metadata.labels", WARNING)


def test_items_of_a_preserving_list_keep_their_fields() -> None:
    node = crd(props(pipelines={"type": "array", "x-kubernetes-preserve-unknown-fields": True,
                                "items": {"type": "object"}}))
    assert found(cr({"pipelines": [{"pipeline.id": "main"}]}), node) == set()


def test_maps() -> None:
    node = crd(props(env={"type": "object", "additionalProperties": STR}))
    assert found(cr({"env": {"A": "1", "B": 2}}), node) == {("spec.env[B]", ERROR)}


# --- value validations ----------------------------------------------------------------------


@pytest.mark.parametrize(("schema", "value", "expected"), [
    ({"type": "string", "enum": ["a", "b"]}, "c", {("spec.x", ERROR)}),
    ({"type": "string", "enum": ["a", "b"]}, "a", set()),
    ({"type": "integer", "enum": [1, 2]}, 2.0, set()),
    ({"type": "integer", "minimum": 1, "maximum": 3}, 0, {("spec.x", ERROR)}),
    ({"type": "integer", "minimum": 1, "maximum": 3}, 3, set()),
    ({"type": "integer", "maximum": 3, "exclusiveMaximum": True}, 3, {("spec.x", ERROR)}),
    ({"type": "integer", "minimum": 1, "exclusiveMinimum": True}, 1, {("spec.x", ERROR)}),
    ({"type": "integer", "multipleOf": 5}, 12, {("spec.x", ERROR)}),
    ({"type": "number", "multipleOf": 0.5}, 1.5, set()),
    ({"type": "string", "maxLength": 3}, "ééé", set()),  # counted in code points, as Go's runes
    ({"type": "string", "maxLength": 3}, "abcd", {("spec.x", ERROR)}),
    ({"type": "string", "minLength": 2}, "a", {("spec.x", ERROR)}),
    ({"type": "string", "pattern": r"^[a-z]+$"}, "abc", set()),
    ({"type": "string", "pattern": r"^[a-z]+$"}, "abc\n", {("spec.x", ERROR)}),
    ({"type": "string", "pattern": r"^(?=a)"}, "a", {("spec.x", WARNING)}),  # not RE2
    ({"type": "string", "format": "date-time"}, "yesterday", {("spec.x", ERROR)}),
    ({"type": "string", "format": "date-time"}, "2024-01-31T12:00:00Z", set()),
    ({"type": "string", "format": "no-such-format"}, "anything", set()),
    ({"type": "array", "items": STR, "minItems": 1}, [], {("spec.x", ERROR)}),
    ({"type": "array", "items": STR, "maxItems": 1}, ["a", "b"], {("spec.x", ERROR)}),
    ({"type": "array", "items": STR, "uniqueItems": True}, ["a", "a"], {("spec.x[1]", ERROR)}),
    ({"type": "object", "additionalProperties": STR, "maxProperties": 1}, {"a": "1", "b": "2"},
     {("spec.x", ERROR)}),
    ({"type": "object", "additionalProperties": STR, "minProperties": 1}, {}, {("spec.x", ERROR)}),
])
def test_value_validations(schema: dict[str, Any], value: Any, expected: set[tuple[str, bool]]) -> None:
    assert found(cr({"x": value}), crd(props(x=schema))) == expected


def test_enum_reason_names_the_accepted_values() -> None:
    [finding] = check(cr({"x": "c"}), crd(props(x={"type": "string", "enum": ["a", "b"]})))
    assert finding.reason == 'must be one of "a", "b", not "c"'


def test_int32_ranges_are_checked_from_kubernetes_1_36() -> None:
    schema = props(size={"type": "integer", "format": "int32"})
    value = cr({"size": 3_000_000_000})
    assert found(value, crd(schema, (1, 35))) == set()
    assert found(value, crd(schema, (1, 36))) == {("spec.size", ERROR)}


def test_kubernetes_name_formats_depend_on_the_version() -> None:
    schema = props(name={"type": "string", "format": "k8s-short-name"})
    assert found(cr({"name": "Not_A_Name"}), crd(schema, (1, 33))) == set()
    assert found(cr({"name": "Not_A_Name"}), crd(schema, (1, 34))) == {("spec.name", ERROR)}


# --- combinations ---------------------------------------------------------------------------


def test_any_of_one_of_all_of_not() -> None:
    node = crd({"type": "object", "properties": {"a": STR, "b": STR, "n": INT},
                "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
                "oneOf": [{"required": ["a"]}, {"required": ["n"]}],
                "allOf": [{"properties": {"n": {"minimum": 1}}}],
                "not": {"required": ["b", "n"]}})
    assert found(cr({"a": "x"}), node) == set()
    assert found(cr({"n": 1}), node) == {("spec", ERROR)}  # anyOf: neither a nor b
    assert found(cr({"a": "x", "n": 1}), node) == {("spec", ERROR)}  # oneOf: both
    assert found(cr({"a": "x", "n": 0}), node) == {("spec", ERROR), ("spec.n", ERROR)}
    assert found(cr({"b": "x", "n": 1}), node) == {("spec", ERROR)}  # not


def test_an_undecided_alternative_is_a_warning() -> None:
    node = crd(props(x={"type": "string", "anyOf": [{"pattern": "^(?=a)"}, {"maxLength": 1}]}))
    assert found(cr({"x": "abc"}), node) == {("spec.x", WARNING)}


# --- lists ----------------------------------------------------------------------------------


def test_list_type_set() -> None:
    node = crd(props(tags={"type": "array", "items": STR, "x-kubernetes-list-type": "set"},
                     numbers={"type": "array", "items": INT, "x-kubernetes-list-type": "set"}))
    assert found(cr({"tags": ["a", "b", "a"], "numbers": [1, 1.0]}), node) == {
        ("spec.tags[2]", ERROR), ("spec.numbers[1]", ERROR)}
    assert found(cr({"tags": ["a", None]}), node) == {("spec.tags[1]", ERROR)}


def test_list_type_map() -> None:
    node = crd(props(ports={
        "type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["port", "protocol"],
        "items": {"type": "object", "required": ["port"], "properties": {
            "port": INT, "protocol": {"type": "string", "default": "TCP"}}}}))
    value = cr({"ports": [{"port": 80}, {"port": 80, "protocol": "UDP"},
                          {"port": 80, "protocol": "TCP"}, "x"]})
    findings = check(value, node)
    assert {(f.path, f.warning) for f in findings} == {("spec.ports[2]", ERROR), ("spec.ports[3]", ERROR)}
    assert 'duplicate entry for key [port=80,protocol="TCP"]' in {f.reason for f in findings}


# --- embedded resources ---------------------------------------------------------------------


def test_embedded_resources() -> None:
    node = crd(props(template={"type": "object", "x-kubernetes-embedded-resource": True,
                               "x-kubernetes-preserve-unknown-fields": True}))
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert found(cr({"template": good}), node) == set()
    bad = {"apiVersion": "a/b/c", "kind": "Config_Map", "metadata": {"name": "c", "colour": 1}}
    assert found(cr({"template": bad}), node) == {
        ("spec.template.apiVersion", ERROR), ("spec.template.kind", ERROR),
        ("spec.template.metadata.colour", ERROR)}
    assert found(cr({"template": {"metadata": {}}}), node) == {
        ("spec.template.apiVersion", ERROR), ("spec.template.kind", ERROR)}


def test_embedded_resources_declare_type_meta_for_typed_conversion() -> None:
    node = crd(props(template={"type": "object", "x-kubernetes-embedded-resource": True,
                               "properties": {"spec": props(a=STR)}}))
    value = {"apiVersion": "v1", "kind": "Thing", "metadata": {}, "spec": {"a": "x"}, "extra": 1}
    assert found(cr({"template": value}), node) == {("spec.template.extra", ERROR)}


# --- status ---------------------------------------------------------------------------------


def test_status_is_reset_but_still_typed() -> None:
    status = {"type": "object", "required": ["phase"], "properties": {
        "phase": {"type": "string", "enum": ["Ready"]}, "count": INT}}
    node = crd(props(a=STR), status=status)
    assert found(cr({"a": "x"}, status={"phase": "Unknown", "count": 1.5}), node) == set()
    assert found(cr({"a": "x"}, status={"count": "one", "colour": 1}), node) == {
        ("status.count", ERROR), ("status.colour", ERROR)}


def test_without_a_status_subresource_status_is_validated() -> None:
    status = {"type": "object", "properties": {"phase": {"type": "string", "enum": ["Ready"]}}}
    node = compile_crd({"type": "object", "properties": {"spec": props(a=STR), "status": status}},
                       object_meta=META)
    assert found(cr({"a": "x"}, status={"phase": "Unknown"}), node) == {("status.phase", ERROR)}


# --- compiling ------------------------------------------------------------------------------


def test_compiled_schemas_are_cached_by_content() -> None:
    schema = {"type": "object", "properties": {"spec": props(a=STR)}}
    first = cached_crd(schema, object_meta=META)
    assert cached_crd({"properties": {"spec": props(a=STR)}, "type": "object"}, object_meta=META) is first
    assert cached_crd(schema, (1, 30), object_meta=META) is not first


def test_without_object_meta_any_metadata_object_is_taken() -> None:
    node = compile_crd({"type": "object", "properties": {"spec": props(a=STR)}})
    assert found(cr({"a": "x"}, metadata={"anything": 1}), node) == set()
    assert found(cr({"a": "x"}, metadata="name"), node) == {("metadata", ERROR)}
