"""Generative test against the real tools (issue 8): strange but valid Kubernetes names and
YAML-ambiguous values, through `parse_bundle`, the real planner and writer lane on a real
embedded store, checked with `git clone`, `kubectl kustomize`, the API server's YAML reader
and `statewriter verify`. The strategies and the checks live in `bench/generative.py`,
which runs the same property with many more examples (`python -m bench.generative`).

The failures it found are pinned below as small regression stories: annotation keys that
kustomize reads as numbers (now refused at intake), a Cluster-scoped CRD arriving while
objects of its kind are stored namespaced (now a 409), and plain scalars a YAML 1.1 reader
reads otherwise than kubectl and kustomize (pipelines' files are now read as the Go readers
agree).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bench.generative import Apply, Pools, Register, Scenario, run_scenario, scenarios, yaml_text


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(scenarios())
def test_strange_valid_input_reaches_every_reader_intact(scenario: Scenario) -> None:
    run_scenario(scenario)


# ---- failures it found, now fixed ----------------------------------------------------------

POOLS = Pools(promises=("p",), namespaces=("team",), requests=("r",), pipelines=("a", "b"),
              destinations=("d",), groups=("example.com",), environments=("x",),
              config_names=("c",), object_names=("g",))


def _apply(docs: list[dict[str, Any]], pipeline: str = "default", request: bool = True,
           selectors: dict[str, str] | None = None) -> Apply:
    payload: dict[str, Any] = {"promise": "p", "pipeline": pipeline,
                               "files": {"objects.yaml": yaml_text(docs, "quoted")}}
    if request:
        payload["request"] = {"namespace": "team", "name": "r"}
    if selectors is not None:
        payload["destinationSelectors"] = selectors
    return Apply(payload, tuple(docs))


def _story(*steps: Apply) -> Scenario:
    return Scenario(POOLS, (Register("d", {"env": "x"}, None), *steps))


def test_annotation_key_kustomize_reads_as_a_number() -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "c", "annotations": {"1e3": "x"}}, "data": {}}
    run_scenario(_story(_apply([config_map])))


CLUSTER_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Cluster",
             "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget",
                       "listKind": "GadgetList"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {
                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}
GADGET = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {}}

def test_cluster_scoped_crd_after_namespaced_objects_of_its_kind() -> None:
    run_scenario(_story(_apply([GADGET], pipeline="b"), _apply([CLUSTER_CRD], pipeline="a")))


def test_pending_sibling_brings_a_cluster_scoped_crd() -> None:
    run_scenario(_story(_apply([CLUSTER_CRD], pipeline="a", selectors={"env": "nowhere"}),
                        _apply([GADGET], pipeline="b")))


def test_a_request_drops_the_crd_that_scoped_its_objects() -> None:
    """Found by the generative test: the same owner sends its object again without the
    cluster-scoped CRD it sent before (its last holder). The CRD goes, so the object is
    scoped as a namespaced kind again, not by the CRD the same write removes."""
    run_scenario(_story(_apply([CLUSTER_CRD, GADGET]), _apply([GADGET])))


def test_promise_level_cluster_scoped_crd_after_its_objects() -> None:
    run_scenario(_story(_apply([GADGET], request=False),
                        _apply([CLUSTER_CRD], pipeline="b", request=False)))


# What every Go reader on the way (`kubectl apply`'s goyaml.v2, kustomize's yaml.v3) makes of
# a plain scalar in a pipeline's file, where a YAML 1.1 reader makes another value: statewriter
# reads pipelines' files as the Go readers agree.
GO_READINGS: list[tuple[str, object]] = [("1e3", 1000), ("08544", 8544), ("0o17", 15),
                                         ("+.5", 0.5), ("1:20", "1:20")]


@pytest.mark.parametrize(("plain", "go_value"), GO_READINGS, ids=[text for text, _ in GO_READINGS])
def test_plain_scalar_in_a_pipeline_file_means_what_go_readers_read(
    plain: str, go_value: object
) -> None:
    text = ("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
            f"spec:\n  value: {plain}\n")
    sent = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"value": go_value}}
    payload = {"promise": "p", "request": {"namespace": "team", "name": "r"},
               "files": {"objects.yaml": text}}
    run_scenario(_story(Apply(payload, (sent,))))
