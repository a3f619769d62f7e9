"""The pure planner against an in-memory tree: no git, no HTTP (docs/reference.md sections 2-5, 7)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.scale import CRDS_PER_PROMISE, crd_text
from gitops import layout
from gitops.bundle import parse_bundle
from gitops.commitmsg import parse_trailers
from gitops.destination import Destination
from gitops.errors import Conflict, InvalidBundle, StatewriterError
from gitops.index import Index
from gitops.normalize import PRUNE_ANNOTATION
from gitops.owner import Owner
from gitops.planner import (
    Policy,
    plan_apply,
    plan_delete,
    plan_delete_destination,
    plan_put_destination,
)
from gitops.planner.results import DestinationSaved
from gitops.tree import DictTree
from tests.fixtures.eck import CRD_NAMES, OPERATOR, crds, request_bundle, stack
from tests.support import (
    TEST_CLUSTER,
    World,
    assert_reloads,
    build_all,
    check_tree,
    config_map,
    crd,
    deployment,
    index_state,
    kustomize,
    manifest,
    materialise,
    payload,
    rendezvous_order,
)

DEST = "worker-cluster-1"
DEPS = f"{DEST}/dependencies"
RES = f"{DEST}/resources"
PROMISE = "elastic-cloud"


def req(namespace: str, promise: str, name: str, pipeline: str = "default", dest: str = DEST) -> str:
    """A request pipeline's own folder below a destination's resources/."""
    return f"{dest}/resources/{layout.owner_folder(Owner(promise, namespace, name, pipeline))}"


def seeded(*requests: str) -> World:
    world = World()
    world.destination(DEST)
    for name in requests:
        world.apply(request_bundle(name))
    return world


def identities(world: World, prefix: str) -> dict[tuple[str, str, str], list[str]]:
    """(kind, namespace, name) -> the files holding it below `prefix`."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for path, doc in world.objects(prefix).items():
        meta = doc["metadata"]
        found.setdefault((doc["kind"], meta.get("namespace", ""), meta["name"]), []).append(path)
    return found


SHARED_ECK = [
    *(("CustomResourceDefinition", "", f"{plural}.{group}")
      for plural, (group, _) in CRD_NAMES.items()),
    ("Namespace", "", "elastic-system"),
    ("ServiceAccount", "elastic-system", "elastic-operator"),
    ("ConfigMap", "elastic-system", "elastic-operator"),
    ("ClusterRole", "", "elastic-operator"),
    ("ClusterRoleBinding", "", "elastic-operator"),
    ("StatefulSet", "elastic-system", "elastic-operator"),
]


# -- the seed scenario ------------------------------------------------------------------------


def test_seed_two_requests_store_crds_and_operator_once_and_both_paths_build(tmp_path: Path) -> None:
    world = seeded("example", "second-request")

    found = identities(world, DEST)
    for key in SHARED_ECK:
        assert len(found.get(key, [])) == 1, key
        assert found[key][0].startswith(DEPS + "/"), found[key]
    for name in ("example", "second-request"):
        folder = req('default', PROMISE, name, 'default')
        for kind in ("Elasticsearch", "Kibana", "Beat"):
            (path,) = found[(kind, "default", name)]
            assert path.startswith(folder + "/"), path
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)

    built = build_all(world.tree, tmp_path)
    deps = [(d["kind"], d["metadata"]["name"]) for d in built[DEPS]]
    assert len(deps) == len(set(deps)) == len(SHARED_ECK)
    resources = sorted((d["kind"], d["metadata"]["name"]) for d in built[RES])
    assert resources == sorted((kind, name) for kind in ("Beat", "Elasticsearch", "Kibana")
                               for name in ("example", "second-request"))


# -- re-posting -------------------------------------------------------------------------------


def test_identical_repost_changes_nothing() -> None:
    world = seeded("example")
    before = world.files()
    plan = world.apply(request_bundle("example"))
    assert plan.changes == {}
    assert not plan.changed and plan.message == "" and plan.result.state == "Scheduled"
    assert plan.result.state == "Scheduled"
    assert world.files() == before


def test_changed_bundle_removes_objects_it_no_longer_outputs() -> None:
    world = seeded("example", "second-request")
    files = request_bundle("example")["files"]
    assert isinstance(files, dict)
    del files["beats.yaml"]
    del files["elastic-operator.yaml"]
    plan = world.apply(request_bundle("example", files=files))

    folder = req('default', PROMISE, 'example', 'default')
    assert plan.changes[f"{folder}/default_Beat.beat.k8s.elastic.co_example.yaml"] is None
    assert ("Beat", "default", "example") not in identities(world, DEST)
    assert "default_Beat.beat.k8s.elastic.co_example.yaml" not in world.read(
        f"{folder}/kustomization.yaml").decode()
    # the operator is still output by second-request: it stays, untouched
    assert not any(p.startswith(DEPS) for p in plan.changes)
    assert ("StatefulSet", "elastic-system", "elastic-operator") in identities(world, DEPS)
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


# -- deleting ---------------------------------------------------------------------------------


def test_shared_dependency_survives_until_its_last_owner_is_deleted() -> None:
    world = seeded("example", "second-request")
    world.delete(PROMISE, "default/example")
    found = identities(world, DEST)
    assert all(key in found for key in SHARED_ECK)
    assert ("Kibana", "default", "example") not in found
    assert ("Kibana", "default", "second-request") in found
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)

    world.delete(PROMISE, "default/second-request")
    assert identities(world, DEST) == {}


def test_after_everything_is_deleted_both_sections_are_empty_lists_and_build(tmp_path: Path) -> None:
    world = seeded("example", "second-request")
    world.delete(PROMISE, "default/example")
    plan = world.delete(PROMISE, "default/second-request")
    assert plan.message.splitlines()[0].startswith("delete ")

    empty = b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"
    assert {p for p in world.files(DEST)} == {f"{DEPS}/kustomization.yaml",
                                             f"{RES}/kustomization.yaml"}
    assert yaml.safe_load(world.read(f"{DEPS}/kustomization.yaml"))["resources"] == []
    assert world.read(f"{RES}/kustomization.yaml") == empty
    assert not world.files(".statewriter/owners")
    built = build_all(world.tree, tmp_path)
    assert built == {DEPS: [], RES: []}
    assert_reloads(world)


# -- conflicts ----------------------------------------------------------------------------------


def _other_promise_different_crd(world: World) -> dict[str, Any]:
    world.apply(payload("p1", "team-a/one", {"crd.yaml": crd("example.com", "Widget")}))
    return payload("p2", "team-b/two", {"crd.yaml": crd("example.com", "Widget", version="2")})


def _other_request_different_object(world: World) -> dict[str, Any]:
    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("settings", "team-a", "1")}))
    return payload("p1", "team-a/two", {"cm.yaml": config_map("settings", value="2")})


def _deployment(api_version: str) -> str:
    return manifest(api_version, "Deployment", "web", "team-a", spec={
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
    })


def _other_request_other_api_version(world: World) -> dict[str, Any]:
    world.apply(payload("p1", "team-a/one", {"web.yaml": _deployment("apps/v1")}))
    return payload("p2", "team-a/two", {"web.yaml": _deployment("apps/v1beta2")})


def _other_pipeline_different_object(world: World) -> dict[str, Any]:
    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("settings", value="1")},
                        pipeline="configure"))
    return payload("p1", "team-a/one", {"cm.yaml": config_map("settings", value="2")},
                   pipeline="deploy")


def _object_defined_twice(world: World) -> dict[str, Any]:
    return payload("p1", "team-a/one", {"a.yaml": config_map("settings", value="1"),
                                        "b.yaml": config_map("settings", "team-a", "2")})


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (_other_promise_different_crd, Conflict),
        (_other_request_different_object, Conflict),
        (_other_request_other_api_version, Conflict),
        (_other_pipeline_different_object, Conflict),
        (_object_defined_twice, InvalidBundle),
    ],
    ids=["other-promise-crd", "other-request-object", "other-api-version", "other-pipeline",
         "defined-twice"],
)
def test_refused_plans_raise_and_leave_index_and_tree_unchanged(
    setup: Callable[[World], dict[str, Any]], error: type[StatewriterError]
) -> None:
    world = World()
    world.destination(DEST, cluster=TEST_CLUSTER)
    body = setup(world)
    state, files = index_state(world.index), world.files()

    with pytest.raises(error) as refused:
        plan_apply(world.index, world.tree, parse_bundle(body), "tester")

    assert type(refused.value) is error
    assert index_state(world.index) == state
    assert world.files() == files
    detail = refused.value.detail
    if error is Conflict:
        assert detail["object"] and detail["reason"] and detail["owners"]
        assert detail["owners"][0].request == "team-a/one"
    else:
        assert detail["file"] == "b.yaml"


def test_conflict_names_the_object_its_owners_and_the_reason() -> None:
    world = World()
    world.destination(DEST)
    body = _other_promise_different_crd(world)
    with pytest.raises(Conflict) as refused:
        world.apply(body)
    assert refused.value.detail == {
        "object": "CustomResourceDefinition.apiextensions.k8s.io widgets.example.com",
        "destination": DEST,
        "owners": (Owner("p1", "team-a", "one", "default"),),
        "reason": "another promise's dependency",
    }


def test_object_owned_only_by_this_owner_is_replaced_also_under_another_api_version() -> None:
    world = World()
    world.destination(DEST, cluster=TEST_CLUSTER)
    world.apply(payload("p1", "team-a/one", {"web.yaml": _deployment("apps/v1beta2")}))
    world.apply(payload("p1", "team-a/one", {"web.yaml": _deployment("apps/v1")}))
    (doc,) = world.objects(req("team-a", "p1", "one")).values()
    assert doc["apiVersion"] == "apps/v1"
    check_tree(world.tree, exact_blobs=True)


# -- same-promise dependencies and promise generations ------------------------------------------


def _crd_files(world: World) -> dict[str, bytes]:
    return {p: c for p, c in world.files(f"{DEPS}/_cluster").items()
            if "CustomResourceDefinition" in p}


def test_same_promise_dependency_with_new_content_is_replaced_naming_previous_owners() -> None:
    world = seeded("example")
    files = {**request_bundle("second-request")["files"],  # type: ignore[dict-item]
             "elastic-crds.yaml": crds("2.9.0")}
    plan = world.apply(request_bundle("second-request", files=files))

    assert plan.result.state == "Scheduled"
    changed = [p for p in plan.files.changed if p.startswith(DEPS)]
    assert sorted(changed) == sorted(_crd_files(world))
    assert all(b"2.9.0" in c for c in _crd_files(world).values())
    assert "Replaced shared dependencies:" in plan.message
    assert "previously written by elastic-cloud default/example pipeline default" in plan.message
    assert len(plan.notes.replaced) == 4
    check_tree(world.tree)
    assert_reloads(world)


def test_lower_promise_generation_keeps_newer_content_and_applies_the_rest() -> None:
    world = World()
    world.destination(DEST)
    newer = {**request_bundle("example")["files"], "elastic-crds.yaml": crds("2.9.0")}  # type: ignore[dict-item]
    world.apply(request_bundle("example", files=newer, promiseGeneration=3))
    plan = world.apply(request_bundle("second-request", promiseGeneration=2))

    assert plan.result.state == "Scheduled" and plan.changed
    assert all(b"2.9.0" in c for c in _crd_files(world).values())
    kept = plan.notes.kept
    assert sorted(kept) == sorted(
        f"CustomResourceDefinition.apiextensions.k8s.io {plural}.{group} (generation 3)"
        for plural, (group, _) in CRD_NAMES.items()
    )
    assert "Kept at a newer promise generation:" in plan.message
    for kind in ("Elasticsearch", "Kibana", "Beat"):
        assert (kind, "default", "second-request") in identities(world, RES)
    check_tree(world.tree)
    assert_reloads(world)

    # a higher generation does replace
    plan = world.apply(request_bundle("third", promiseGeneration=4))
    assert all(b"2.8.0" in c for c in _crd_files(world).values())
    assert not plan.notes.kept


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
def test_newer_content_stays_protected_after_its_writer_leaves(restart: bool) -> None:
    world = World()
    world.destination(DEST)
    world.apply(request_bundle("older", promiseGeneration=2))
    newer = {**request_bundle("newer")["files"], "elastic-crds.yaml": crds("2.9.0")}  # type: ignore[dict-item]
    world.apply(request_bundle("newer", files=newer, promiseGeneration=3))
    plan = world.delete("elastic-cloud", "default/newer")
    assert all(b"2.9.0" in c for c in _crd_files(world).values())  # content stays
    assert ".statewriter/generations/worker-cluster-1.json" in plan.files.added
    if restart:
        world.restart()

    # the remaining generation-2 owner changes its bundle: its CRDs do not win
    plan = world.apply(request_bundle("older", promiseGeneration=2, status={"phase": "again"}))
    assert plan.changed and len(plan.notes.kept) == 4
    assert all(b"2.9.0" in c for c in _crd_files(world).values())
    check_tree(world.tree)
    assert_reloads(world)

    # generation 4 writes its content, and the kept generation is forgotten
    plan = world.apply(request_bundle("older", promiseGeneration=4))
    assert all(b"2.8.0" in c for c in _crd_files(world).values())
    assert ".statewriter/generations/worker-cluster-1.json" in plan.files.removed
    assert_reloads(world)


# -- resources output identically by several owners -------------------------------------------


def test_identical_resource_of_two_requests_moves_to_shared_in_one_commit_and_back() -> None:
    world = World()
    world.destination(DEST)
    common = config_map("common", "team-a", "same")
    own = f"{req('team-a', 'p1', 'one', 'default')}/team-a_ConfigMap_common.yaml"
    shared = f"{RES}/_shared/team-a/ConfigMap_common.yaml"
    world.apply(payload("p1", "team-a/one", {"cm.yaml": common}))
    assert world.tree.read(own) is not None

    plan = world.apply(payload("p1", "team-a/two", {"cm.yaml": common,
                                                    "x.yaml": config_map("x")}))
    assert plan.changes[own] is None
    assert plan.changes[shared] is not None
    assert f"{req('team-a', 'p1', 'two', 'default')}/team-a_ConfigMap_common.yaml" not in world.files()
    assert len([p for p in world.files(DEST) if p.endswith("ConfigMap_common.yaml")]) == 1
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)

    plan = world.delete("p1", "team-a/one")
    assert plan.changes[shared] is None
    two = req("team-a", "p1", "two")
    assert world.tree.read(f"{two}/team-a_ConfigMap_common.yaml") is not None
    assert world.tree.read(shared) is None
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


# -- placement rules ----------------------------------------------------------------------------


def _placed(world: World, kind: str, name: str) -> tuple[str, dict[str, Any]]:
    """The one file under the destination holding kind/name, and its object."""
    (found,) = [(p, d) for p, d in world.objects(DEST).items()
                if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_promise_level_bundle_goes_to_dependencies_with_default_namespace() -> None:
    world = World()
    world.destination(DEST)
    world.apply(payload("p1", files={"cm.yaml": config_map("settings"),
                                     "cr.yaml": crd("example.com", "Widget")}))
    path, doc = _placed(world, "ConfigMap", "settings")
    assert path == f"{DEPS}/default/_core/ConfigMap_settings.yaml"
    assert doc["metadata"]["namespace"] == "default"
    path, _ = _placed(world, "CustomResourceDefinition", "widgets.example.com")
    assert path.startswith(f"{DEPS}/_cluster/example.com/")


def test_cluster_scoped_kinds_of_a_request_go_to_dependencies() -> None:
    world = World()
    world.destination(DEST)
    files = {
        "crd.yaml": crd("example.com", "Widget"),
        "ns.yaml": manifest("v1", "Namespace", "extra"),
        "role.yaml": manifest("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", rules=[]),
        "pc.yaml": manifest("scheduling.k8s.io/v1", "PriorityClass", "high", value=1000),
        "cm.yaml": config_map("mine"),
    }
    world.apply(payload("p1", "team-a/one", files))
    for kind, name in [("CustomResourceDefinition", "widgets.example.com"),
                       ("Namespace", "extra"), ("ClusterRole", "reader"),
                       ("PriorityClass", "high")]:
        path, doc = _placed(world, kind, name)
        assert path.startswith(f"{DEPS}/_cluster/"), path
        assert "namespace" not in doc["metadata"]
    path, doc = _placed(world, "ConfigMap", "mine")
    assert path == f"{req('team-a', 'p1', 'one', 'default')}/team-a_ConfigMap_mine.yaml"
    assert doc["metadata"]["namespace"] == "team-a"


def test_object_in_a_namespace_the_bundle_declares_goes_to_dependencies() -> None:
    world = World()
    world.destination(DEST)
    files = {
        "ns.yaml": manifest("v1", "Namespace", "operator-system") + "---\n"
        + manifest("v1", "Namespace", "team-a"),
        "op.yaml": config_map("operator", "operator-system"),
        "own.yaml": config_map("own", "team-a"),  # the request's namespace: still a resource
        "elsewhere.yaml": config_map("other", "team-b"),  # not declared: a resource
    }
    world.apply(payload("p1", "team-a/one", files))
    assert _placed(world, "ConfigMap", "operator")[0] == \
        f"{DEPS}/operator-system/_core/ConfigMap_operator.yaml"
    assert _placed(world, "ConfigMap", "own")[0].startswith(f"{req('team-a', 'p1', 'one', 'default')}/")
    assert _placed(world, "ConfigMap", "other")[0] == \
        f"{req('team-a', 'p1', 'one', 'default')}/team-b_ConfigMap_other.yaml"
    check_tree(world.tree, exact_blobs=True)


def test_placement_annotation_sends_to_dependencies_and_is_stripped() -> None:
    world = World()
    world.destination(DEST)
    annotations = {"statewriter.dev/placement": "dependency", "team": "a"}
    world.apply(payload("p1", "team-a/one", {
        "cm.yaml": config_map("marked", annotations=annotations),
        "only.yaml": config_map("only", annotations={"statewriter.dev/placement": "dependency"}),
    }))
    path, doc = _placed(world, "ConfigMap", "marked")
    assert path == f"{DEPS}/team-a/_core/ConfigMap_marked.yaml"
    assert doc["metadata"]["annotations"] == {"team": "a"}
    path, doc = _placed(world, "ConfigMap", "only")
    assert "annotations" not in doc["metadata"]
    assert b"statewriter.dev" not in b"".join(world.files(DEST).values())


def test_kind_with_cluster_scoped_crd_in_the_bundle_gets_no_namespace() -> None:
    world = World()
    world.destination(DEST)
    world.apply(payload("p1", "team-a/one", {
        "crd.yaml": crd("example.com", "Tenant", scope="Cluster"),
        "tenant.yaml": manifest("example.com/v1", "Tenant", "acme", "team-a"),
        "widget-crd.yaml": crd("example.com", "Widget"),
        "widget.yaml": manifest("example.com/v1", "Widget", "w"),
    }))
    path, doc = _placed(world, "Tenant", "acme")
    assert path == f"{DEPS}/_cluster/example.com/Tenant.example.com_acme.yaml"
    assert "namespace" not in doc["metadata"]
    path, doc = _placed(world, "Widget", "w")
    assert doc["metadata"]["namespace"] == "team-a"
    check_tree(world.tree, exact_blobs=True)


def test_kind_with_cluster_scoped_crd_in_the_destination_gets_no_namespace() -> None:
    world = World()
    world.destination(DEST)
    world.destination("other")
    world.apply(payload("platform", files={"crd.yaml": crd("example.com", "Tenant", "Cluster")},
                        selectors={}))
    world.apply(payload("p1", "team-a/one", {
        "tenant.yaml": manifest("example.com/v1", "Tenant", "acme"),
    }))
    placed = world.index.request_destination("p1", "team-a", "one")
    assert placed is not None
    (path,) = [p for p in world.objects(placed) if "Tenant.example.com_acme" in p]
    assert path == f"{placed}/dependencies/_cluster/example.com/Tenant.example.com_acme.yaml"
    assert "namespace" not in world.doc(path)["metadata"]
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_namespaced_objects_without_namespace_get_the_request_namespace() -> None:
    world = seeded("example")
    world.apply(request_bundle("in-team", namespace="team-a"))
    _, doc = _placed(world, "Kibana", "in-team")
    assert doc["metadata"]["namespace"] == "team-a"
    # the operator names its own namespace and keeps it
    assert identities(world, DEPS)[("ConfigMap", "elastic-system", "elastic-operator")]
    assert ("Kibana", "team-a", "in-team") in identities(world, req("team-a", PROMISE, "in-team"))


def test_crds_and_namespaces_are_protected_from_prune() -> None:
    world = seeded("example")
    for doc in world.objects(DEST).values():
        annotations = doc["metadata"].get("annotations", {})
        protected = doc["kind"] in ("CustomResourceDefinition", "Namespace")
        assert (annotations.get("kustomize.toolkit.fluxcd.io/prune") == "disabled") == protected


def test_protected_kinds_are_configurable() -> None:
    world = World(Policy(protect_from_prune=frozenset({"ClusterRole"})))
    world.destination(DEST)
    world.apply(request_bundle("example"))
    _, role = _placed(world, "ClusterRole", "elastic-operator")
    _, namespace = _placed(world, "Namespace", "elastic-system")
    assert role["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
    assert "annotations" not in namespace["metadata"]


def test_identity_keeps_its_first_placement() -> None:
    world = World()
    world.destination(DEST)
    mark = {"statewriter.dev/placement": "dependency"}
    # first seen as a resource; a later owner marking it a dependency does not move it
    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("common", "shared")}))
    world.apply(payload("p1", "team-b/two", {"cm.yaml": config_map("common", "shared",
                                                                  annotations=mark)}))
    assert _placed(world, "ConfigMap", "common")[0] == f"{RES}/_shared/shared/ConfigMap_common.yaml"
    world.delete("p1", "team-a/one")
    assert _placed(world, "ConfigMap", "common")[0] == \
        f"{req('team-b', 'p1', 'two', 'default')}/shared_ConfigMap_common.yaml"
    # first seen as a dependency; an owner that would place it in resources joins it there
    world.apply(payload("p2", files={"cm.yaml": config_map("base", "shared")}))
    world.apply(payload("p2", "team-a/three", {"cm.yaml": config_map("base", "shared")}))
    assert _placed(world, "ConfigMap", "base")[0] == f"{DEPS}/shared/_core/ConfigMap_base.yaml"
    world.delete("p2")
    assert _placed(world, "ConfigMap", "base")[0] == f"{DEPS}/shared/_core/ConfigMap_base.yaml"
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


# -- scheduling ---------------------------------------------------------------------------------


def test_selectors_pick_only_matching_destinations() -> None:
    world = World()
    world.destination("dev-1", {"env": "dev", "zone": "a"})
    world.destination("prod-1", {"env": "prod", "zone": "a"})
    plan = world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("x")},
                               selectors={"env": "prod", "zone": "a"}))
    assert list(plan.result.destinations) == ["prod-1"]
    assert world.files("dev-1/resources").keys() == {"dev-1/resources/kustomization.yaml"}


def test_rendezvous_picks_the_highest_hash_among_matches() -> None:
    world = World()
    names = ["alpha", "beta", "gamma", "delta"]
    for name in names:
        world.destination(name, {"env": "dev"})
    world.destination("prod", {"env": "prod"})
    chosen = set()
    for i in range(12):
        request = f"team-a/r{i}"
        plan = world.apply(payload("p1", request, {"cm.yaml": config_map("x")},
                                   selectors={"env": "dev"}))
        expected = rendezvous_order(names, f"p1/{request}")[0]
        assert expected == max(names, key=lambda n: hashlib.sha256(
            f"{n}/p1/team-a/r{i}".encode()).hexdigest())
        assert list(plan.result.destinations) == [expected]
        chosen.add(expected)
    assert len(chosen) > 1  # the requests spread


def test_placement_is_sticky_and_reports_misplaced() -> None:
    world = World()
    world.destination("a", {"env": "dev"})
    world.destination("b", {"env": "dev"})
    first = world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("x")},
                                selectors={"env": "dev"}))
    (placed,) = list(first.result.destinations)
    assert first.result.misplaced is False
    other = "b" if placed == "a" else "a"
    world.destination(other, {"env": "prod"})
    world.destination(placed, {"env": "prod"})
    world.destination("c", {"env": "dev"})  # matches now; the request stays put
    plan = world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("x", value="2")},
                               selectors={"env": "dev"}))
    assert list(plan.result.destinations) == [placed]
    assert plan.result.misplaced is True
    assert world.objects(f"{placed}/resources")
    assert not world.objects("c/resources")


def test_all_pipelines_of_a_request_share_its_destination() -> None:
    world = World()
    world.destination("a", {"env": "dev"})
    world.destination("b", {"env": "prod"})
    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("x")},
                        pipeline="configure", selectors={"env": "dev"}))
    plan = world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("y")},
                               pipeline="deploy", selectors={"env": "prod"}))
    assert list(plan.result.destinations) == ["a"]
    assert plan.result.misplaced is True
    assert set(world.objects(req("team-a", "p1", "one", dest="a").rpartition("/")[0])) == {
        f"{req('team-a', 'p1', 'one', 'configure', dest='a')}/team-a_ConfigMap_x.yaml",
        f"{req('team-a', 'p1', 'one', 'deploy', dest='a')}/team-a_ConfigMap_y.yaml",
    }


def test_no_matching_destination_is_pending_and_stored() -> None:
    world = World()
    world.destination("dev", {"env": "dev"})
    plan = world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("x"),
                                                    "b.yaml": config_map("y")},
                               selectors={"env": "prod"}))
    assert plan.result.state == "Pending"
    assert plan.result.state == "Pending" and list(plan.result.destinations) == []
    stored = world.files(layout.stored_bundle_folder(Owner('p1', 'team-a', 'one', 'default')))
    assert [yaml.safe_load(c)["metadata"]["name"] for c in stored.values()] == ["y", "x"]
    assert not world.objects("dev")
    # posted again unchanged: still pending
    again = world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("x"),
                                                     "b.yaml": config_map("y")},
                                selectors={"env": "prod"}))
    assert not again.changed and again.result.state == "Pending" and again.result.state == "Pending"


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
def test_stored_documents_are_normalised_and_keep_the_dependency_mark(restart: bool) -> None:
    world = World()
    mark = {"statewriter.dev/placement": "dependency", "team": "a"}
    files = {"cm.yaml": config_map("plain"), "op.yaml": config_map("operator", "ops", annotations=mark),
             "ns.yaml": manifest("v1", "Namespace", "ops")}
    world.apply(payload("p1", "team-a/one", files, selectors={"env": "prod"}))
    stored = {yaml.safe_load(c)["metadata"]["name"]: yaml.safe_load(c)
              for c in world.files(layout.stored_bundle_folder(Owner("p1", "team-a", "one",
                                                                      "default"))).values()}
    # exactly as they would be under a destination path (docs/reference.md section 2)
    assert stored["plain"]["metadata"]["namespace"] == "team-a"
    assert stored["operator"]["metadata"]["annotations"] == {"team": "a"}
    assert stored["ops"]["metadata"]["annotations"] == {PRUNE_ANNOTATION: "disabled"}
    (record,) = world.index.request_owners("p1", "team-a", "one")
    assert len(record.dependency_marked) == 1
    if restart:
        world.restart()

    world.destination("prod", {"env": "prod"})
    assert world.tree.read("prod/dependencies/ops/_core/ConfigMap_operator.yaml") is not None
    assert world.tree.read(f"{req('team-a', 'p1', 'one', dest='prod')}/team-a_ConfigMap_plain.yaml")
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
def test_pending_bundle_is_placed_when_a_matching_destination_is_registered(restart: bool) -> None:
    world = World()
    body = payload("p1", "team-a/one", {"cm.yaml": config_map("x")}, selectors={"env": "prod"})
    world.apply(body)
    promise_level = payload("p1", files={"crd.yaml": crd("example.com", "Widget")},
                            selectors={"env": "prod"})
    assert world.apply(promise_level).result.state == "Pending"
    if restart:
        world.restart()
    plan = world.destination("prod", {"env": "prod"})

    assert world.tree.read(f"{req('team-a', 'p1', 'one', dest='prod')}/team-a_ConfigMap_x.yaml")
    assert world.tree.read(
        "prod/dependencies/_cluster/example.com/"
        "CustomResourceDefinition.apiextensions.k8s.io_widgets.example.com.yaml")
    assert not world.files(".statewriter/bundles/p1/team-a")  # placed: no longer kept
    assert world.files(".statewriter/bundles/p1/_promise")  # kept for later destinations
    trailers = parse_trailers(plan.message)
    assert trailers["Statewriter-Action"] == ["destination"]
    assert trailers["Statewriter-Request"] == ["team-a/one"]
    assert trailers["Statewriter-Bundle-Digest"] == [  # one per placed bundle, in order
        parse_bundle(body).digest, parse_bundle(promise_level).digest]
    assert world.index.request_destination("p1", "team-a", "one") == "prod"
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    # the request's owner is now placed and unchanged by a repost
    assert not world.apply(body).changed


def _kept_out_by_a_conflict() -> tuple[World, dict[str, Any]]:
    """p2's request, pending until destination d matches it, then kept out of d by p1's
    object of the same identity: (the world, p2's bundle)."""
    world = World()
    world.destination("d", {"env": "dev"})
    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("same", value="mine")},
                        selectors={"env": "dev"}))
    blocked = payload("p2", "team-a/two", {"cm.yaml": config_map("same", value="theirs")},
                      selectors={"tier": "x"})
    assert world.apply(blocked).result.state == "Pending"  # no destination matches yet
    world.destination("d", {"env": "dev", "tier": "x"})  # now one does, but p1 holds the object
    return world, blocked


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
def test_request_kept_out_by_a_conflict_is_placed_once_the_conflicting_owner_goes(
    restart: bool,
) -> None:
    world, blocked = _kept_out_by_a_conflict()
    (record,) = world.index.request_owners("p2", "team-a", "two")
    assert record.state == "Pending" and "differs from the stored object" in str(record.pending_reason)
    if restart:
        world.restart()

    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map("other")},
                        selectors={"env": "dev"}))  # p1 lets go of the object
    follow_up = world.followed
    assert follow_up is not None and follow_up.changed
    trailers = parse_trailers(follow_up.message)
    assert trailers["Statewriter-Action"] == ["destination"]
    assert trailers["Statewriter-Request"] == ["team-a/two"]
    assert trailers["Statewriter-Bundle-Digest"] == [parse_bundle(blocked).digest]
    (record,) = world.index.request_owners("p2", "team-a", "two")
    assert record.state == "Scheduled" and not dict(world.index.blocked.items())
    (doc,) = world.objects(req("team-a", "p2", "two", dest="d")).values()
    assert doc["data"] == {"value": "theirs"}
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_a_waiting_bundle_refused_at_placement_is_reported_not_skipped_silently() -> None:
    world = World()
    # two promises both ship a CRD of the same name with different content
    world.apply(payload("p1", files={"crd.yaml": crd("example.com", "Widget", version="1")},
                        selectors={"env": "dev"}))
    world.apply(payload("p2", files={"crd.yaml": crd("example.com", "Widget", version="2")},
                        selectors={"env": "dev"}))
    plan = world.destination("d", {"env": "dev"})

    (refused,) = plan.notes.not_placed
    assert refused.owner.promise == "p2" and refused.destination == "d"
    assert "another promise's dependency" in refused.reason
    assert "Not placed (refused):" in plan.message and "p2 (promise)" in plan.message
    assert world.index.request_owners("p1")[0].destinations == ("d",)
    assert world.index.request_owners("p2")[0].destinations == ()


def test_retrying_blocked_requests_commits_nothing_while_the_conflict_stays() -> None:
    world = World()
    world.destination("d", {"env": "dev"})
    for name in ("one", "three"):
        world.apply(payload("p1", f"team-a/{name}", {"cm.yaml": config_map(name)},
                            selectors={"env": "dev"}))
    world.apply(payload("p2", "team-a/two", {"cm.yaml": config_map("one", value="theirs")},
                        selectors={"tier": "x"}))
    world.destination("d", {"env": "dev", "tier": "x"})
    world.followed = None
    world.delete("p1", "team-a/three")  # frees nothing p2 needs
    assert world.followed is not None and not world.followed.changed
    assert len(dict(world.index.blocked.items())) == 1


def test_invalid_bundle_is_refused_even_when_pending_and_never_blocks_destinations() -> None:
    world = World()
    body = payload("p1", "team-a/one", {"a.yaml": config_map("x", value="1"),
                                        "b.yaml": config_map("x", value="2")},
                   selectors={"env": "prod"})
    with pytest.raises(InvalidBundle):
        world.apply(body)
    world.destination("prod", {"env": "prod"})


def test_promise_level_bundle_goes_to_every_matching_destination_including_later_ones() -> None:
    world = World()
    world.destination("a", {"env": "dev"})
    world.destination("b", {"env": "dev"})
    world.destination("c", {"env": "prod"})
    plan = world.apply(payload("p1", files={"crd.yaml": crd("example.com", "Widget")},
                               selectors={"env": "dev"}))
    assert list(plan.result.destinations) == ["a", "b"]
    assert [v for k, v in git_trailers(plan.message) if k == "Statewriter-Destination"] == ["a", "b"]
    assert "Statewriter-Request" not in dict(git_trailers(plan.message))
    file = ("dependencies/_cluster/example.com/"
            "CustomResourceDefinition.apiextensions.k8s.io_widgets.example.com.yaml")
    assert world.tree.read(f"a/{file}") and world.tree.read(f"b/{file}")
    assert world.tree.read(f"c/{file}") is None
    world.restart()
    world.destination("d", {"env": "dev"})
    assert world.tree.read(f"d/{file}") == world.tree.read(f"a/{file}")
    world.destination("c", {"env": "dev"})  # relabelled to match
    assert world.tree.read(f"c/{file}") is not None
    world.destination("a", {"env": "prod"})  # no longer matches: withdrawn
    assert world.tree.read(f"a/{file}") is None
    (record,) = world.index.request_owners("p1")
    assert record.destinations == ("b", "c", "d")
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_promise_level_bundle_with_narrower_selectors_leaves_the_other_destinations() -> None:
    world = World()
    world.destination("a", {"env": "dev", "zone": "1"})
    world.destination("b", {"env": "dev", "zone": "2"})
    files = {"crd.yaml": crd("example.com", "Widget")}
    world.apply(payload("p1", files=files, selectors={"env": "dev"}))
    plan = world.apply(payload("p1", files=files, selectors={"env": "dev", "zone": "2"}))
    assert list(plan.result.destinations) == ["b"]
    assert not world.objects("a") and world.objects("b")
    assert [v for k, v in git_trailers(plan.message) if k == "Statewriter-Destination"] == ["a", "b"]
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


# -- destinations -------------------------------------------------------------------------------


def test_destination_delete_is_refused_while_requests_are_placed() -> None:
    world = seeded("example")
    state, files = index_state(world.index), world.files()
    with pytest.raises(Conflict) as refused:
        plan_delete_destination(world.index, world.tree, DEST, "tester")
    assert refused.value.detail["requests"][0].request == "default/example"
    assert index_state(world.index) == state and world.files() == files


def test_destination_delete_removes_promise_level_dependencies() -> None:
    world = World()
    world.destination(DEST)
    world.destination("other")
    world.apply(payload("p1", files={"crd.yaml": crd("example.com", "Widget")}))
    plan = world.delete_destination(DEST)
    assert parse_trailers(plan.message)["Statewriter-Action"] == ["destination"]
    assert not world.files(DEST)
    assert world.files("other/dependencies/_cluster")
    assert world.tree.read(f".statewriter/destinations/{DEST}.json") is None
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    # registered again: the promise-level bundle comes back
    world.destination(DEST)
    assert world.files(f"{DEPS}/_cluster")


def test_destination_path_change_is_refused_while_requests_are_placed() -> None:
    world = seeded("example")
    state, files = index_state(world.index), world.files()
    with pytest.raises(Conflict):
        plan_put_destination(world.index, world.tree, DEST, {}, "clusters/one", "tester")
    assert index_state(world.index) == state and world.files() == files


def test_destination_path_change_moves_its_files(tmp_path: Path) -> None:
    world = World()
    world.destination(DEST)
    world.apply(payload("p1", files={"crd.yaml": crd("example.com", "Widget"),
                                     "cm.yaml": config_map("settings")}))
    before = {p.removeprefix(DEST): c for p, c in world.files(DEST).items()}
    world.destination(DEST, {}, "clusters/one")
    assert not world.files(DEST + "/")
    assert {p.removeprefix("clusters/one"): c for p, c in world.files("clusters/one").items()} \
        == before
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    build_all(world.tree, tmp_path)


def test_destination_path_change_into_its_old_section_leaves_no_stale_kustomization() -> None:
    world = World()
    world.destination("a")
    world.apply(payload("p1", files={"crd.yaml": crd("example.com", "Widget")}))
    world.destination("a", {}, "a/dependencies")
    assert "a/dependencies/kustomization.yaml" not in world.files()
    assert world.files("a/dependencies/dependencies/_cluster")
    check_tree(world.tree, exact_blobs=True)
    world.destination("a", {}, "a")
    assert set(world.files("a")) == {
        "a/dependencies/kustomization.yaml", "a/resources/kustomization.yaml",
        "a/dependencies/_cluster/kustomization.yaml",
        "a/dependencies/_cluster/example.com/kustomization.yaml",
        "a/dependencies/_cluster/example.com/"
        "CustomResourceDefinition.apiextensions.k8s.io_widgets.example.com.yaml",
    }
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_destination_path_may_not_overlap_another() -> None:
    world = World()
    world.destination("one", {}, "clusters/one")
    with pytest.raises(Conflict):
        world.destination("two", {}, "clusters")
    with pytest.raises(InvalidBundle):
        world.destination("three", {}, ".statewriter")


def test_registering_a_destination_creates_both_buildable_sections(tmp_path: Path) -> None:
    world = World()
    plan = world.destination(DEST, {"env": "dev"})
    assert set(world.files(DEST)) == {f"{DEPS}/kustomization.yaml", f"{RES}/kustomization.yaml"}
    assert world.destination(DEST, {"env": "dev"}).changes == {}
    assert plan.result == DestinationSaved(Destination(DEST, {"env": "dev"}, DEST))
    assert plan.changed
    materialise(world.tree, tmp_path)
    assert kustomize(tmp_path / DEPS) == [] and kustomize(tmp_path / RES) == []


# -- commit messages ----------------------------------------------------------------------------


def git_trailers(message: str) -> list[tuple[str, str]]:
    proc = subprocess.run(["git", "interpret-trailers", "--parse"], input=message,
                          capture_output=True, text=True, check=True)
    return [(k, v.strip()) for k, _, v in (line.partition(":") for line in proc.stdout.splitlines())]


def test_commit_message_trailers_are_read_by_git() -> None:
    world = World()
    world.destination(DEST)
    plan = world.run(plan_apply(world.index, world.tree, parse_bundle(
        request_bundle("example", pipeline="instance-configure")), "elastic-pipeline"))
    trailers = git_trailers(plan.message)
    assert trailers == [
        ("Statewriter-Action", "apply"),
        ("Statewriter-Promise", PROMISE),
        ("Statewriter-Request", "default/example"),
        ("Statewriter-Pipeline", "instance-configure"),
        ("Statewriter-Destination", DEST),
        ("Statewriter-Actor", "elastic-pipeline"),
        ("Statewriter-Bundle-Digest", parse_bundle(
            request_bundle("example", pipeline="instance-configure")).digest),
    ]
    assert plan.message.splitlines()[0] == (
        f"apply {PROMISE} default/example pipeline instance-configure to {DEST}")
    assert f"  {req('default', PROMISE, 'example', 'instance-configure')}/kustomization.yaml" \
        in plan.message.splitlines()

    plan = world.delete(PROMISE, "default/example")
    assert dict(git_trailers(plan.message))["Statewriter-Action"] == "delete"
    plan = world.destination("second", {"env": "x"})
    assert git_trailers(plan.message) == [("Statewriter-Action", "destination"),
                                          ("Statewriter-Destination", "second"),
                                          ("Statewriter-Actor", "tester")]


def test_bundle_digest_is_sha256_of_the_canonical_json() -> None:
    files = {"z.yaml": OPERATOR, **stack("example"), "a.yaml": crds()}
    body = payload(PROMISE, "default/example", files, pipeline="p",
                   selectors={"zone": "a", "env": "dev"})
    documents = [d for name in sorted(files) for d in yaml.safe_load_all(files[name]) if d]
    canonical = json.dumps({"promise": PROMISE, "request": "default/example", "pipeline": "p",
                            "selectors": {"env": "dev", "zone": "a"}, "documents": documents},
                           sort_keys=True, separators=(",", ":"))
    expected = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert parse_bundle(body).digest == expected

    world = World()
    world.destination(DEST, {"env": "dev", "zone": "a"})
    plan = world.apply(body)
    assert dict(git_trailers(plan.message))["Statewriter-Bundle-Digest"] == expected

    promise_level = payload(PROMISE, None, {"a.yaml": crds()})
    canonical = json.dumps({"promise": PROMISE, "request": None, "pipeline": "default",
                            "selectors": {}, "documents": list(yaml.safe_load_all(crds()))},
                           sort_keys=True, separators=(",", ":"))
    assert parse_bundle(promise_level).digest == \
        "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


# -- purity -------------------------------------------------------------------------------------


def test_plans_are_pure_until_merged() -> None:
    world = seeded("example")
    state, files = index_state(world.index), world.files()
    tree = DictTree(files)
    plan = plan_apply(world.index, tree, parse_bundle(request_bundle("second-request")), "t")
    assert plan.changed
    assert index_state(world.index) == state and dict(tree.files("")) == files
    plan.index.merge_down()
    assert index_state(world.index) != state
    assert index_state(Index.load(world.tree)) == state


def test_document_numbers_in_refusals_count_empty_documents_as_the_file_does() -> None:
    text = "---\n# nothing here\n---\nkind: ConfigMap\nmetadata: {name: x}\n"
    with pytest.raises(InvalidBundle) as refused:
        parse_bundle(payload("p1", "team-a/one", {"cm.yaml": text}))
    assert refused.value.message.startswith("cm.yaml: document 1:")
    assert refused.value.detail["document"] == 1
    bad_yaml = "---\n---\nkind: [\n"
    with pytest.raises(InvalidBundle) as broken:
        parse_bundle(payload("p1", "team-a/one", {"cm.yaml": bad_yaml}))
    assert broken.value.detail["document"] == 1


# -- scheduling (docs/reference.md section 5, v2) ------------------------------------------------------


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
def test_a_pending_pipeline_joins_its_request_when_a_sibling_is_placed(restart: bool) -> None:
    world = World()
    world.destination("dev", {"env": "dev"})
    waiting = payload("p1", "team-a/one", {"a.yaml": config_map("a")}, pipeline="first",
                      selectors={"env": "nowhere"})
    assert world.apply(waiting).result.state == "Pending"
    if restart:
        world.restart()

    plan = world.apply(payload("p1", "team-a/one", {"b.yaml": config_map("b")},
                               pipeline="second", selectors={"env": "dev"}))

    records = {r.owner.pipeline: r for r in world.index.request_owners("p1", "team-a", "one")}
    assert records["first"].destinations == records["second"].destinations == ("dev",)
    assert world.tree.read(f"{req('team-a', 'p1', 'one', 'first', dest='dev')}/team-a_ConfigMap_a.yaml")
    assert plan.notes.placed == (Owner("p1", "team-a", "one", "first"),)
    trailers = parse_trailers(plan.message)  # one commit, a trailer group for each owner
    assert trailers["Statewriter-Pipeline"] == ["second", "first"]
    assert trailers["Statewriter-Bundle-Digest"] == [
        parse_bundle(payload("p1", "team-a/one", {"b.yaml": config_map("b")}, pipeline="second",
                             selectors={"env": "dev"})).digest,
        parse_bundle(waiting).digest]
    assert not world.files(".statewriter/bundles/p1/team-a")
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_pending_pipelines_follow_the_one_a_new_destination_takes() -> None:
    world = World()
    world.apply(payload("p1", "team-a/one", {"a.yaml": config_map("a")}, pipeline="first",
                        selectors={"env": "dev"}))
    world.apply(payload("p1", "team-a/one", {"b.yaml": config_map("b")}, pipeline="second",
                        selectors={"env": "prod"}))
    world.destination("dev", {"env": "dev"})  # matches only the first pipeline's selectors
    records = {r.owner.pipeline: r for r in world.index.request_owners("p1", "team-a", "one")}
    assert records["first"].destinations == records["second"].destinations == ("dev",)
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
def test_a_promise_level_bundle_refused_at_a_destination_is_placed_once_the_conflict_goes(
    restart: bool,
) -> None:
    world = World()
    world.apply(payload("p1", files={"crd.yaml": crd("example.com", "Widget", version="1")},
                        selectors={"env": "dev"}))
    second = payload("p2", files={"crd.yaml": crd("example.com", "Widget", version="2")},
                     selectors={"env": "dev"})
    world.apply(second)
    plan = world.destination("d", {"env": "dev"})
    assert [n.owner.promise for n in plan.notes.not_placed] == ["p2"]
    (record,) = world.index.request_owners("p2")
    assert record.blocked and record.state == "Pending"
    if restart:
        world.restart()

    world.delete("p1")

    assert world.followed is not None and world.followed.changed
    assert parse_trailers(world.followed.message)["Statewriter-Promise"] == ["p2"]
    (record,) = world.index.request_owners("p2")
    assert record.destinations == ("d",) and not record.blocked
    (doc,) = world.objects("d/dependencies").values()
    assert doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == "version 2"
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_reposting_a_bundle_that_waits_re_evaluates_it() -> None:
    world, blocked = _kept_out_by_a_conflict()
    # p1 lets go, but the retry that would follow is not run (as in a store written before
    # retries existed): the truth changed under the waiting bundle
    gone = plan_delete(world.index, world.tree, "p1", "team-a", "one", None, "tester")
    gone.follow_up = None
    world.run(gone)
    (record,) = world.index.request_owners("p2", "team-a", "two")
    assert record.state == "Pending"

    plan = world.apply(blocked)  # the same bundle again

    assert plan.changed and plan.result.state == "Scheduled"
    assert list(plan.result.destinations) == ["d"]
    check_tree(world.tree, exact_blobs=True)


# -- delivery integrity (docs/reference.md sections 2-4, v2) ----------------------------------------------


def test_a_crd_may_not_change_its_kinds_scope_while_objects_of_it_are_stored() -> None:
    world = World()
    world.destination(DEST)
    tenant = manifest("example.com/v1", "Tenant", "acme")
    world.apply(payload("p1", "team-a/one", {"crd.yaml": crd("example.com", "Tenant", "Cluster"),
                                             "tenant.yaml": tenant}))
    state, files = index_state(world.index), world.files()
    flipped = payload("p1", "team-a/two", {"crd.yaml": crd("example.com", "Tenant", "Namespaced")})

    with pytest.raises(Conflict) as refused:
        world.apply(flipped)

    assert "changes the scope of Tenant.example.com from Cluster to Namespaced" in \
        refused.value.message
    assert index_state(world.index) == state and world.files() == files
    # without objects of its kind stored, the scope may change
    world.delete("p1", "team-a/one")
    world.apply(flipped)
    check_tree(world.tree, exact_blobs=True)


def test_object_file_names_over_255_bytes_are_shortened_deterministically(tmp_path: Path) -> None:
    world = World()
    world.destination(DEST)
    name = "c" * 253
    # the longest CRD name the API server takes: a plural of at most 63 characters (a DNS-1035
    # label) and a group of labels of at most 63, 253 in all
    group = ".".join(["g" * 60] * 3) + ".example.com"
    plural = "p" * (253 - len(group) - 1)
    long_crd = manifest("apiextensions.k8s.io/v1", "CustomResourceDefinition", f"{plural}.{group}",
                        spec={"group": group, "scope": "Namespaced",
                              "names": {"kind": "Long", "plural": plural, "singular": "long"},
                              "versions": [{"name": "v1", "served": True, "storage": True,
                                            "schema": {"openAPIV3Schema": {
                                                "type": "object",
                                                "x-kubernetes-preserve-unknown-fields": True}}}]})
    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map(name), "crd.yaml": long_crd,
                                             "long.yaml": manifest(f"{group}/v1", "Long", name)}))
    for path in world.files():
        assert all(len(segment.encode()) <= 255 for segment in path.split("/")), path
    (cm_path,) = [p for p in world.files() if "_ConfigMap_" in p]
    full = f"team-a_ConfigMap_{name}.yaml"
    digest = hashlib.sha256(full.encode()).hexdigest()[:12]
    assert cm_path.rpartition("/")[2] == f"{full[:255 - 18]}-{digest}.yaml"
    assert yaml.safe_load(world.read(cm_path))["metadata"]["name"] == name  # object unchanged
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    built = build_all(world.tree, tmp_path)
    assert {d["metadata"]["name"] for d in built[RES]} == {name}


def test_a_new_object_whose_shortened_file_name_is_taken_is_refused() -> None:
    world = World()
    world.destination(DEST)
    first = "c" * 253
    world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map(first)}))
    (taken,) = [p for p in world.files() if "_ConfigMap_" in p]
    # a name whose own (unshortened) file name is exactly the shortened one of the first
    second = taken.rpartition("/")[2].removeprefix("team-a_ConfigMap_").removesuffix(".yaml")
    assert len(f"team-a_ConfigMap_{second}.yaml") == 255
    state, files = index_state(world.index), world.files()
    with pytest.raises(Conflict, match="file name"):
        world.apply(payload("p1", "team-a/one", {"cm.yaml": config_map(first),
                                                 "b.yaml": config_map(second)}))
    assert index_state(world.index) == state and world.files() == files


# -- dependencies fanned out by API group (docs/reference.md section 2, layout 3) ------------------------


def _listed(world: World, folder: str) -> list[str]:
    resources: list[str] = yaml.safe_load(world.read(f"{folder}/{layout.KUSTOMIZATION}"))["resources"]
    return resources


def test_dependencies_sit_in_a_folder_per_api_group_a_crd_in_the_group_it_defines(
    tmp_path: Path,
) -> None:
    world = World()
    world.destination(DEST)
    world.apply(payload("p1", "team-a/one", {
        "crds.yaml": crd("example.com", "Widget") + "---\n" + crd("example.com", "Tenant", "Cluster"),
        "tenant.yaml": manifest("example.com/v1", "Tenant", "acme"),
        "ns.yaml": manifest("v1", "Namespace", "ops"),
        "role.yaml": manifest("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", rules=[]),
        "op.yaml": config_map("operator", "ops") + "---\n" + deployment("operator", "ops"),
    }))
    cluster = f"{DEPS}/_cluster"
    assert sorted(p.removeprefix(f"{DEPS}/") for p in world.objects(DEPS)) == [
        "_cluster/_core/Namespace_ops.yaml",
        "_cluster/example.com/CustomResourceDefinition.apiextensions.k8s.io_tenants.example.com.yaml",
        "_cluster/example.com/CustomResourceDefinition.apiextensions.k8s.io_widgets.example.com.yaml",
        "_cluster/example.com/Tenant.example.com_acme.yaml",
        "_cluster/rbac.authorization.k8s.io/ClusterRole.rbac.authorization.k8s.io_reader.yaml",
        "ops/_core/ConfigMap_operator.yaml",
        "ops/apps/Deployment.apps_operator.yaml",
    ]
    assert _listed(world, DEPS) == ["_cluster", "ops"]
    assert _listed(world, cluster) == ["_core", "example.com", "rbac.authorization.k8s.io"]
    assert _listed(world, f"{cluster}/example.com") == [
        "CustomResourceDefinition.apiextensions.k8s.io_tenants.example.com.yaml",
        "CustomResourceDefinition.apiextensions.k8s.io_widgets.example.com.yaml",
        "Tenant.example.com_acme.yaml"]
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    built = build_all(world.tree, tmp_path)
    assert len(built[DEPS]) == 7


def test_a_group_folder_that_empties_goes_with_its_kustomization() -> None:
    world = World()
    world.destination(DEST)
    both = {"cm.yaml": config_map("settings", "ops"),
            "deploy.yaml": deployment("operator", "ops")}
    world.apply(payload("p1", files=both))
    plan = world.apply(payload("p1", files={"cm.yaml": both["cm.yaml"]}))
    assert [p for p in plan.files.removed if p.startswith(DEST)] == [
        f"{DEPS}/ops/apps/Deployment.apps_operator.yaml", f"{DEPS}/ops/apps/kustomization.yaml"]
    assert [p for p in plan.files.changed if p.startswith(DEST)] == [f"{DEPS}/ops/kustomization.yaml"]
    assert _listed(world, f"{DEPS}/ops") == ["_core"]
    check_tree(world.tree, exact_blobs=True)
    world.delete("p1")
    assert set(world.files(DEST)) == {f"{DEPS}/kustomization.yaml", f"{RES}/kustomization.yaml"}
    assert _listed(world, DEPS) == []


def test_a_group_spelt_like_a_kustomization_file_gets_a_folder_no_group_can_take(
    tmp_path: Path,
) -> None:
    world = World()
    world.destination(DEST)
    group = "kustomization.yaml"
    world.apply(payload("p1", files={"crd.yaml": crd(group, "Odd", "Cluster"),
                                     "odd.yaml": manifest(f"{group}/v1", "Odd", "one")}))
    folder = f"{DEPS}/_cluster/_kustomization.yaml"
    assert _listed(world, f"{DEPS}/_cluster") == ["_kustomization.yaml"]
    assert sorted(_listed(world, folder)) == [
        "CustomResourceDefinition.apiextensions.k8s.io_odds.kustomization.yaml.yaml",
        "Odd.kustomization.yaml_one.yaml"]
    check_tree(world.tree, exact_blobs=True)
    built = build_all(world.tree, tmp_path)
    assert sorted(d["kind"] for d in built[DEPS]) == ["CustomResourceDefinition", "Odd"]


def test_no_dependencies_folder_holds_more_than_1000_entries_with_5000_crds_of_100_promises() -> None:
    world = World()
    world.destination(DEST)
    promises = [f"p{number:03d}" for number in range(100)]
    for promise in promises:
        files = {f"crd-{n}.yaml": crd_text(promise, n) for n in range(CRDS_PER_PROMISE)}
        world.apply(payload(promise, f"team-a/{promise}-r1", files))
    written = world.files(DEPS)
    assert sum(1 for p in written if not p.endswith(f"/{layout.KUSTOMIZATION}")) == 5_000
    widths = {folder: len(world.tree.listdir(folder)) for folder in {p.rpartition("/")[0] for p in written}}
    assert max(widths.values()) <= 1_000, max(widths.items(), key=lambda item: item[1])
    assert widths[f"{DEPS}/_cluster"] == 101  # a folder per promise's group, and its kustomization
    assert widths[f"{DEPS}/_cluster/p042.example.com"] == CRDS_PER_PROMISE + 1


def test_kustomization_entries_are_quoted_strings(tmp_path: Path) -> None:
    world = World()
    world.destination(DEST)
    world.apply(payload("null", "2024/true", {"cm.yaml": config_map("1e3", value="08544")},
                        pipeline="1e3"))
    folder = f"{RES}/2024/null"
    assert yaml.safe_load(world.read(f"{RES}/kustomization.yaml"))["resources"] == ["2024"]
    assert yaml.safe_load(world.read(f"{folder}/kustomization.yaml"))["resources"] == [
        layout.shard("true")]
    built = build_all(world.tree, tmp_path)
    (doc,) = built[RES]
    assert doc["metadata"] == {"name": "1e3", "namespace": "2024"}
    assert doc["data"] == {"value": "08544"}


def test_a_bundles_own_trailers_follow_its_group_also_when_placed_later() -> None:
    world = World()
    body = {**payload("p1", "team-a/one", {"cm.yaml": config_map("x")}, selectors={"env": "dev"}),
            "trailers": {"Change-Request": "CHG-1042", "Correlation-Id": "run-7"}}
    world.apply(body)  # pending: no destination yet
    plan = world.destination("dev", {"env": "dev"})
    lines = plan.message.strip().splitlines()
    digest = lines.index(f"Statewriter-Bundle-Digest: {parse_bundle(body).digest}")
    assert lines[digest + 1:digest + 3] == ["Change-Request: CHG-1042", "Correlation-Id: run-7"]
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=plan.message,
                            capture_output=True, text=True, check=True).stdout
    assert "Change-Request: CHG-1042\n" in parsed
    again = world.apply({**body, "status": {"phase": "Ready"}})
    assert "Correlation-Id: run-7" in again.message
    assert_reloads(world)
