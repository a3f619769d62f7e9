"""Rolling a request back to an earlier commit (issue 21), planned against in-memory trees:
the tree a commit had is a `World`'s tree as it stood then. Each rollback is checked against
what the commit held: the request's files byte for byte when nothing else changed, its
records, the commit's trailers, and the invariants (`check_tree`) after it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pyrage
import pytest

from gitops import layout
from gitops.commitmsg import parse_trailers, trailer_pairs
from gitops.errors import Conflict, InvalidBundle, InvalidObject, InvalidQuery, NotFound
from gitops.index import Index
from gitops.owner import Owner
from gitops.planner import Plan, Policy, plan_delete, plan_put_destination, plan_rollback
from gitops.planner.destinations import Cluster
from gitops.planner.results import PENDING, SCHEDULED, RolledBack
from gitops.secrets import Sealer, is_sealed, sops
from gitops.tree import DictTree, Tree
from gitops.verify import verify_tree
from gitops.yamldocs import dump_in_order
from tests.support import (
    World,
    assert_reloads,
    check_tree,
    config_map,
    crd,
    deployment,
    manifest,
    payload,
)

PROMISE = "shop"
REQUEST = "team-a/cart"
COMMIT = "c0ffee" + "0" * 34  # what a commit id looks like: the planner only names it
DEV = {"env": "dev"}


def rollback(world: World, old: Tree, request: str = REQUEST, promise: str = PROMISE,
             commit: str = COMMIT) -> Plan:
    namespace, _, name = request.partition("/")
    return world.run(plan_rollback(world.index, world.tree, old, promise, namespace, name, commit,
                                   "operator", world.policy))


def post(world: World, files: dict[str, str], request: str = REQUEST, promise: str = PROMISE,
         pipeline: str | None = None, selectors: dict[str, str] | None = DEV,
         generation: int | None = None, **extra: Any) -> Plan:
    body = payload(promise, request, files, pipeline=pipeline, selectors=selectors,
                   generation=generation)
    plan = world.apply({**body, **extra})
    assert plan.changed
    return plan


def request_files(world: World, tree: Tree | None = None, request: str = REQUEST,
                  promise: str = PROMISE) -> dict[str, bytes]:
    """Every file of the request: its records, kept documents and its own object folders."""
    namespace, _, name = request.partition("/")
    files = dict((tree or world.tree).files(""))
    owners = f"{layout.OWNERS_DIR}/{promise}/{namespace}/{layout.shard(name)}/{name}/"
    bundles = f"{layout.BUNDLES_DIR}/{promise}/{namespace}/{layout.shard(name)}/{name}/"
    folder = f"/resources/{namespace}/{promise}/{layout.shard(name)}/{name}/"
    return {path: data for path, data in files.items()
            if path.startswith((owners, bundles)) or folder in path}


def without_serial(data: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(data)
    record.pop("serial")
    return record


def assert_same_tree_but_serials(now: Tree, then: Tree) -> None:
    """Byte for byte the tree `then` was, but for the serial in the owner records written."""
    now_files, then_files = dict(now.files("")), dict(then.files(""))
    assert sorted(now_files) == sorted(then_files)
    for path, data in then_files.items():
        if path.startswith(layout.OWNERS_DIR + "/"):
            assert without_serial(now_files[path]) == without_serial(data), path
        else:
            assert now_files[path] == data, path


def result_of(plan: Plan) -> RolledBack:
    assert isinstance(plan.result, RolledBack)
    return plan.result


V1 = {
    "cm.yaml": config_map("settings", value="one"),
    "web.yaml": deployment("web"),
    "crd.yaml": crd("shop.example.com", "Basket"),
    "ns.yaml": manifest("v1", "Namespace", "shop-system"),
    "op.yaml": manifest("v1", "ServiceAccount", "operator", "shop-system"),
}
V2 = {
    "cm.yaml": config_map("settings", value="two"),  # changed
    "extra.yaml": config_map("extra"),  # added
    "crd.yaml": crd("shop.example.com", "Basket", version="2"),  # a dependency changed
    "ns.yaml": manifest("v1", "Namespace", "shop-system"),
    "op.yaml": manifest("v1", "ServiceAccount", "operator", "shop-system"),
}  # web.yaml removed


@pytest.fixture
def world() -> World:
    world = World()
    world.destination("d1", DEV)
    return world


# -- what comes back --------------------------------------------------------------------------


def test_a_rollback_when_nothing_else_changed_gives_back_the_commits_tree(world: World) -> None:
    post(world, V1, status={"phase": "one"}, trailers={"Change-Request": "CHG-1"})
    then = world.tree
    post(world, V2, status={"phase": "two"}, trailers={"Change-Request": "CHG-2"})
    assert request_files(world) != request_files(world, then)

    plan = rollback(world, then)

    assert plan.changed
    assert_same_tree_but_serials(world.tree, then)  # files, kustomizations, records
    (record,) = world.index.request_owners(PROMISE, "team-a", "cart")
    assert record.status == {"phase": "one"} and record.trailers == (("Change-Request", "CHG-1"),)
    assert record.serial == 3  # a new write
    result = result_of(plan)
    assert (result.commit, result.state, result.destinations, result.removed) == (
        COMMIT, SCHEDULED, ("d1",), ())
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_the_commit_says_rollback_and_names_the_commit_and_the_request(world: World) -> None:
    v1 = post(world, V1, trailers={"Change-Request": "CHG-1"})
    then = world.tree
    post(world, V2)

    plan = rollback(world, then)

    assert plan.message.startswith(f"rollback {PROMISE} {REQUEST} to {COMMIT[:12]}\n")
    trailers = parse_trailers(plan.message)
    assert trailers["Statewriter-Action"] == ["rollback"]
    assert trailers["Statewriter-Rollback-To"] == [COMMIT]
    assert trailers["Statewriter-Promise"] == [PROMISE]
    assert trailers["Statewriter-Request"] == [REQUEST]
    assert trailers["Statewriter-Pipeline"] == ["default"]
    assert trailers["Statewriter-Destination"] == ["d1"]
    assert trailers["Statewriter-Actor"] == ["operator"]
    # the digest the bundle had then, and its own trailers
    assert trailers["Statewriter-Bundle-Digest"] == parse_trailers(v1.message)[
        "Statewriter-Bundle-Digest"]
    assert ("Change-Request", "CHG-1") in trailer_pairs(plan.message)


def test_changed_added_and_removed_objects_follow_the_commit(world: World) -> None:
    post(world, V1)
    then = world.tree
    post(world, V2)

    plan = rollback(world, then)

    folder = "d1/resources/team-a/shop/" + layout.shard("cart") + "/cart/default"
    assert f"{folder}/team-a_Deployment.apps_web.yaml" in plan.files.added  # removed in v2
    assert f"{folder}/team-a_ConfigMap_extra.yaml" in plan.files.removed  # added in v2
    assert f"{folder}/team-a_ConfigMap_settings.yaml" in plan.files.changed
    crd_path = ("d1/dependencies/_cluster/shop.example.com/"
                "CustomResourceDefinition.apiextensions.k8s.io_baskets.shop.example.com.yaml")
    assert crd_path in plan.files.changed
    assert world.read(crd_path) == then.read(crd_path)
    assert world.doc(f"{folder}/team-a_ConfigMap_settings.yaml")["data"] == {"value": "one"}


def test_rolling_back_to_what_is_there_changes_nothing(world: World) -> None:
    post(world, V1)
    plan = rollback(world, world.tree)
    assert not plan.changed and plan.message == ""
    assert result_of(plan).state == SCHEDULED

    then = world.tree
    post(world, V2)
    post(world, V1)  # posted again by hand: the same output, another serial
    assert not rollback(world, then).changed


def test_a_second_rollback_to_the_same_commit_changes_nothing(world: World) -> None:
    post(world, V1)
    then = world.tree
    post(world, V2)
    assert rollback(world, then).changed
    assert not rollback(world, then).changed


# -- pipelines --------------------------------------------------------------------------------


def test_a_pipeline_removed_since_comes_back(world: World) -> None:
    post(world, V1)
    post(world, {"jobs.yaml": config_map("jobs")}, pipeline="jobs")
    then = world.tree
    world.delete(PROMISE, REQUEST, "jobs")
    post(world, V2)

    plan = rollback(world, then)

    assert sorted(r.owner.pipeline for r in world.index.request_owners(
        PROMISE, "team-a", "cart")) == ["default", "jobs"]
    assert [a.owner.pipeline for a in result_of(plan).restored] == ["default", "jobs"]
    assert parse_trailers(plan.message)["Statewriter-Pipeline"] == ["default", "jobs"]
    assert_same_tree_but_serials(world.tree, then)
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_a_pipeline_added_since_goes_as_a_delete_of_it_would(world: World) -> None:
    post(world, V1)
    then = world.tree
    post(world, {"jobs.yaml": config_map("jobs")}, pipeline="jobs")
    post(world, V2)
    # what a delete of that pipeline would remove now (planned, not run)
    removed_by_a_delete = plan_delete(world.index, world.tree, PROMISE, "team-a", "cart", "jobs",
                                      "tester", world.policy)

    plan = rollback(world, then)

    result = result_of(plan)
    assert result.removed == (Owner(PROMISE, "team-a", "cart", "jobs"),)
    assert set(removed_by_a_delete.files.removed) <= set(plan.files.removed)
    assert parse_trailers(plan.message)["Statewriter-Pipeline"] == ["default", "jobs"]
    assert_same_tree_but_serials(world.tree, then)
    assert_reloads(world)


def test_a_deleted_request_comes_back(world: World) -> None:
    post(world, V1)
    then = world.tree
    world.delete(PROMISE, REQUEST)
    assert not world.index.request_owners(PROMISE, "team-a", "cart")

    plan = rollback(world, then)

    assert plan.changed and result_of(plan).destinations == ("d1",)
    assert_same_tree_but_serials(world.tree, then)


def test_a_request_without_output_at_the_commit_is_not_found(world: World) -> None:
    then = world.tree
    post(world, V1)
    with pytest.raises(NotFound, match=r"request team-a/cart of promise shop had no output at "
                                       r"c0ffee000000"):
        rollback(world, then)
    with pytest.raises(NotFound):
        rollback(world, world.tree, request="team-a/other")


def test_a_commit_of_an_older_layout_is_refused(world: World) -> None:
    post(world, V1)
    files = dict(world.tree.files(""))
    files[layout.LAYOUT_RECORD] = b'{"version": 2}\n'
    with pytest.raises(InvalidQuery, match="layout 2") as refused:
        rollback(world, DictTree(files))
    assert refused.value.detail == {"field": "commit"}


def test_names_are_checked_as_a_bundles_are(world: World) -> None:
    with pytest.raises(InvalidBundle):
        rollback(world, world.tree, request="Team_A/cart")


# -- placement --------------------------------------------------------------------------------


def test_a_request_that_moved_stays_where_it_is_now_with_the_commits_output(world: World) -> None:
    post(world, V1)
    then = world.tree
    world.delete(PROMISE, REQUEST)
    world.destination("d1", {"env": "old"})  # d1 no longer takes it
    world.destination("d2", DEV)
    post(world, V2)
    assert world.index.request_destination(PROMISE, "team-a", "cart") == "d2"

    plan = rollback(world, then)

    result = result_of(plan)
    assert (result.state, result.destinations, result.misplaced) == (SCHEDULED, ("d2",), False)
    # the same files as the commit had under d1, now under d2
    then_files = {p.removeprefix("d1/"): d for p, d in request_files(world, then).items()
                  if p.startswith("d1/")}
    now_files = {p.removeprefix("d2/"): d for p, d in request_files(world).items()
                 if p.startswith("d2/")}
    assert now_files == then_files
    assert not [p for p in request_files(world) if p.startswith("d1/")]
    check_tree(world.tree, exact_blobs=True)
    assert_reloads(world)


def test_selectors_come_back_and_a_request_placed_elsewhere_is_told_misplaced(world: World) -> None:
    world.destination("d2", {"env": "prod"})
    post(world, V1, selectors=DEV)
    then = world.tree
    world.delete(PROMISE, REQUEST)
    world.destination("d1", {"env": "old"})
    post(world, V2, selectors={"env": "prod"})  # placed at d2 now

    plan = rollback(world, then)

    (record,) = world.index.request_owners(PROMISE, "team-a", "cart")
    assert record.selectors == DEV and record.destinations == ("d2",)
    assert result_of(plan).misplaced is True


def test_a_pending_pipeline_comes_back_pending_with_the_documents_it_had(world: World) -> None:
    post(world, V1, selectors={"env": "prod"})  # no destination matches: kept, pending
    then = world.tree
    assert request_files(world, then) and all(
        not p.startswith("d1/") for p in request_files(world, then))
    world.destination("prod", {"env": "prod"})  # placed now
    post(world, V2, selectors={"env": "prod"})
    world.delete(PROMISE, REQUEST)
    world.delete_destination("prod")

    plan = rollback(world, then)

    assert result_of(plan).state == PENDING
    assert_same_tree_but_serials(world.tree, then)  # the kept documents, byte for byte
    check_tree(world.tree)
    assert_reloads(world)


def test_a_pending_pipeline_whose_destination_came_meanwhile_is_placed(world: World) -> None:
    post(world, V1, selectors={"env": "prod"})
    then = world.tree
    world.destination("prod", {"env": "prod"})
    post(world, V2, selectors={"env": "prod"})

    plan = rollback(world, then)

    result = result_of(plan)
    assert (result.state, result.destinations) == (SCHEDULED, ("prod",))
    (record,) = world.index.request_owners(PROMISE, "team-a", "cart")
    assert record.stored_documents == 0
    assert world.doc(next(p for p in request_files(world) if p.endswith("ConfigMap_settings.yaml"))
                     )["data"] == {"value": "one"}
    check_tree(world.tree)


# -- shared objects ---------------------------------------------------------------------------


def test_a_shared_dependency_goes_back_as_a_post_would_put_it_back(world: World) -> None:
    post(world, V1)
    post(world, V1, request="team-b/other")  # shares the CRD, namespace and operator
    then = world.tree
    post(world, V2)
    post(world, V2, request="team-b/other")

    plan = rollback(world, then)

    crd_path = ("d1/dependencies/_cluster/shop.example.com/"
                "CustomResourceDefinition.apiextensions.k8s.io_baskets.shop.example.com.yaml")
    assert world.read(crd_path) == then.read(crd_path)  # a promise's own CRD, replaced
    assert any("previously written by shop team-b/other" in line for line in plan.notes.replaced)
    check_tree(world.tree)
    assert_reloads(world)


def test_a_shared_dependency_of_a_newer_generation_stays(world: World) -> None:
    post(world, V1, generation=1)
    post(world, V1, request="team-b/other", generation=1)
    then = world.tree
    post(world, V2, generation=2)
    post(world, V2, request="team-b/other", generation=2)
    crd_path = ("d1/dependencies/_cluster/shop.example.com/"
                "CustomResourceDefinition.apiextensions.k8s.io_baskets.shop.example.com.yaml")
    newer = world.read(crd_path)

    plan = rollback(world, then)

    assert world.read(crd_path) == newer
    assert plan.notes.kept and "generation 2" in plan.notes.kept[0]
    folder = "d1/resources/team-a/shop/" + layout.shard("cart") + "/cart/default"
    assert world.doc(f"{folder}/team-a_ConfigMap_settings.yaml")["data"] == {"value": "one"}
    (record,) = world.index.request_owners(PROMISE, "team-a", "cart")
    assert record.generation == 1


def test_an_object_shared_with_another_request_then_comes_back_from_shared(world: World) -> None:
    shared = {"same.yaml": config_map("same", "team-a", value="x")}
    post(world, {**V1, **shared})
    post(world, shared, request="team-a/other")  # both hold it: under _shared/
    then = world.tree
    post(world, V2)  # no longer holds it: back in other's own folder
    assert not [p for p in world.files() if "/_shared/" in p]

    rollback(world, then)

    assert_same_tree_but_serials(world.tree, then)
    check_tree(world.tree, exact_blobs=True)


def test_a_destination_isolated_by_namespace_gets_its_files_and_kustomizations_back() -> None:
    world = World()
    world.run(plan_put_destination(world.index, world.tree, "d1", DEV, None, "tester",
                                   world.policy, isolation="namespace"))
    # an object outside the request's namespace sits with that namespace's shared ones
    post(world, {**V1, "away.yaml": config_map("away", "elsewhere")})
    then = world.tree
    assert [p for p in then.files("d1/resources/_shared/elsewhere")]
    post(world, V2)
    assert not [p for p in world.tree.files("d1/resources/_shared/elsewhere")]

    rollback(world, then)

    assert_same_tree_but_serials(world.tree, then)
    assert verify_tree(world.tree, kustomize=False) == []  # (check_tree knows no isolation)
    assert_reloads(world)


# -- refused as a post would be -----------------------------------------------------------------


def test_a_conflict_with_what_another_request_wrote_since_is_refused_unwritten(world: World) -> None:
    post(world, {**V1, "owned.yaml": config_map("owned", "team-a", value="mine")})
    then = world.tree
    post(world, V2)
    post(world, {"theirs.yaml": config_map("owned", "team-a", value="theirs")},
         request="team-a/thief", promise="other")
    before, index = world.tree, world.index

    with pytest.raises(Conflict, match="owned by another request") as refused:
        rollback(world, then)

    assert refused.value.detail["owners"] == (Owner("other", "team-a", "thief", "default"),)
    assert world.tree is before and world.index is index  # nothing was written


def test_an_object_the_destination_would_refuse_now_is_refused(world: World) -> None:
    post(world, {**V1, "elsewhere.yaml": config_map("cm", "unlisted")})
    then = world.tree
    post(world, V2)
    world.destination("d1", DEV, cluster=Cluster(namespaces=["team-a", "shop-system"]))

    with pytest.raises(InvalidObject) as refused:
        rollback(world, then)

    (finding,) = refused.value.detail["findings"]
    assert finding["object"] == "ConfigMap unlisted/cm" and "unlisted" in finding["reason"]
    assert finding["file"].endswith("unlisted_ConfigMap_cm.yaml")


# -- Secrets ----------------------------------------------------------------------------------


def secret(value: bytes) -> str:
    return manifest("v1", "Secret", "db", type="Opaque",
                    data={"password": base64.b64encode(value).decode()})


def test_a_secret_the_service_encrypted_comes_back_with_its_value() -> None:
    sealer = Sealer(str(pyrage.x25519.Identity.generate()))
    worker = str(pyrage.x25519.Identity.generate().to_public())
    world = World(Policy(secrets=sealer))
    world.run(plan_put_destination(world.index, world.tree, "d1", DEV, None, "tester",
                                   world.policy, recipients=[worker]))
    post(world, {**V1, "secret.yaml": secret(b"first")})
    then = world.tree
    path = next(p for p in request_files(world) if p.endswith("_Secret_db.yaml"))
    post(world, {**V2, "secret.yaml": secret(b"second")})

    plan = rollback(world, then)

    assert path in plan.files.changed
    content = world.read(path)
    assert is_sealed(content) and b"first" not in content
    assert sealer.open(content) == sealer.open(then.read(path) or b"")  # the value it had
    assert b"Zmlyc3Q" in sealer.open(content)  # base64 of "first"
    (record,) = world.index.request_owners(PROMISE, "team-a", "cart")
    (then_record,) = Index.load(then).request_owners(PROMISE, "team-a", "cart")
    assert record.digest == then_record.digest  # the keyed digest it had
    assert [h.sealed for h in record.objects["d1"] if h.sealed] == [
        h.sealed for h in then_record.objects["d1"] if h.sealed]
    check_tree(world.tree)
    assert_reloads(world)
    # nothing changed since: the committed ciphertext stays (no commit)
    assert not rollback(world, then).changed


def test_a_secret_unchanged_since_keeps_its_ciphertext() -> None:
    sealer = Sealer(str(pyrage.x25519.Identity.generate()))
    world = World(Policy(secrets=sealer))
    world.run(plan_put_destination(world.index, world.tree, "d1", DEV, None, "tester",
                                   world.policy,
                                   recipients=[str(pyrage.x25519.Identity.generate().to_public())]))
    post(world, {**V1, "secret.yaml": secret(b"same")})
    then = world.tree
    path = next(p for p in request_files(world) if p.endswith("_Secret_db.yaml"))
    post(world, {**V2, "secret.yaml": secret(b"same")})
    assert world.read(path) == then.read(path)

    plan = rollback(world, then)

    assert plan.changed and path not in plan.files.changed
    assert_same_tree_but_serials(world.tree, then)


def test_a_secret_its_pipeline_encrypted_comes_back_as_it_was_sent() -> None:
    sealer = Sealer(str(pyrage.x25519.Identity.generate()))
    worker = str(pyrage.x25519.Identity.generate().to_public())
    world = World(Policy(secrets=sealer))
    world.run(plan_put_destination(world.index, world.tree, "d1", DEV, None, "tester",
                                   world.policy, recipients=[worker]))

    def envelope(value: bytes) -> str:
        doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "own", "namespace": "team-a"},
               "type": "Opaque", "data": {"token": base64.b64encode(value).decode()}}
        return dump_in_order(sops.encrypt(doc, [worker])).decode()

    post(world, {**V1, "own.yaml": envelope(b"first")})
    then = world.tree
    path = next(p for p in request_files(world) if p.endswith("_Secret_own.yaml"))
    post(world, {**V2, "own.yaml": envelope(b"second")})

    plan = rollback(world, then)

    assert path in plan.files.changed
    assert world.read(path) == then.read(path)  # the envelope, byte for byte
    assert_same_tree_but_serials(world.tree, then)
    (record,) = world.index.request_owners(PROMISE, "team-a", "cart")
    assert not [h for h in record.objects["d1"] if h.sealed]


def test_a_secret_the_service_encrypted_needs_its_identity(world: World) -> None:
    sealer = Sealer(str(pyrage.x25519.Identity.generate()))
    world.policy = Policy(secrets=sealer)
    world.run(plan_put_destination(world.index, world.tree, "d1", DEV, None, "tester",
                                   world.policy,
                                   recipients=[str(pyrage.x25519.Identity.generate().to_public())]))
    post(world, {**V1, "secret.yaml": secret(b"first")})
    then = world.tree
    post(world, V2)
    world.policy = Policy()
    with pytest.raises(InvalidBundle, match=r"secrets\.identityFile"):
        rollback(world, then)
    world.policy = Policy(secrets=Sealer(str(pyrage.x25519.Identity.generate())))
    with pytest.raises(InvalidBundle, match="cannot be decrypted"):
        rollback(world, then)


def test_a_secret_in_clear_comes_back_as_it_was(world: World) -> None:
    post(world, {**V1, "secret.yaml": secret(b"first")})
    then = world.tree
    post(world, {**V2, "secret.yaml": secret(b"second")})
    rollback(world, then)
    assert_same_tree_but_serials(world.tree, then)


# -- a damaged commit -------------------------------------------------------------------------


def test_a_commit_whose_files_are_missing_is_refused_naming_it(world: World) -> None:
    post(world, V1)
    files = {p: d for p, d in world.tree.files("") if not p.endswith("ConfigMap_settings.yaml")}
    with pytest.raises(InvalidQuery, match="cannot be read back: ConfigMap team-a/settings"):
        rollback(world, DictTree(files))
