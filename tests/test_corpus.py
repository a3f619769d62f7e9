"""Real manifests (tests/fixtures/corpus/kratix) through the planner, built by kustomize."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops import layout
from gitops.errors import InvalidBundle
from gitops.owner import Owner
from gitops.tree import Tree
from gitops.verify import verify_tree
from tests.support import CORPUS, World, assert_reloads, build_all, check_tree, payload

DESTINATIONS = ("worker-1", "worker-2", "worker-3")
NGINX_REQUESTS = ("default/ingress-a", "default/ingress-b", "default/ingress-c")


def corpus_files(*names: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for name in names:
        path = CORPUS / name
        for file in sorted(path.iterdir()) if path.is_dir() else [path]:
            files[file.relative_to(CORPUS).as_posix()] = file.read_text()
    return files


def corpus_objects(*names: str) -> list[dict[str, Any]]:
    return [d for text in corpus_files(*names).values() for d in yaml.safe_load_all(text) if d]


def key(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = doc["metadata"]
    return (doc["apiVersion"].rpartition("/")[0], doc["kind"], meta.get("namespace", ""),
            meta["name"])


def without_prune_annotation(doc: dict[str, Any]) -> dict[str, Any]:
    meta = dict(doc["metadata"])
    annotations = {k: v for k, v in (meta.pop("annotations", None) or {}).items()
                   if k != "kustomize.toolkit.fluxcd.io/prune"}
    if annotations:
        meta["annotations"] = annotations
    return {**doc, "metadata": meta}


def placed_keys(world: World, prefix: str) -> Counter[tuple[str, str, str, str]]:
    return Counter(key(d) for d in world.objects(prefix).values())


@pytest.fixture
def world() -> World:
    world = World()
    for name in DESTINATIONS:
        world.destination(name, {"fleet": "workers"})
    return world


def flux_install(world: World) -> None:
    plan = world.apply(payload("flux", files=corpus_files("flux-install.yaml"),
                               selectors={"fleet": "workers"}))
    assert list(plan.result.destinations) == list(DESTINATIONS)


def nginx_requests(world: World) -> None:
    for request in NGINX_REQUESTS:
        plan = world.apply(payload("nginx-ingress", request, corpus_files("nginx-ingress-operator"),
                                   selectors={"fleet": "workers"}))
        assert plan.result.state == "Scheduled"


def test_flux_install_as_promise_level_bundle_lands_once_in_every_destination(
    world: World, tmp_path: Path
) -> None:
    flux_install(world)
    expected = Counter(key(d) for d in corpus_objects("flux-install.yaml"))
    assert len(expected) == 31 and set(expected.values()) == {1}
    for name in DESTINATIONS:
        assert placed_keys(world, f"{name}/dependencies") == expected
        assert not world.objects(f"{name}/resources")
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)

    built = build_all(world.tree, tmp_path)
    originals = {key(d): d for d in corpus_objects("flux-install.yaml")}
    for name in DESTINATIONS:
        objects = built[f"{name}/dependencies"]
        assert Counter(key(d) for d in objects) == expected
        for doc in objects:
            assert without_prune_annotation(doc) == originals[key(doc)]
        assert built[f"{name}/resources"] == []

    world.restart()
    world.destination("worker-4", {"fleet": "workers"})  # registered later: gets it too
    assert placed_keys(world, "worker-4/dependencies") == expected


def test_nginx_operator_output_by_three_requests_is_stored_once(tmp_path: Path) -> None:
    world = World()
    world.destination("worker-1", {"fleet": "workers"})
    nginx_requests(world)

    objects = corpus_objects("nginx-ingress-operator")
    expected = Counter(key(d) for d in objects)
    assert len(expected) == len(objects) == 21  # 12 CRDs and a 9-object Helm rendering
    assert placed_keys(world, "worker-1") == expected  # each once, across both sections
    namespaced = {k for k in expected if k[2]}
    assert {k for k in placed_keys(world, "worker-1/resources/_shared/default")} == namespaced
    assert not world.objects("worker-1/resources/default")  # no owner folder holds a copy
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    built = build_all(world.tree, tmp_path / "three")
    assert Counter(key(d) for d in built["worker-1/resources"]) == Counter(namespaced)
    assert Counter(key(d) for d in built["worker-1/dependencies"]) == Counter(
        k for k in expected if not k[2])

    # two let go: the last one's folder holds the operator, still once
    world.delete("nginx-ingress", NGINX_REQUESTS[0])
    world.delete("nginx-ingress", NGINX_REQUESTS[1])
    assert placed_keys(world, "worker-1") == expected
    assert {k for k in placed_keys(world, "worker-1/resources/" + layout.owner_folder(
        Owner("nginx-ingress", "default", "ingress-c", "default")))} \
        == namespaced
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    build_all(world.tree, tmp_path / "one")


def test_large_redis_crd_round_trips(world: World, tmp_path: Path) -> None:
    # first pending (kept under .statewriter/bundles), then placed when its destination appears
    body = payload("redis", "team-a/cache", corpus_files("redis-operator.yaml"),
                   selectors={"redis": "yes"})
    assert world.apply(body).result.state == "Pending"
    world.restart()
    world.destination("redis-host", {"redis": "yes"})
    (original,) = corpus_objects("redis-operator.yaml")
    (path,) = world.objects("redis-host")
    name = original["metadata"]["name"]
    group = name.partition(".")[2]  # a CRD sits in the folder of the group it defines
    assert path == (f"redis-host/dependencies/_cluster/{group}/"
                    f"CustomResourceDefinition.apiextensions.k8s.io_{name}.yaml")
    assert without_prune_annotation(world.doc(path)) == original
    assert world.doc(path)["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"] == \
        "disabled"
    assert not world.apply(body).changed
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)
    (built,) = build_all(world.tree, tmp_path)["redis-host/dependencies"]
    assert without_prune_annotation(built) == original


def all_of_the_corpus(world: World) -> Tree:
    flux_install(world)
    nginx_requests(world)
    world.apply(payload("redis", files=corpus_files("redis-operator.yaml")))
    # Kratix's own worker sync: its Kustomizations carry the names of the destination's own
    # (GET /flux renders them), so the bundle is refused; its GitRepositories alone are fine.
    sources = corpus_files("kratix-worker-flux-sources.yaml")
    with pytest.raises(InvalidBundle) as refused:
        world.apply(payload("gitops", "team-a/sources", sources, selectors={"fleet": "workers"}))
    assert refused.value.detail["document"] == 1  # Kustomization kratix-workload-resources
    assert "own Flux objects" in refused.value.message
    (text,) = sources.values()
    repositories = "---\n".join(yaml.safe_dump(d) for d in yaml.safe_load_all(text)
                                if d and d["kind"] == "GitRepository")
    world.apply(payload("gitops", "team-a/sources", {"sources.yaml": repositories},
                        selectors={"fleet": "workers"}))
    return world.tree


def test_whole_corpus_in_one_repository_builds(world: World, tmp_path: Path) -> None:
    tree = all_of_the_corpus(world)
    check_tree(tree, exact_blobs=True)
    assert_reloads(world)
    built = build_all(tree, tmp_path)
    for name in DESTINATIONS:
        assert len(built[f"{name}/dependencies"]) >= 32  # flux and redis everywhere


def test_corpus_trees_pass_statewriter_verify(world: World, tmp_path: Path) -> None:
    tree = all_of_the_corpus(world)
    assert verify_tree(tree, kustomize=True) == []
    for request in NGINX_REQUESTS:
        world.delete("nginx-ingress", request)
    assert verify_tree(world.tree, kustomize=True) == []
