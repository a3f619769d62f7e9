"""Never a false refusal (docs/reference.md section 11): every real-world manifest of the corpus
(tests/fixtures/corpus: operators' CRDs with their samples, rendered charts, installs; see its
README for provenance and licences) is accepted by the planner's validation, on a destination
of the Kubernetes version its project targets holding the CRDs its objects need; and one field
of a real object made wrong is refused, naming that field."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.bundle import Bundle, Limits, build_bundle, parse_bundle
from gitops.errors import InvalidBundle, InvalidObject
from gitops.owner import make_owner
from gitops.planner import Policy, plan_apply, plan_put_destination
from gitops.planner.destinations import Cluster
from gitops.validate import builtin
from tests.support import CORPUS_ROOT, World

ENTRIES: list[dict[str, Any]] = json.loads((CORPUS_ROOT / "index.json").read_text())
# groups the corpus uses without a CRD in it, which a destination would list in its `apis`
EXTRA_APIS = ["traefik.io", "traefik.containo.us", "metrics.k8s.io"]


def _bundle(owner_request: str | None, files: dict[str, str]) -> Bundle:
    namespace, _, name = (owner_request or "/").partition("/")
    owner = make_owner("corpus", namespace or None, name or None, None)
    return build_bundle(owner, {}, files, None, None, Limits(max_documents=20_000))


@cache
def _world(kubernetes: str, crds: tuple[str, ...]) -> World:
    """A destination of `kubernetes` holding the CRDs of `crds` (built once per pair)."""
    world = World(Policy())
    world.run(plan_put_destination(world.index, world.tree, "w", {}, None, "t", world.policy,
                                   cluster=Cluster(kubernetes, EXTRA_APIS)))
    if crds:
        files = {f"{i:03d}.yaml": (CORPUS_ROOT / path).read_text() for i, path in enumerate(crds)}
        world.run(plan_apply(world.index, world.tree, _bundle(None, files), "t", world.policy))
    return world


def _version(entry: dict[str, Any]) -> str:
    wanted = entry["kubernetes"] or builtin.NEWEST
    return wanted if wanted in builtin.SUPPORTED else builtin.NEWEST


# What statewriter refuses on purpose, whatever a cluster would do: not validation's doing
NOT_A_BUNDLE = {
    "kratix/kratix-worker-flux-sources.yaml": "the destination's own Flux objects",
}


# Files of the corpus that are not applied as they are: the API server refuses them as sent
# (a kustomize base whose `labels` transformer adds the Deployment's selector), by these fields
NOT_APPLICABLE_AS_SENT = {
    "metrics-server/manifests/base/deployment.yaml": {"spec.selector"},
}


def entries() -> list[Any]:
    return [pytest.param(entry, id=entry["path"]) for entry in ENTRIES
            if entry["path"] not in NOT_A_BUNDLE and entry["path"] not in NOT_APPLICABLE_AS_SENT]


@pytest.mark.parametrize("path", sorted(NOT_APPLICABLE_AS_SENT))
def test_a_file_not_applicable_as_sent_is_refused_by_the_field_kubernetes_names(path: str) -> None:
    entry = next(e for e in ENTRIES if e["path"] == path)
    world = _world(_version(entry), tuple(entry["crds"]))
    bundle = _bundle("corpus/sample", {"x.yaml": (CORPUS_ROOT / path).read_text()})
    with pytest.raises(InvalidObject) as refused:
        plan_apply(world.index, world.tree, bundle, "t", world.policy)
    assert {f["field"] for f in refused.value.detail["findings"]} == NOT_APPLICABLE_AS_SENT[path]


def test_what_is_refused_on_purpose_is_refused_by_the_document_rules() -> None:
    for path, why in NOT_A_BUNDLE.items():
        with pytest.raises(InvalidBundle) as refused:
            _bundle("corpus/sample", {"x.yaml": (CORPUS_ROOT / path).read_text()})
        assert not isinstance(refused.value, InvalidObject) and "Flux objects" in why


@pytest.mark.parametrize("entry", entries())
def test_every_corpus_file_is_accepted(entry: dict[str, Any]) -> None:
    world = _world(_version(entry), tuple(entry["crds"]))
    bundle = _bundle("corpus/sample", {Path(entry["path"]).name: (CORPUS_ROOT / entry["path"]).read_text()})
    try:
        plan = plan_apply(world.index, world.tree, bundle, "t", world.policy)
    except InvalidObject as refused:
        pytest.fail(f"refused what Kubernetes {_version(entry)} takes: "
                    f"{json.dumps(refused.detail['findings'], indent=1)[:3000]}")
    assert plan.changed


# -- one field made wrong, refused by name ------------------------------------------------------

MUTATIONS = [
    # (corpus file, kind, the change, the field named)
    ("ingress-nginx/deploy/static/provider/cloud/deploy.yaml", "Deployment",
     lambda d: d["spec"].__setitem__("replicas", "one"), "spec.replicas"),
    ("ingress-nginx/deploy/static/provider/cloud/deploy.yaml", "Deployment",
     lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("imagePullPolicy ", "x"),
     "spec.template.spec.containers[0].imagePullPolicy "),
    ("ingress-nginx/deploy/static/provider/cloud/deploy.yaml", "Service",
     lambda d: d["spec"]["ports"][0].__setitem__("port", "eighty"), "spec.ports[0].port"),
    ("kube-state-metrics/examples/standard/deployment.yaml", "Deployment",
     lambda d: d["spec"].__setitem__("replica", 1), "spec.replica"),
    ("metrics-server/manifests/base/deployment.yaml", "Deployment",
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
     .__setitem__("cpu", "one core"), "spec.template.spec.containers[0].resources.requests[cpu]"),
]


def _mutation_params() -> list[Any]:
    return [pytest.param(path, kind, change, field, id=f"{path}:{field}")
            for path, kind, change, field in MUTATIONS]


@pytest.mark.parametrize(("path", "kind", "change", "field"), _mutation_params())
def test_one_field_made_wrong_is_refused_by_name(path: str, kind: str, change: Any,
                                                 field: str) -> None:
    entry = next(e for e in ENTRIES if e["path"] == path)
    docs = [doc for doc in yaml.safe_load_all((CORPUS_ROOT / path).read_text()) if doc]
    target = next(doc for doc in docs if doc["kind"] == kind)
    mutated = copy.deepcopy(target)
    change(mutated)
    world = _world(_version(entry), tuple(entry["crds"]))
    bundle = _bundle("corpus/sample", {"x.yaml": yaml.safe_dump(mutated)})
    with pytest.raises(InvalidObject) as refused:
        plan_apply(world.index, world.tree, bundle, "t", world.policy)
    fields = {finding["field"] for finding in refused.value.detail["findings"]}
    assert field in fields, fields


def test_custom_resources_are_checked_against_their_crd() -> None:
    """A Certificate of the corpus with a field of the wrong type, a misspelt one and a value
    out of its enum: each refused at its path."""
    entry = next(e for e in ENTRIES if e["source"] == "cert-manager" and e["crds"]
                 and "Certificate" in e["notes"])
    docs = [doc for doc in yaml.safe_load_all((CORPUS_ROOT / entry["path"]).read_text()) if doc]
    certificate = next(doc for doc in docs if doc["kind"] == "Certificate")
    world = _world(_version(entry), tuple(entry["crds"]))
    for change, field in ((lambda d: d["spec"].__setitem__("dnsNames", "a.example.com"),
                           "spec.dnsNames"),
                          (lambda d: d["spec"].__setitem__("secretNme", "x"), "spec.secretNme"),
                          (lambda d: d["spec"].setdefault("privateKey", {}).__setitem__(
                              "algorithm", "DSA"), "spec.privateKey.algorithm")):
        mutated = copy.deepcopy(certificate)
        change(mutated)
        bundle = parse_bundle({"promise": "corpus", "request": {"namespace": "corpus",
                                                                 "name": "cert"},
                               "files": {"c.yaml": yaml.safe_dump(mutated)}})
        with pytest.raises(InvalidObject) as refused:
            plan_apply(world.index, world.tree, bundle, "t", world.policy)
        assert field in {f["field"] for f in refused.value.detail["findings"]}
