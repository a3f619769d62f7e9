"""The process-wide caches (gitops/caches.py): each registered with its budget, and what a
cache shares between requests frozen (gitops/frozen.py), so no request can change another's."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from gitops import caches
from gitops.bundle import Limits, parse_file
from gitops.frozen import FrozenDict, FrozenList, freeze
from gitops.yamldocs import dump_document, dump_in_order
from tests.support import manifest

CRD_LIKE = manifest("apiextensions.k8s.io/v1", "CustomResourceDefinition", "things.example.com",
                    spec={"group": "example.com", "names": {"kind": "Thing", "plural": "things"},
                          "scope": "Namespaced",
                          "versions": [{"name": "v1", "served": True, "storage": True,
                                        "schema": {"openAPIV3Schema": {"type": "object"}}}]})


def test_every_process_wide_cache_is_registered_by_name() -> None:
    assert {"parsed files", "files seen once", "renderings", "scalar tags written",
            "scalar tags read", "tree entries", "held lines"} <= set(caches.registered())
    with pytest.raises(ValueError):
        caches.lru("parsed files", 1)


def test_a_file_parsed_again_shares_frozen_documents() -> None:
    text = CRD_LIKE.replace("things", "frozen-things")
    first = parse_file(text, Limits().parsing)  # seen once: the caller's own, not shared
    second = parse_file(text, Limits().parsing)
    third = parse_file(text, Limits().parsing)
    assert type(first[0].doc) is dict
    assert second[0].doc is third[0].doc and isinstance(third[0].doc, FrozenDict)
    doc = third[0].doc
    for change in (lambda: doc.__setitem__("kind", "x"), lambda: doc["spec"].update(scope="Cluster"),
                   lambda: doc["spec"]["versions"].append({}),
                   lambda: doc["spec"]["versions"][0].pop("served")):
        with pytest.raises(TypeError):
            change()
    assert doc == first[0].doc == yaml.safe_load(text)


@pytest.mark.parametrize("value", [
    {"a": [1, {"b": "c"}], "e": {}, "f": [], "g": None, "h": "yes", "i": 1.5},
    {"long": "x" * 200, "multi": "a\nb\n", "weird": "\u2028", "key with space": [[1, 2], []]},
])
def test_frozen_documents_write_and_read_as_the_same_data(value: dict[str, Any]) -> None:
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": value}
    frozen = freeze(doc)
    assert dump_document(frozen) == dump_document(doc)
    assert dump_in_order(frozen) == dump_in_order(doc)
    assert json.dumps(frozen, sort_keys=True) == json.dumps(doc, sort_keys=True)
    copied = copy.deepcopy(frozen)
    assert copied == doc and type(copied) is dict and type(copied["data"]) is dict
    copied["data"]["new"] = 1  # a copy is an ordinary document


def test_an_alias_stays_one_container_when_frozen() -> None:
    shared: list[Any] = [1, 2]
    frozen = freeze({"a": shared, "b": shared})
    assert frozen["a"] is frozen["b"] and isinstance(frozen["a"], FrozenList)
