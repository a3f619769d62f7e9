"""Built-in kinds against the schemas of kubernetes-validate's data, and real-world manifests:
everything Kubernetes accepts must validate without an error (the corpus, the ECK example,
kubectl's own output, hand-written workloads, for every supported version); real objects with
one field broken must be refused at exactly that field. Custom resources of the corpus are
checked against their own CRDs. (The CPU a check takes is measured by `python -m bench.cpu`
and `python -m bench.schema_cpu`.)"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.validate import builtin
from gitops.validate.findings import Finding, errors
from gitops.validate.schema import Node, check, compile_crd
from tests.support import CORPUS

ROOT = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "validate"
ERROR, WARNING = False, True


def documents(*paths: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc:
                yield f"{path.name}:{doc['kind']}/{doc['metadata'].get('name')}", doc


REAL_FILES = sorted(
    [*CORPUS.rglob("*.yaml"), *(ROOT / "examples" / "elastic-cloud").rglob("output/*.yaml"),
     FIXTURES / "kubectl-create.yaml", FIXTURES / "workloads.yaml", FIXTURES / "redis-sample.yaml",
     FIXTURES / "elasticsearch-sample.yaml"])
REAL = list(documents(*REAL_FILES))
CRDS = {(doc["spec"]["group"], version["name"], doc["spec"]["names"]["kind"]): version
        for _, doc in REAL if doc["kind"] == "CustomResourceDefinition"
        for version in doc["spec"]["versions"]}


def split(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def schema_of(doc: dict[str, Any], version: str = builtin.NEWEST) -> Node | None:
    group, api = split(doc["apiVersion"])
    node = builtin.builtin_schema(version, group, api, doc["kind"])
    if node is not None:
        return node
    served = CRDS.get((group, api, doc["kind"]))
    if served is None:
        return None
    return compile_crd(served["schema"]["openAPIV3Schema"], (1, int(version.split(".")[1])),
                       status_subresource="status" in served.get("subresources", {}),
                       object_meta=builtin.object_meta(version))


def found(value: Any, node: Node) -> set[tuple[str, bool]]:
    return {(finding.path, finding.warning) for finding in check(value, node)}


def real(kind: str, name: str | None = None) -> dict[str, Any]:
    for _, doc in REAL:
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name):
            return copy.deepcopy(doc)
    raise LookupError(kind)


# --- the data -------------------------------------------------------------------------------


def test_every_supported_version_has_its_data() -> None:
    assert builtin.SUPPORTED[0] == "1.25" and builtin.NEWEST == "1.37"
    for version in builtin.SUPPORTED:
        kinds = builtin.builtin_kinds(version)
        assert {("", "v1", "ConfigMap"), ("apps", "v1", "Deployment"),
                ("apiextensions.k8s.io", "v1", "CustomResourceDefinition")} <= kinds
        assert not any(kind.endswith("List") for _, _, kind in kinds)
        assert ("meta.k8s.io", "v1", "Status") not in kinds


def test_kinds_follow_the_release() -> None:
    assert ("flowcontrol.apiserver.k8s.io", "v1beta2", "FlowSchema") in builtin.builtin_kinds("1.25")
    assert ("flowcontrol.apiserver.k8s.io", "v1beta2", "FlowSchema") not in builtin.builtin_kinds("1.37")
    assert builtin.builtin_schema("1.25", "extensions", "v1beta1", "Ingress") is None
    assert builtin.builtin_schema("1.37", "example.com", "v1", "Widget") is None


def test_unsupported_versions_are_refused() -> None:
    with pytest.raises(ValueError, match=r"1\.24"):
        builtin.builtin_kinds("1.24")


def test_schemas_are_compiled_once() -> None:
    first = builtin.builtin_schema("1.37", "apps", "v1", "Deployment")
    assert builtin.builtin_schema("1.37", "apps", "v1", "Deployment") is first
    assert builtin.builtin_schema("1.30", "apps", "v1", "Deployment") is not first


# --- real-world manifests -------------------------------------------------------------------


@pytest.mark.parametrize("version", builtin.SUPPORTED)
def test_real_manifests_have_no_errors(version: str) -> None:
    checked = 0
    for name, doc in REAL:
        node = schema_of(doc, version)
        if node is None:
            # The ECK example's Beat is beat.k8s.elastic.co/v1beta1, which its CRD does not serve
            assert doc["kind"] == "Beat", name
            continue
        assert errors(check(doc, node)) == [], name
        checked += 1
    assert checked >= 90


def test_real_manifests_have_no_warnings_either() -> None:
    for name, doc in REAL:
        node = schema_of(doc)
        if node is not None:
            assert check(doc, node) == [], name


# --- one field broken -----------------------------------------------------------------------

CONTAINER = "spec.template.spec.containers[0]"


def mutated(kind: str, name: str | None, path: list[Any], value: Any) -> dict[str, Any]:
    doc = real(kind, name)
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()
_C = ["spec", "template", "spec", "containers", 0]


@pytest.mark.parametrize(("kind", "name", "path", "value", "expected"), [
    # a type changed
    ("Deployment", "api", ["spec", "replicas"], "2", "spec.replicas"),
    ("Deployment", "api", [*_C, "ports", 0, "containerPort"], "eighty",
     f"{CONTAINER}.ports[0].containerPort"),
    ("Deployment", "api", [*_C, "env", 3, "value"], 1, f"{CONTAINER}.env[3].value"),
    ("Deployment", "api", ["metadata", "labels", "app.kubernetes.io/part-of"], True,
     "metadata.labels[app.kubernetes.io/part-of]"),
    ("Deployment", "api", [*_C, "securityContext", "readOnlyRootFilesystem"], "yes",
     f"{CONTAINER}.securityContext.readOnlyRootFilesystem"),
    ("Deployment", "api", [*_C, "args"], "--port=8080", f"{CONTAINER}.args"),
    ("Service", "api", ["spec", "ports", 1, "targetPort"], 1.5, "spec.ports[1].targetPort"),
    ("Service", "api", ["spec", "ports", 0, "port"], "eighty", "spec.ports[0].port"),
    # a field misspelt
    ("Deployment", "api", [*_C, "imagePullPolicy"], _DELETE, None),
    ("Deployment", "api", [*_C, "imagePulPolicy"], "Always", f"{CONTAINER}.imagePulPolicy"),
    ("Deployment", "api", ["spec", "template", "spec", "tolerations", 0, "efect"], "NoSchedule",
     "spec.template.spec.tolerations[0].efect"),
    ("CronJob", "report", ["spec", "jobTemplate", "spec", "backofLimit"], 2,
     "spec.jobTemplate.spec.backofLimit"),
    # an enum broken (the data carries enums only for apiVersion and kind)
    ("Service", "api", ["kind"], "Servic", "kind"),
    # values Go decodes with code of its own
    ("Deployment", "api", [*_C, "resources", "limits", "memory"], "512 MB",
     f"{CONTAINER}.resources.limits[memory]"),
    ("Deployment", "api", [*_C, "resources", "requests", "cpu"], True,
     f"{CONTAINER}.resources.requests[cpu]"),
    ("Deployment", "api", ["spec", "strategy", "rollingUpdate", "maxSurge"], 3_000_000_000,
     "spec.strategy.rollingUpdate.maxSurge"),
    ("Deployment", "api", ["metadata", "creationTimestamp"], "yesterday", "metadata.creationTimestamp"),
    ("Secret", "api-db", ["data", "password"], "not base64!", "data[password]"),
    # a required field removed
    ("Deployment", "api", [*_C, "name"], _DELETE, f"{CONTAINER}.name"),
    ("Deployment", "api", ["spec", "selector"], _DELETE, "spec.selector"),
    ("Service", "api", ["spec", "ports", 0, "port"], _DELETE, "spec.ports[0].port"),
    ("ClusterRoleBinding", "node-reader", ["roleRef", "name"], _DELETE, "roleRef.name"),
    ("CronJob", "report", ["spec", "schedule"], None, "spec.schedule"),  # null is missing
    # lists of type map
    ("Deployment", "api", [*_C, "env", 1, "name"], "POD_NAME", f"{CONTAINER}.env[1]"),
    ("Deployment", "api", ["spec", "template", "spec", "containers", 1], None,
     "spec.template.spec.containers[1]"),
])
def test_one_broken_field_is_refused_there(kind: str, name: str | None, path: list[Any], value: Any,
                                           expected: str | None) -> None:
    if path[-1] == 1 and path[-2] == "containers":
        doc = real(kind, name)
        doc["spec"]["template"]["spec"]["containers"].append(None)
    else:
        doc = mutated(kind, name, path, value)
    node = schema_of(real(kind, name))
    assert node is not None
    refused = {finding.path for finding in errors(check(doc, node))}
    assert refused == (set() if expected is None else {expected})


def test_the_reasons_say_what_is_accepted() -> None:
    doc = mutated("Service", "api", ["spec", "ports", 0, "port"], "eighty")
    node = schema_of(doc)
    assert node is not None
    assert check(doc, node) == [Finding("spec.ports[0].port", 'must be an integer, not the string "eighty"')]
    doc = mutated("Deployment", "api", [*_C, "imagePulPolicy"], "Always")
    assert check(doc, builtin.builtin_schema("1.37", "apps", "v1", "Deployment") or Node()) == [
        Finding(f"{CONTAINER}.imagePulPolicy", "field not declared in schema")]


def test_int32_out_of_range_is_only_warned() -> None:
    """Server-side apply converts with Go's int32(), which wraps; the Go validation may or may
    not refuse the wrapped value (for replicas it does: negative)."""
    doc = mutated("Deployment", "api", ["spec", "replicas"], 3_000_000_000)
    [finding] = check(doc, schema_of(doc) or Node())
    assert (finding.path, finding.warning) == ("spec.replicas", WARNING)
    assert "-1294967296" in finding.reason


def test_fields_required_by_the_schema_but_not_by_validation_are_warnings() -> None:
    policy = real("NetworkPolicy")
    del policy["spec"]["podSelector"]
    for version, expected in (("1.25", {("spec.podSelector", WARNING)}), ("1.37", set())):
        node = builtin.builtin_schema(version, "networking.k8s.io", "v1", "NetworkPolicy")
        assert node is not None
        assert found(policy, node) == expected


def test_nulls_decode_to_zero_values() -> None:
    doc = real("Deployment", "api")
    doc["spec"]["template"]["spec"]["affinity"] = None
    doc["spec"]["template"]["spec"]["containers"][0]["args"] = [None, "--x"]
    doc["metadata"]["labels"]["empty"] = None
    doc["spec"]["template"]["spec"]["tolerations"].append(None)
    assert found(doc, schema_of(doc) or Node()) == {("spec.template.spec.tolerations[2]", WARNING)}


def test_status_is_reset_but_still_typed() -> None:
    doc = real("Deployment", "api")
    doc["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    node = schema_of(doc) or Node()
    assert found(doc, node) == set()
    doc["status"] = {"replicas": "two", "colour": "red", "conditions": [{"type": "Available"}]}
    assert found(doc, node) == {("status.replicas", ERROR), ("status.colour", ERROR)}


def test_custom_resources_of_the_corpus_broken() -> None:
    kustomization = real("Kustomization", "kratix-workload-resources")
    kustomization["spec"]["prune"] = "true"
    kustomization["spec"]["interval"] = "ten minutes"
    kustomization["spec"]["sourceRef"]["kind"] = "Bucket2"
    kustomization["spec"]["colour"] = "red"
    node = schema_of(kustomization)
    assert node is not None
    assert found(kustomization, node) == {("spec.prune", ERROR), ("spec.interval", ERROR),
                                          ("spec.sourceRef.kind", ERROR), ("spec.colour", ERROR)}


def test_the_redis_sample_broken() -> None:
    redis = real("Redis")
    redis["spec"]["global"]["resources"]["limits"]["cpu"] = 1  # the CRD says string
    del redis["spec"]["service"]["type"]
    redis["spec"]["storage"]["volumeClaimTemplate"]["metadata"] = {"labels": {"a": "b"}}
    node = schema_of(redis)
    assert node is not None
    assert found(redis, node) == {
        ("spec.global.resources.limits.cpu", ERROR), ("spec.service.type", ERROR),
        # `metadata: {type: object}` without properties: pruned, not refused
        ("spec.storage.volumeClaimTemplate.metadata.labels", WARNING)}
