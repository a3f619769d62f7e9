"""Isolation by namespace (docs/reference.md section 2, invariant 10; issue 20): a destination with
`isolation: namespace` gets one Flux Kustomization per namespace of its resources, applied by
its resources Kustomization. The judges are real: every child is built with `kubectl
kustomize` and each resource identity is found in exactly one child's build; the children are
checked against Flux's own CRD; a request in one namespace never changes another namespace's
child, whatever the order of writes (hypothesis); and the API takes and refuses the fields
through the real service."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops import layout
from gitops.destination import Destination
from gitops.errors import Conflict, InvalidBundle
from gitops.flux import child_kustomization, child_name, flux_object_identities, is_child_name
from gitops.index import Index
from gitops.isolation import FLUX_FOLDER
from gitops.planner import Plan, Policy, plan_put_destination
from gitops.secrets import Sealer
from gitops.validate.fluxcrd import kustomization_findings
from gitops.verify import verify_tree
from tests.procs import Server, running_server
from tests.support import CORPUS, World, config_map, kustomize, materialise, payload

W = "w1"
RESOURCES = f"{W}/resources"
SELECT = {"env": "dev"}
FLUX_CRD = CORPUS / "flux-install.yaml"


def isolated_world(**fields: Any) -> World:
    world = World()
    world.run(plan_put_destination(world.index, world.tree, W, SELECT, None, "tester",
                                   world.policy, isolation="namespace", **fields))
    return world


def request(world: World, ref: str, files: dict[str, str], promise: str = "redis") -> Plan:
    return world.apply(payload(promise, ref, files, selectors=SELECT))


def own_files(name: str, namespace: str, values: int = 1) -> dict[str, str]:
    return {f"{name}-{i}.yaml": config_map(f"{name}-{i}", namespace) for i in range(values)}


def children_of(world: World) -> dict[str, dict[str, Any]]:
    """The child Kustomizations in the tree, by namespace (from their spec.path)."""
    found = {}
    for path, data in world.tree.files(f"{RESOURCES}/{FLUX_FOLDER}"):
        if path.endswith("/" + layout.KUSTOMIZATION):
            continue
        doc = yaml.safe_load(data)
        found[doc["spec"]["path"].rpartition("/")[2]] = doc
    return found


def identity(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = doc["metadata"]
    return (doc["apiVersion"].rpartition("/")[0], doc["kind"], meta.get("namespace", ""),
            meta["name"])


def resource_identities(world: World) -> set[tuple[str, str, str, str]]:
    return {(i.group, i.kind, i.namespace, i.name) for key, holders in world.index.objects.items()
            if key.destination == W for i in [key.identity]
            if holders.section == layout.RESOURCES}


def assert_isolated(world: World, root: Path) -> None:
    """Invariant 10 judged by kubectl: the root builds to the children only, each child
    builds on its own to objects of its namespace, and every resource identity is in exactly
    one child's build; verify (with its own builds) agrees."""
    materialise(world.tree, root)
    built_root = kustomize(root / RESOURCES)
    children = children_of(world)
    assert sorted(identity(d) for d in built_root) == sorted(
        ("kustomize.toolkit.fluxcd.io", "Kustomization", "flux-system", d["metadata"]["name"])
        for d in children.values())
    seen: dict[tuple[str, str, str, str], str] = {}
    for namespace, child in children.items():
        assert child["spec"]["path"] == f"./{RESOURCES}/{namespace}"
        for doc in kustomize(root / RESOURCES / namespace):
            key = identity(doc)
            assert key[2] == namespace, (key, namespace)
            assert key not in seen, f"{key} in {namespace} and {seen[key]}"
            seen[key] = namespace
    assert set(seen) == resource_identities(world)
    assert verify_tree(world.tree, kustomize=True) == []


# -- the layout -------------------------------------------------------------------------------


def test_a_new_isolated_destination_has_an_empty_list_of_children(tmp_path: Path) -> None:
    world = isolated_world()
    assert world.read(f"{RESOURCES}/kustomization.yaml") == layout.kustomization([FLUX_FOLDER])
    assert world.read(f"{RESOURCES}/{FLUX_FOLDER}/kustomization.yaml") == layout.kustomization([])
    assert_isolated(world, tmp_path)


def test_each_namespace_is_a_child_and_every_resource_is_in_exactly_one(tmp_path: Path) -> None:
    world = isolated_world()
    request(world, "team-a/one", own_files("one", "team-a", 3))
    request(world, "team-a/two", own_files("two", "team-a"))
    request(world, "team-b/one", own_files("one", "team-b", 2))
    # an object outside its request's namespace, and one two namespaces' requests share
    request(world, "team-c/odd", {**own_files("odd", "team-c"),
                                  "x.yaml": config_map("from-c", "team-d"),
                                  "s.yaml": config_map("shared", "team-a")})
    request(world, "team-b/two", {"s.yaml": config_map("shared", "team-a")})
    assert set(children_of(world)) == {"team-a", "team-b", "team-c", "team-d"}
    assert world.read(f"{RESOURCES}/team-d/kustomization.yaml") == layout.kustomization(
        ["../_shared/team-d"])
    assert_isolated(world, tmp_path)


def test_children_come_with_their_namespace_first_object_and_go_with_its_last(tmp_path: Path) -> None:
    world = isolated_world()
    request(world, "team-a/one", own_files("one", "team-a"))
    assert set(children_of(world)) == {"team-a"}
    request(world, "team-b/one", own_files("one", "team-b"))
    assert set(children_of(world)) == {"team-a", "team-b"}
    world.delete("redis", "team-a/one")
    assert set(children_of(world)) == {"team-b"}
    assert not world.files(f"{RESOURCES}/team-a")
    world.delete("redis", "team-b/one")
    assert children_of(world) == {}
    assert world.read(f"{RESOURCES}/{FLUX_FOLDER}/kustomization.yaml") == layout.kustomization([])
    assert_isolated(world, tmp_path)


def test_a_child_is_what_flux_takes_and_points_at_the_destinations_own_objects() -> None:
    world = isolated_world(flux={"prefix": "platform", "namespace": "gitops"})
    request(world, "team-a/one", own_files("one", "team-a"))
    (child,) = children_of(world).values()
    assert child["metadata"] == {"name": "platform-ns-team-a", "namespace": "gitops",
                                 "labels": {"statewriter.dev/destination": W}}
    spec = child["spec"]
    assert spec["sourceRef"] == {"kind": "GitRepository", "name": "platform"}
    assert spec["dependsOn"] == [{"name": "platform-dependencies"}]
    assert spec["prune"] is True and "decryption" not in spec
    rendered = {(i.kind, i.name) for i in flux_object_identities("platform", "gitops")}
    assert ("GitRepository", "platform") in rendered
    assert ("Kustomization", "platform-dependencies") in rendered
    assert kustomization_findings(child) == []


def test_children_are_valid_against_fluxs_real_crd() -> None:
    """Against the CRD of Flux's own install (the corpus copy, not the packaged one), with
    encryption and without, short and long namespaces."""
    crds = [d for d in yaml.safe_load_all(FLUX_CRD.read_text()) if d
            and d["kind"] == "CustomResourceDefinition"
            and d["metadata"]["name"] == "kustomizations.kustomize.toolkit.fluxcd.io"]
    from gitops.validate.crds import custom_kind
    from gitops.validate.objects import Target, check_object

    kind = custom_kind(crds[0], "1.33")
    assert kind is not None
    target = Target("w", "1.33", frozenset(), None, "flux-system",
                    lambda g, k: kind if k == "Kustomization" else None, lambda _: True)
    for recipients in ((), ("age1abc",)):
        destination = Destination(W, {}, W, recipients=recipients, isolation="namespace")
        for namespace in ("a", "team-a", "n" * 63):
            doc = child_kustomization(destination, namespace, f"{RESOURCES}/{namespace}")
            assert check_object(doc, target) == []
            assert ("decryption" in doc["spec"]) == bool(recipients)


def test_an_encrypting_destination_decrypts_in_every_child_and_a_change_rewrites_them() -> None:
    world = isolated_world()
    request(world, "team-a/one", own_files("one", "team-a"))
    request(world, "team-b/one", own_files("one", "team-b"))
    assert all("decryption" not in c["spec"] for c in children_of(world).values())
    sealer = Sealer(str(pyrage.x25519.Identity.generate()))
    world.policy = Policy(secrets=sealer)
    world.run(plan_put_destination(world.index, world.tree, W, SELECT, None, "tester",
                                   world.policy, recipients=[sealer.recipient],
                                   isolation="namespace"))
    assert all(c["spec"]["decryption"]["secretRef"]["name"] == "kratix-workload-sops-age"
               for c in children_of(world).values())
    assert verify_tree(world.tree, kustomize=False) == []


# -- names ------------------------------------------------------------------------------------

NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
namespaces = st.from_regex(NAMESPACE, fullmatch=True).filter(lambda n: len(n) <= 63)
prefixes = st.from_regex(NAMESPACE, fullmatch=True).filter(lambda n: len(n) <= 40)


@given(prefixes, st.lists(namespaces, min_size=2, max_size=6, unique=True))
def test_child_names_are_labels_that_never_collide(prefix: str, names: list[str]) -> None:
    found = [child_name(prefix, n) for n in names]
    for name in found:
        assert len(name) <= 63 and NAMESPACE.fullmatch(name), name
        assert is_child_name(prefix, name)
        assert name not in {f"{prefix}-dependencies", f"{prefix}-resources"}
    assert len(set(found)) == len(found)


def test_long_namespaces_get_a_hashed_name() -> None:
    long = "a" * 63
    name = child_name("kratix-workload", long)
    assert len(name) == 63 and name.startswith("kratix-workload-nh-")
    assert child_name("kratix-workload", long[:-1] + "b") != name
    assert child_name("kratix-workload", "team-a") == "kratix-workload-ns-team-a"


# -- a namespace's writes stay in its child ---------------------------------------------------

operations = st.lists(st.tuples(st.sampled_from(["put", "delete"]),
                                st.sampled_from(["team-a", "team-b", "2024", "true"]),
                                st.sampled_from(["one", "two"]),
                                st.integers(min_value=0, max_value=3),
                                st.booleans()), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_a_request_never_changes_another_namespaces_child(ops: list[tuple[str, str, str, int, bool]]) -> None:
    """Requests come, change and go in four namespaces (two YAML reads as other types), some
    sharing an object with another request of their namespace: each write changes files of
    its own namespace's child only (and the list of children when its child comes or goes),
    and a shared object never leaves the child it was first placed in."""
    world = isolated_world()
    held: set[str] = set()
    for verb, namespace, name, values, share in ops:
        ref = f"{namespace}/{name}"
        if verb == "delete" and ref not in held:
            continue
        if verb == "put":
            held.add(ref)
            files = own_files(name, namespace, values)
            if share:
                files["common.yaml"] = config_map("common", namespace)
            plan = request(world, ref, files)
        else:
            held.discard(ref)
            plan = world.delete("redis", ref)
        own = (f"{RESOURCES}/{namespace}/", f"{RESOURCES}/{layout.SHARED}/{namespace}/",
               f"{RESOURCES}/{FLUX_FOLDER}/{child_name('kratix-workload', namespace)}.yaml",
               f"{RESOURCES}/{FLUX_FOLDER}/{layout.KUSTOMIZATION}",
               f"{RESOURCES}/{layout.SHARED}/{layout.KUSTOMIZATION}", layout.STATE + "/")
        for path in plan.changes:
            assert path.startswith(own), (ref, path)
        destination = world.index.destinations.get(W)
        assert destination is not None
        for key, holders in world.index.objects.items():
            path = layout.object_path(destination, holders.section, key.identity, holders)
            parts = path[len(RESOURCES) + 1:].split("/")
            child = parts[1] if parts[0] == layout.SHARED else parts[0]
            assert child == key.identity.namespace, path  # wherever its owners are
    assert verify_tree(world.tree, kustomize=False) == []


def test_a_request_in_one_namespace_leaves_every_other_child_byte_for_byte(tmp_path: Path) -> None:
    world = isolated_world()
    for namespace in ("team-a", "team-b", "team-c"):
        request(world, f"{namespace}/one", own_files("one", namespace, 2))
    before = {p: c for p, c in world.files(RESOURCES).items() if "/team-a/" not in p}
    request(world, "team-a/one", own_files("one", "team-a", 5))
    request(world, "team-a/two", own_files("two", "team-a", 1))
    world.delete("redis", "team-a/one")
    after = {p: c for p, c in world.files(RESOURCES).items() if "/team-a/" not in p}
    assert after == before
    assert_isolated(world, tmp_path)


# -- refusals -----------------------------------------------------------------------------------


def test_isolation_and_flux_change_only_while_the_destination_holds_no_requests() -> None:
    world = isolated_world()
    request(world, "team-a/one", own_files("one", "team-a"))
    for change in ({"isolation": "destination"}, {"isolation": "namespace",
                                                   "flux": {"prefix": "other"}}):
        with pytest.raises(Conflict, match="requests are scheduled"):
            plan_put_destination(world.index, world.tree, W, SELECT, None, "t", world.policy,
                                 **change)
    world.delete("redis", "team-a/one")
    world.run(plan_put_destination(world.index, world.tree, W, SELECT, None, "t", world.policy,
                                   isolation="destination"))
    assert not world.files(f"{RESOURCES}/{FLUX_FOLDER}")
    assert world.read(f"{RESOURCES}/kustomization.yaml") == layout.kustomization([])
    request(world, "team-a/one", own_files("one", "team-a"))
    assert verify_tree(world.tree, kustomize=False) == []


@pytest.mark.parametrize("fields, field", [
    ({"isolation": "cluster"}, "isolation"),
    ({"isolation": True}, "isolation"),
    ({"flux": {"prefix": "Upper"}}, "flux"),
    ({"flux": {"prefix": "a" * 41}}, "flux"),
    ({"flux": {"prefix": "-x"}}, "flux"),
    ({"flux": {"namespace": "flux_system"}}, "flux"),
    ({"flux": {"other": "x"}}, "flux"),
])
def test_bad_isolation_fields_are_refused(fields: dict[str, Any], field: str) -> None:
    world = World()
    with pytest.raises(InvalidBundle) as refused:
        plan_put_destination(world.index, world.tree, W, SELECT, None, "t", world.policy,
                             **fields)
    assert refused.value.detail["field"] == field


def test_an_object_named_as_a_child_or_the_destinations_flux_objects_is_refused() -> None:
    world = isolated_world(flux={"prefix": "platform", "namespace": "gitops"})
    kustomization = ("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
                     "metadata:\n  name: {name}\n  namespace: gitops\n"
                     "spec:\n  interval: 1m\n  path: ./x\n  prune: true\n"
                     "  sourceRef: {{kind: GitRepository, name: platform}}\n")
    for name in ("platform-ns-team-z", "platform-nh-0123", "platform-resources"):
        with pytest.raises(Conflict, match="own Flux objects"):
            request(world, "gitops/one", {"k.yaml": kustomization.format(name=name)})
    request(world, "gitops/one", {"k.yaml": kustomization.format(name="apps")})


def test_records_keep_their_bytes_and_read_back() -> None:
    world = isolated_world(flux={"prefix": "platform"})
    record = world.read(layout.destination_record_path(W))
    assert b'"isolation": "namespace"' in record and b'"prefix": "platform"' in record
    loaded = Index.load(world.tree).destinations.get(W)
    assert loaded is not None and loaded.isolated and loaded.flux_prefix == "platform"
    assert loaded.flux_namespace == "flux-system"
    plain = World()
    plain.destination(W, SELECT)
    assert b"isolation" not in plain.read(layout.destination_record_path(W))


def test_deleting_an_isolated_destination_leaves_nothing() -> None:
    world = isolated_world()
    request(world, "team-a/one", own_files("one", "team-a"))
    world.delete("redis", "team-a/one")
    world.delete_destination(W)
    assert not world.files(W)


# -- verify ---------------------------------------------------------------------------------------


def tampered(world: World, changes: dict[str, bytes | None]) -> list[str]:
    from gitops.tree import DictTree

    files = world.files()
    for path, content in changes.items():
        if content is None:
            files.pop(path)
        else:
            files[path] = content
    return verify_tree(DictTree(files), kustomize=False)


def test_verify_reports_each_way_invariant_10_can_break() -> None:
    world = isolated_world()
    request(world, "team-a/one", own_files("one", "team-a"))
    request(world, "team-b/one", own_files("one", "team-b"))
    flux = f"{RESOURCES}/{FLUX_FOLDER}"
    child_a = f"{flux}/kratix-workload-ns-team-a.yaml"
    assert tampered(world, {}) == []
    # a child missing, one that holds nothing, one edited
    assert any("missing (namespace team-a holds resources)" in f
               for f in tampered(world, {child_a: None}))
    assert any("not the Kustomization of a namespace" in f for f in tampered(world, {
        f"{flux}/kratix-workload-ns-nobody.yaml": world.read(child_a)}))
    edited = world.read(child_a).replace(b"prune: true", b"prune: false")
    assert any("not the Kustomization statewriter writes" in f
               for f in tampered(world, {child_a: edited}))
    # the root listing a namespace's folder
    root = layout.kustomization([FLUX_FOLDER, "team-a"])
    assert any("list only _flux" in f for f in tampered(world, {f"{RESOURCES}/kustomization.yaml": root}))
    # a resource in another namespace's child
    (path,) = [p for p in world.files(f"{RESOURCES}/team-a") if p.endswith("ConfigMap_one-0.yaml")]
    moved = world.read(path).replace(b"namespace: team-a", b"namespace: team-b")
    assert any("in the Kustomization of team-a" in f for f in tampered(world, {path: moved}))


# -- through the real service ----------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("isolation") / "data",
                        ready_path="/healthz") as server:
        yield server


def test_the_api_takes_the_fields_renders_them_and_refuses_changes(service: Server) -> None:
    with service.client() as http:
        answer = http.put("/v1/destinations/iso", json={
            "labels": {"env": "iso"}, "isolation": "namespace",
            "flux": {"prefix": "platform", "namespace": "gitops"}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["isolation"] == "namespace"
        assert answer.json()["flux"] == {"prefix": "platform", "namespace": "gitops"}
        assert http.get("/v1/destinations/iso").json()["flux"]["prefix"] == "platform"
        flux = list(yaml.safe_load_all(http.get("/v1/destinations/iso/flux").text))
        assert {(d["kind"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in flux} >= {
            ("GitRepository", "platform", "gitops"),
            ("Kustomization", "platform-resources", "gitops")}
        refused = http.get("/v1/destinations/iso/flux", params={"prefix": "other"})
        assert refused.status_code == 422 and refused.json()["field"] == "prefix"
        bad = http.put("/v1/destinations/iso", json={"labels": {}, "isolation": "pods"})
        assert bad.status_code == 422 and bad.json()["field"] == "isolation"
        posted = http.post("/v1/bundles", json=payload(
            "redis", "team-a/one", own_files("one", "team-a"), selectors={"env": "iso"}))
        assert posted.status_code == 200, posted.text
        for change in ({"isolation": "destination"}, {"flux": {"prefix": "platform"}}):
            changed = http.put("/v1/destinations/iso", json={"labels": {"env": "iso"}, **change})
            assert changed.status_code == 409, changed.text
            assert changed.json()["error"] == "Conflict"
        kept = http.put("/v1/destinations/iso", json={"labels": {"env": "iso", "more": "x"}})
        assert kept.status_code == 200, kept.text
        assert kept.json()["isolation"] == "namespace"
        assert kept.json()["flux"] == {"prefix": "platform", "namespace": "gitops"}
