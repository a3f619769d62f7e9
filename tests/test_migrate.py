"""Earlier layouts to today's (docs/reference.md section 2 "Upgrades"): a store written by the last
layout-1 statewriter (tests/fixtures/v1-store.fi) or the last layout-2 one (v2-store.fi) is
migrated at start-up in one commit, and every invariant holds after it, checked by real git,
kubectl and statewriter verify."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.http.answers import answer
from gitops import layout, planner
from gitops.bundle import parse_bundle
from gitops.commitmsg import parse_trailers
from gitops.errors import StoreUnavailable
from gitops.index import Index, ObjectKey, encode_owner
from gitops.owner import Owner
from gitops.planner.migrate import _layout1_object_path, _Layout1Loader
from gitops.store import EmbeddedStore, RemoteStore
from gitops.store.base import Author
from gitops.store.objects import Repository
from gitops.tree import DictTree
from gitops.verify import verify_tree
from gitops.writer import Writer
from gitops.yamldocs import load_documents
from tests.fixtures import eck
from tests.procs import git, layout_store, verify_clone
from tests.support import KUBECTL, materialise, without_invariant_9

OWNERS = ".statewriter/owners"


def files_of(repo: Path, ref: str = "main") -> dict[str, bytes]:
    with Repository(repo, "main") as store:
        tip = store.read_ref(f"refs/heads/{ref}")
        assert tip is not None
        return dict(store.tree(tip).files(""))


def log(repo: Path) -> list[str]:
    return git(f"--git-dir={repo}", "log", "--format=%H", "main").split()


@pytest.fixture(params=[1, 2], ids=["layout-1", "layout-2"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Each fixture store: the tests taking it hold for a migration from either layout."""
    return layout_store(tmp_path / "state.git", request.param)


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    return layout_store(tmp_path / "state.git", 1)


@pytest.fixture
def v2_store(tmp_path: Path) -> Path:
    return layout_store(tmp_path / "state.git", 2)


def test_start_up_migrates_in_one_commit_and_every_invariant_holds(store: Path, tmp_path: Path) -> None:
    before = files_of(store)
    old_index = Index.load(DictTree(before))
    commits = log(store)

    Writer(EmbeddedStore(store)).close()

    after = log(store)
    assert after[1:] == commits  # one commit on top
    message = git(f"--git-dir={store}", "log", "-1", "--format=%B", "main")
    trailers = parse_trailers(message)
    assert trailers["Statewriter-Action"] == ["migrate"]
    assert trailers["Statewriter-Destination"] == ["worker-1", "worker-2"]
    assert message.startswith(f"migrate the state store to layout {layout.VERSION}\n")
    files = files_of(store)
    assert files[layout.LAYOUT_RECORD] == layout.layout_record()
    # a real checkout, every invariant (kustomize builds included), on the clone
    verified = verify_clone(str(store), tmp_path)
    assert without_invariant_9(verified.stdout.splitlines()) == [], verified.stdout + verified.stderr
    # the same owners hold the same objects in the same sections
    new_index = Index.load(DictTree(files))
    assert _holdings(new_index) == _holdings(old_index)
    assert dict(new_index.destinations.items()) == dict(old_index.destinations.items())


def _holdings(index: Index) -> dict[ObjectKey, dict[Owner, str]]:
    return {key: {owner: held.section for owner, held in holders.items()}
            for key, holders in index.objects.items()}


def test_every_object_keeps_its_values(v1_store: Path) -> None:
    before = files_of(v1_store)
    tree = DictTree(before)
    plan = planner.plan_migrate(Index.load(tree), tree)
    after = {**before, **{p: c for p, c in plan.changes.items() if c is not None}}
    index = Index.load(tree)
    for key, holders in index.objects.items():
        destination = index.destinations.get(key.destination)
        assert destination is not None
        old_path = _layout1_object_path(destination, holders.section, key.identity, holders)
        new_path = layout.object_path(destination, holders.section, key.identity, holders)
        # layout 1 read its own files back as YAML 1.1: what it meant, today's must say
        old = yaml.load(before[old_path], Loader=_Layout1Loader)
        (new,) = load_documents(after[new_path].decode())
        assert new == old, key


def test_the_values_layout_1_wrote_ambiguously_now_read_back_as_strings(v1_store: Path) -> None:
    Writer(EmbeddedStore(v1_store)).close()
    (path,) = [p for p in files_of(v1_store) if p.endswith("_ConfigMap_values.yaml")]
    doc = yaml.safe_load(files_of(v1_store)[path])
    assert doc["metadata"]["namespace"] == "2024"
    assert doc["data"] == {"zip": "08544", "exponent": "1e3", "octal": "0o17", "big": "12e7",
                           "half": "+.5", "answer": "y", "on": "yes", "nothing": "null"}
    # Go's YAML reader (the API server's) sees the same strings
    shown = subprocess.run(["kubectl", "label", "--local", "-f", "-", "probe-", "-o", "json"],
                           input=files_of(v1_store)[path], capture_output=True, check=True)
    assert json.loads(shown.stdout)["data"] == doc["data"]


def fixture_era_bundle(name: str, **extra: Any) -> dict[str, object]:
    """The ECK example as the fixture stores' makers sent it: each CRD served only v1 (today's
    serve the versions ECK's own do, and their Beats are of v1beta1)."""
    bundle = eck.request_bundle(name, **extra)
    files: dict[str, str] = dict(bundle["files"])  # type: ignore[call-overload]
    files["elastic-crds.yaml"] = re.sub(r"(?m)^  - name: v1\w+$", "  - name: v1",
                                        files["elastic-crds.yaml"])
    return {**bundle, "files": files}


def test_posting_the_same_bundles_again_after_migration_changes_nothing(store: Path) -> None:
    writer = Writer(EmbeddedStore(store))
    try:
        tip = log(store)[0]
        for name in ("example", "second-request"):
            bundle = parse_bundle(fixture_era_bundle(
                name, destinationSelectors={"environment": "dev"}))
            status, body = answer(writer.submit(functools.partial(
                planner.plan_apply, bundle=bundle, actor="tester")).result(timeout=60))
            assert (status, body["changed"]) == (200, False)
        assert log(store)[0] == tip
        # a changed bundle rewrites its own objects only: the shared CRDs were migrated to
        # exactly what today's rendering writes
        bundle = parse_bundle(fixture_era_bundle(
            "example", destinationSelectors={"environment": "dev"}, status={"phase": "x"}))
        status, body = answer(writer.submit(functools.partial(
            planner.plan_apply, bundle=bundle, actor="tester")).result(timeout=60))
        assert status == 200 and not body["files"]["added"] and not body["files"]["removed"]
        assert all(p.startswith(layout.STATE) for p in body["files"]["changed"]), body["files"]
        assert "replaced" not in body
    finally:
        writer.close()


def test_a_migrated_store_is_not_migrated_again(store: Path) -> None:
    Writer(EmbeddedStore(store)).close()
    tip = log(store)[0]
    Writer(EmbeddedStore(store)).close()
    assert log(store)[0] == tip


def test_two_replicas_starting_together_migrate_once(store: Path, tmp_path: Path) -> None:
    """Two replicas (each its own cache of one remote) start on an older layout's remote at once:
    one migration commit lands, the other replica finds it (compare-and-swap) and loads it."""
    commits = log(store)
    writers: list[Writer] = []
    errors: list[BaseException] = []

    def start(name: str) -> None:
        try:
            writers.append(Writer(RemoteStore(store.as_uri(), tmp_path / name)))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not errors and len(writers) == 2
        assert log(store)[1:] == commits
        assert {w.snapshot()[0] for w in writers} == {log(store)[0]}
    finally:
        for writer in writers:
            writer.close()


def test_a_remote_in_an_older_layout_is_migrated_by_push(store: Path, tmp_path: Path) -> None:
    Writer(RemoteStore(store.as_uri(), tmp_path / "data")).close()
    message = git(f"--git-dir={store}", "log", "-1", "--format=%B", "main")
    assert parse_trailers(message)["Statewriter-Action"] == ["migrate"]
    assert without_invariant_9(verify_tree(DictTree(files_of(store)), kustomize=True)) == []


def test_a_request_the_layout_cannot_hold_is_removed_and_named(v1_store: Path) -> None:
    files = files_of(v1_store)
    # what layout 1 let in: a request named kustomization.yaml, with its record and object
    owner = Owner("redis", "default", "kustomization.yaml", "default")
    index = Index.load(DictTree(files))
    (cache,) = [r for r in index.request_owners("redis", "default", "sessions")]
    record = cache.with_(owner=owner)
    files[f"{OWNERS}/redis/default/kustomization.yaml/default.json"] = encode_owner(record)
    tree = DictTree(files)

    plan = planner.plan_migrate(Index.load(tree), tree)

    assert "Removed (the layout cannot hold these request names):" in plan.message
    assert "redis default/kustomization.yaml pipeline default" in plan.message
    after = {**files}
    for path, content in plan.changes.items():
        if content is None:
            after.pop(path)
        else:
            after[path] = content
    assert not any("kustomization.yaml/" in path for path in after)
    assert without_invariant_9(verify_tree(DictTree(after), kustomize=True)) == []


def test_a_store_of_a_newer_layout_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "state.git"
    store = EmbeddedStore(repo)
    newer = layout.VERSION + 1
    record = f'{{"version": {newer}}}\n'.encode()
    commit = store.commit(None, {layout.LAYOUT_RECORD: record}, "newer", Author())
    assert store.publish(None, commit)
    store.close()
    with pytest.raises(StoreUnavailable, match=f"layout {newer}"):
        Writer(EmbeddedStore(repo))


# -- layout 2 to 3: dependencies fanned out by API group -----------------------------------------


def _outside_dependencies(files: dict[str, bytes]) -> dict[str, bytes]:
    return {p: c for p, c in files.items()
            if "/dependencies/" not in p and p != layout.LAYOUT_RECORD}


def _dependency_objects(files: dict[str, bytes]) -> dict[str, bytes]:
    return {p: c for p, c in files.items()
            if "/dependencies/" in p and not p.endswith("/" + layout.KUSTOMIZATION)}


def test_layout_2_moves_each_dependency_into_its_group_folder_and_nothing_else(
    v2_store: Path,
) -> None:
    before = files_of(v2_store)
    Writer(EmbeddedStore(v2_store)).close()
    after = files_of(v2_store)

    message = git(f"--git-dir={v2_store}", "log", "-1", "--format=%B", "main")
    assert "Layout 2 to 3: dependencies in a folder per API group" in message
    # records, stored documents and resources are layout 3's already
    assert _outside_dependencies(after) == _outside_dependencies(before)
    # every dependency one folder down, byte for byte
    old, new = _dependency_objects(before), _dependency_objects(after)
    assert len(new) == len(old)
    for path, content in new.items():
        folder, file = path.rsplit("/", 2)[0], path.rpartition("/")[2]
        assert old[f"{folder}/{file}"] == content, path
    cluster = "worker-1/dependencies/_cluster"
    for path in [
        f"{cluster}/elasticsearch.k8s.elastic.co/"
        "CustomResourceDefinition.apiextensions.k8s.io_elasticsearches.elasticsearch.k8s.elastic.co.yaml",
        f"{cluster}/tenancy.example.com/Tenant.tenancy.example.com_acme.yaml",
        f"{cluster}/_kustomization.yaml/Odd.kustomization.yaml_one.yaml",
        f"{cluster}/_core/Namespace_elastic-system.yaml",
        f"{cluster}/scheduling.k8s.io/PriorityClass.scheduling.k8s.io_platform-high.yaml",
        "worker-1/dependencies/elastic-system/apps/StatefulSet.apps_elastic-operator.yaml",
        "worker-1/dependencies/team-a/networking.k8s.io/NetworkPolicy.networking.k8s.io_redis-allow.yaml",
        "clusters/worker-2/dependencies/platform-system/_core/ConfigMap_platform-settings.yaml",
    ]:
        assert path in new, path
    (long,) = [p for p in new if p.startswith(cluster) and ".apiextensions.k8s.io_ppp" in p]
    assert long.split("/")[-2] == "g" * 60 + ".example.com"  # the group of the shortened name
    assert yaml.safe_load(after[f"{cluster}/{layout.KUSTOMIZATION}"])["resources"] == [
        "_core", "_kustomization.yaml", "agent.k8s.elastic.co", "beat.k8s.elastic.co",
        "elasticsearch.k8s.elastic.co", "g" * 60 + ".example.com", "kibana.k8s.elastic.co",
        "queue.example.com", "rbac.authorization.k8s.io", "scheduling.k8s.io",
        "tenancy.example.com"]


def _built(folder: Path) -> list[str]:
    """The documents `kubectl kustomize folder` prints, as text, sorted."""
    assert KUBECTL, "kubectl is needed for these tests"
    done = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {folder}: {done.stderr}"
    return sorted(done.stdout.split("\n---\n"))


def test_layout_2_migration_builds_the_same_objects_byte_for_byte(
    v2_store: Path, tmp_path: Path,
) -> None:
    before = files_of(v2_store)
    Writer(EmbeddedStore(v2_store)).close()
    after = files_of(v2_store)
    materialise(DictTree(before), tmp_path / "before")
    materialise(DictTree(after), tmp_path / "after")
    destinations = list(Index.load(DictTree(after)).destinations.values())
    assert len(destinations) == 2
    for destination in destinations:
        for section in layout.SECTIONS:
            folder = destination.section(section)
            built = _built(tmp_path / "before" / folder)
            assert len(built) > 1, folder
            assert _built(tmp_path / "after" / folder) == built, folder
