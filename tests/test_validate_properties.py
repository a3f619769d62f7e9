"""Generated objects: values drawn from a compiled schema are accepted, and the same value with
one leaf replaced by something of the wrong type, or with one undeclared field added, is refused
at exactly that field (or, for anyOf/oneOf rules above it, also at an enclosing object).

The schemas are real: built-in kinds of Kubernetes 1.37 and the CRDs of the corpus (Flux,
NGINX ingress, Redis).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gitops.validate import builtin
from gitops.validate.findings import errors
from gitops.validate.schema import (
    ANY,
    ARRAY,
    BOOLEAN,
    BYTES,
    INT_OR_STRING,
    INTEGER,
    MICRO_TIME,
    NUMBER,
    OBJECT,
    QUANTITY,
    REFUSED,
    STRING,
    TIME,
    Node,
    check,
    compile_crd,
)
from tests.support import CORPUS

ROOT = Path(__file__).parents[1]
MAX_DEPTH = 7
CONTROLS: tuple[Literal["Cc"]] = ("Cc",)
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
FORMAT_EXAMPLES = {
    "date-time": "2024-01-31T12:00:00Z", "datetime": "2024-01-31T12:00:00Z", "date": "2024-01-31",
    "duration": "1h", "uri": "https://example.com/x", "hostname": "example.com",
    "ipv4": "10.0.0.1", "ipv6": "fd00::1", "cidr": "10.0.0.0/8", "email": "a@example.com",
    "byte": "aGVsbG8=", "uuid": "123e4567-e89b-12d3-a456-426614174000", "password": "x",
}
SPECIAL_VALUES: dict[int, list[Any]] = {
    INT_OR_STRING: [80, "http", "25%", 0], QUANTITY: ["500m", "1Gi", 2, 0.5, "1e3"],
    TIME: ["2024-01-31T12:00:00Z", None], MICRO_TIME: ["2024-01-31T12:00:00.000000Z"],
    BYTES: ["aGVsbG8=", ""], ANY: [{"a": [1, "b"]}, "x", 3],
}


@dataclass
class Leaf:
    path: str
    node: Node
    holder: Any  # the dict or list holding the value
    key: Any


@dataclass
class Generated:
    value: Any
    leaves: list[Leaf]
    objects: list[Leaf]  # objects whose undeclared fields are refused


class Generator:
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw
        self.leaves: list[Leaf] = []
        self.objects: list[Leaf] = []

    def value(self, node: Node, path: str, depth: int) -> Any:
        if node.special:
            return self.draw(st.sampled_from(SPECIAL_VALUES[node.special]))
        if node.enum is not None:
            choices = [value for value in node.enum if value != ""] or list(node.enum)
            return self.draw(st.sampled_from(choices))
        kinds = [bit for bit in (OBJECT, ARRAY, STRING, INTEGER, NUMBER, BOOLEAN) if node.types & bit]
        kind = self.draw(st.sampled_from(kinds)) if kinds else STRING
        if kind == OBJECT:
            return self.object(node, path, depth)
        if kind == ARRAY:
            return self.array(node, path, depth)
        if kind == STRING:
            return self.string(node)
        if kind == BOOLEAN:
            return self.draw(st.booleans())
        return self.number(node, kind)

    def object(self, node: Node, path: str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, below in node.properties.items():
            wanted = name in node.required or (name in ("apiVersion", "kind") and node.embedded)
            if not wanted and (depth >= MAX_DEPTH or not self.draw(st.booleans())):
                continue
            at = f"{path}.{name}" if path else name
            result[name] = self.value(below, at, depth + 1)
            self.note(below, at, result, name)
        if node.embedded:
            result.update(apiVersion="v1", kind="Thing")
        if node.additional is not None and depth < MAX_DEPTH:
            count = max(node.min_properties or 0, self.draw(st.integers(0, 2)))
            for number in range(count):
                name = f"key-{number}"
                at = f"{path}[{name}]"
                result[name] = self.value(node.additional, at, depth + 1)
                self.note(node.additional, at, result, name)
        if node.unknown == REFUSED and node.additional is None:
            self.objects.append(Leaf(path, node, result, None))
        return result

    def array(self, node: Node, path: str, depth: int) -> list[Any]:
        if node.items is None:
            return []
        low = node.min_items or 0
        high = min(node.max_items if node.max_items is not None else 2, 2) if depth < MAX_DEPTH else low
        result: list[Any] = []
        for number in range(self.draw(st.integers(low, max(low, high)))):
            at = f"{path}[{number}]"
            result.append(self.value(node.items, at, depth + 1))
            self.note(node.items, at, result, number)
        assume(errors(_list_rules(result, node)) == [])  # two items drew the same key
        return result

    def note(self, node: Node, path: str, holder: Any, key: Any) -> None:
        if node.special != ANY and (node.special or (node.types and not node.types & (OBJECT | ARRAY))):
            self.leaves.append(Leaf(path, node, holder, key))

    def string(self, node: Node) -> str:
        if node.format is not None:
            example = FORMAT_EXAMPLES.get(node.format_name)
            assume(example is not None)
            return str(example)
        low = node.min_length or 0
        high = max(low, min(node.max_length if node.max_length is not None else 12, 12))
        if node.pattern is not None:
            try:
                re.compile(node.pattern_source)
            except re.error:
                assume(False)
            text = self.draw(st.from_regex(node.pattern_source, alphabet=st.characters(
                codec="ascii", exclude_categories=CONTROLS)))
            assume(node.pattern(text) is True and low <= len(text) <= (node.max_length or 1 << 30))
            return str(text)
        return str(self.draw(st.text(st.characters(codec="utf-8", exclude_categories=SURROGATES),
                                     min_size=low, max_size=high)))

    def number(self, node: Node, kind: int) -> float:
        low, high = node.int_range or (-(10**6), 10**6)
        if node.minimum is not None:
            low = max(low, int(node.minimum) + (1 if node.exclusive_minimum else 0))
        if node.maximum is not None:
            high = min(high, int(node.maximum) - (1 if node.exclusive_maximum else 0))
        assume(low <= high)
        number: int = self.draw(st.integers(low, high))
        if node.multiple_of is not None:
            number = int(node.multiple_of) * (number // max(int(node.multiple_of), 1))
            assume(low <= number <= high)
        if kind == NUMBER and self.draw(st.booleans()):
            return number + 0.5 if number + 0.5 <= high else float(number)
        return number


def _list_rules(value: list[Any], node: Node) -> list[Any]:
    """The findings of the list's own rules (set, map keys, uniqueness), not of its items'."""
    bare = Node()
    for slot in ("types", "list_type", "map_keys", "key_defaults", "unique_items", "builtin"):
        setattr(bare, slot, getattr(node, slot))
    return check(value, bare.finish())


@st.composite
def generated(draw: Callable[[st.SearchStrategy[Any]], Any], node: Node) -> Generated:
    generator = Generator(draw)
    value = generator.value(node, "", 0)
    return Generated(value, generator.leaves, generator.objects)


def _crds() -> dict[str, Node]:
    nodes = {}
    meta = builtin.object_meta(builtin.NEWEST)
    for path in sorted(CORPUS.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                for version in doc["spec"]["versions"]:
                    name = f"{doc['spec']['names']['kind']}.{doc['spec']['group']}/{version['name']}"
                    nodes[name] = compile_crd(version["schema"]["openAPIV3Schema"], object_meta=meta,
                                              status_subresource="status" in version.get("subresources", {}))
    return nodes


BUILTIN = {f"{kind}.{group}/{version}": builtin.builtin_schema(builtin.NEWEST, group, version, kind)
           for group, version, kind in [
               ("apps", "v1", "Deployment"), ("apps", "v1", "StatefulSet"), ("", "v1", "Service"),
               ("", "v1", "ConfigMap"), ("", "v1", "Secret"), ("batch", "v1", "CronJob"),
               ("networking.k8s.io", "v1", "Ingress"), ("networking.k8s.io", "v1", "NetworkPolicy"),
               ("autoscaling", "v2", "HorizontalPodAutoscaler"), ("rbac.authorization.k8s.io", "v1", "Role"),
               ("policy", "v1", "PodDisruptionBudget")]}
CRDS = _crds()
SCHEMAS = {**BUILTIN, **CRDS}
PROFILE = settings(max_examples=8, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow,
                                          HealthCheck.large_base_example, HealthCheck.data_too_large])


def test_the_corpus_has_crds() -> None:
    assert len(CRDS) >= 20


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@PROFILE
@given(data=st.data())
def test_generated_values_are_accepted(name: str, data: st.DataObject) -> None:
    node = SCHEMAS[name]
    assert node is not None
    drawn = data.draw(generated(node))
    assert errors(check(drawn.value, node)) == []


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@PROFILE
@given(data=st.data())
def test_one_wrong_leaf_is_refused_at_its_path(name: str, data: st.DataObject) -> None:
    node = SCHEMAS[name]
    assert node is not None
    drawn = data.draw(generated(node))
    assume(drawn.leaves and errors(check(drawn.value, node)) == [])
    leaf = data.draw(st.sampled_from(drawn.leaves))
    leaf.holder[leaf.key] = {"not": "a scalar"}
    refused = {finding.path for finding in errors(check(drawn.value, node))}
    assert leaf.path in refused
    assert all(leaf.path.startswith(path) for path in refused)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@PROFILE
@given(data=st.data())
def test_one_undeclared_field_is_refused_at_its_path(name: str, data: st.DataObject) -> None:
    node = SCHEMAS[name]
    assert node is not None
    drawn = data.draw(generated(node))
    assume(drawn.objects and errors(check(drawn.value, node)) == [])
    target = data.draw(st.sampled_from(drawn.objects))
    target.holder["zzUndeclared"] = 1
    path = f"{target.path}.zzUndeclared" if target.path else "zzUndeclared"
    refused = {finding.path for finding in errors(check(drawn.value, node))}
    assert path in refused
    assert all(path.startswith(other) for other in refused)
