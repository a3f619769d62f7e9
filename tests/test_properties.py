"""Random sequences of apply and delete against a small model of the contract.

Bundles draw from a small pool of objects whose identities overlap between owners. The
pool is built so that the contract fixes every outcome independently of history:

- an object several owners may output has one natural placement (an identity keeps its
  first placement, so an object that could go either way would make the result depend on
  who came first; the unit tests cover that rule);
- a shared object's content is a function of (object, promise), drawn per example, so
  same-promise owners never disagree and owners of different promises either agree
  (the object is shared) or collide (409);
- each request's selectors and the destinations are fixed per example, so scheduling is
  rendezvous among the matches (sticky placement then changes nothing).

After every step: the invariants hold, `Index.load` of the tree rebuilds the index, the
answer matches the model, a refused step changed nothing, no identity changed its
placement while it kept an owner, and the tree equals the one obtained by replaying only
the surviving owners' latest bundles on a fresh world.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gitops import layout
from gitops.bundle import parse_bundle
from gitops.errors import Conflict, InvalidBundle, NotFound, StatewriterError
from gitops.index import decode_owner
from gitops.owner import Owner
from gitops.planner import Plan, plan_apply, plan_delete
from tests.support import (
    TEST_CLUSTER,
    World,
    assert_reloads,
    build_all,
    check_tree,
    index_state,
    rendezvous_order,
)

IdKey = tuple[str, str, str, str]  # group, kind, namespace, name
Selectors = dict[str, str]

SHARED_NS = "shared"
RESOURCES_SHARED = f"/{layout.RESOURCES}/{layout.SHARED}/"
OPERATOR_NS = "ops"
DESTINATION_LABELS = {"d1": {"fleet": "all", "tier": "a"}, "d2": {"fleet": "all", "tier": "b"}}
SELECTOR_CHOICES: list[Selectors] = [{}, {"fleet": "all"}, {"tier": "a"}, {"tier": "b"},
                                     {"tier": "none"}]
CLUSTER_KINDS = {"CustomResourceDefinition", "Namespace", "ClusterRole"}
MARK = {"statewriter.dev/placement": "dependency"}

# Items several owners may output; content varies by (item, promise) only.
DEPENDENCY_ITEMS = ("crd-widget", "crd-gadget", "clusterrole", "ns-extra", "operator", "marked-cm",
                    "nons-cm")
REQUEST_ONLY_ITEMS = ("common-cm", "web")  # resources: a promise-level bundle would place
#                                             them in dependencies, so only requests use them
SHARED_ITEMS = DEPENDENCY_ITEMS + REQUEST_ONLY_ITEMS
OWN_ITEMS = ("own-cm", "own-deploy")  # one owner's own objects; content varies freely


def _meta(name: str, namespace: str | None, variant: int,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"variant": str(variant)}}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _crd(kind: str, variant: int) -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": _meta(f"{plural}.example.com", None, variant),
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                           "listKind": f"{kind}List"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {
                                   "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def _config_map(name: str, namespace: str | None, variant: int,
                annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(name, namespace, variant, annotations),
            "data": {"value": f"v{variant}"}}


def _deployment(name: str, namespace: str | None, variant: int) -> dict[str, Any]:
    # variant 1 is the same object under another apiVersion
    return {"apiVersion": "apps/v1beta2" if variant % 2 else "apps/v1", "kind": "Deployment",
            "metadata": _meta(name, namespace, variant),
            "spec": {"replicas": variant + 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": f"img:{variant}"}]}}}}


def item_docs(item: str, owner: Owner, variant: int) -> list[dict[str, Any]]:
    own = "-".join(p for p in (owner.promise, owner.name, owner.pipeline) if p)
    if item == "crd-widget":
        return [_crd("Widget", variant)]
    if item == "crd-gadget":
        return [_crd("Gadget", variant)]
    if item == "clusterrole":
        return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": _meta("reader", None, variant),
                 "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                            "verbs": ["get"] if variant == 0 else ["get", "list"]}]}]
    if item == "ns-extra":
        return [{"apiVersion": "v1", "kind": "Namespace", "metadata": _meta("extra", None, variant)}]
    if item == "operator":  # an operator in the namespace the bundle declares
        return [{"apiVersion": "v1", "kind": "Namespace",
                 "metadata": _meta(OPERATOR_NS, None, variant)},
                _config_map("operator-config", OPERATOR_NS, variant),
                _deployment("operator", OPERATOR_NS, variant)]
    if item == "marked-cm":
        return [_config_map("marked", SHARED_NS, variant, MARK)]
    if item == "nons-cm":  # no namespace: the request's, or default for promise-level bundles
        return [_config_map("defaults", None, variant)]
    if item == "common-cm":
        return [_config_map("common", SHARED_NS, variant)]
    if item == "web":
        return [_deployment("web", SHARED_NS, variant)]
    if item == "own-cm":
        return [_config_map(f"own-{own}", owner.namespace or None, variant)]
    if item == "own-deploy":
        return [_deployment(f"own-{own}", owner.namespace or None, variant)]
    raise AssertionError(item)


def id_key(doc: dict[str, Any], owner: Owner) -> IdKey:
    meta = doc["metadata"]
    namespace = "" if doc["kind"] in CLUSTER_KINDS else (
        meta.get("namespace") or owner.namespace or "default")
    return (doc["apiVersion"].rpartition("/")[0], doc["kind"], namespace, meta["name"])


# -- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    promise: str
    namespace: str
    name: str
    selectors: Selectors


@dataclass(frozen=True)
class Step:
    delete: bool
    owner: Owner
    items: tuple[str, ...] = ()
    own_variant: int = 0
    duplicate: bool = False  # the bundle defines one object twice, differently
    whole: bool = False  # delete: every pipeline of the request (or promise)


@dataclass(frozen=True)
class Scenario:
    destinations: dict[str, Selectors]
    selectors: dict[tuple[str, str, str], Selectors]  # (promise, ns, name) -> selectors
    variants: dict[tuple[str, str], int]  # (shared item, promise) -> content variant
    steps: tuple[Step, ...]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    promises = ["alpha", "beta", "gamma"][: draw(st.integers(2, 3))]
    pipelines = ["default", "deploy"][: draw(st.integers(1, 2))]
    destinations = {n: DESTINATION_LABELS[n] for n in ["d1", "d2"][: draw(st.integers(1, 2))]}
    requests = [
        Request(draw(st.sampled_from(promises)), draw(st.sampled_from(["team-a", "team-b"])),
                f"r{i}", draw(st.sampled_from(SELECTOR_CHOICES)))
        for i in range(draw(st.integers(3, 4)))
    ]
    selectors = {(r.promise, r.namespace, r.name): r.selectors for r in requests}
    for promise in promises:
        selectors[(promise, "", "")] = draw(st.sampled_from(SELECTOR_CHOICES[:4]))
    owners = [Owner(r.promise, r.namespace, r.name, p) for r in requests for p in pipelines]
    owners += [Owner(promise, "", "", p) for promise in promises for p in pipelines]
    variants = {(item, promise): draw(st.integers(0, 1))
                for item in SHARED_ITEMS for promise in promises}

    def step(owner: Owner) -> st.SearchStrategy[Step]:
        pool = (*DEPENDENCY_ITEMS, "own-cm") if owner.is_promise_level else \
            SHARED_ITEMS + OWN_ITEMS
        applying = st.builds(
            Step, delete=st.just(False), owner=st.just(owner),
            items=st.lists(st.booleans(), min_size=len(pool), max_size=len(pool)).map(
                lambda keep: tuple(item for item, kept in zip(pool, keep, strict=True) if kept)),
            own_variant=st.integers(0, 2),
            duplicate=st.integers(0, 19).map(lambda n: n == 0),
        )
        deleting = st.builds(Step, delete=st.just(True), owner=st.just(owner),
                             whole=st.booleans())
        return st.integers(0, 4).flatmap(lambda n: deleting if n == 0 else applying)

    steps = draw(st.lists(st.sampled_from(owners).flatmap(step), min_size=4, max_size=16))
    return Scenario(destinations, selectors, variants, tuple(steps))


# -- the model ---------------------------------------------------------------------------------


@dataclass
class Holding:
    body: dict[str, Any]
    destinations: list[str]
    objects: dict[IdKey, str]  # identity -> the exact document the owner outputs
    changed_at: int


@dataclass
class Model:
    scenario: Scenario
    owners: dict[Owner, Holding] = field(default_factory=dict)

    def bundle(self, step: Step) -> tuple[dict[str, Any], dict[IdKey, str]]:
        owner = step.owner
        files: dict[str, str] = {}
        objects: dict[IdKey, str] = {}
        for item in step.items:
            variant = (step.own_variant if item in OWN_ITEMS
                       else self.scenario.variants[(item, owner.promise)])
            docs = item_docs(item, owner, variant)
            files[f"{item}.yaml"] = yaml.safe_dump_all(docs)
            objects.update((id_key(d, owner), yaml.safe_dump(d)) for d in docs)
        if step.duplicate:
            for variant in (0, 1):
                files[f"dup-{variant}.yaml"] = yaml.safe_dump_all(item_docs("own-cm", owner, variant))
        body: dict[str, Any] = {
            "promise": owner.promise, "pipeline": owner.pipeline, "files": files,
            "destinationSelectors": self.scenario.selectors[
                (owner.promise, owner.namespace, owner.name)],
        }
        if not owner.is_promise_level:
            body["request"] = {"namespace": owner.namespace, "name": owner.name}
        return body, objects

    def destinations(self, owner: Owner, selectors: Selectors) -> list[str]:
        matching = sorted(name for name, labels in self.scenario.destinations.items()
                          if all(labels.get(k) == v for k, v in selectors.items()))
        if owner.is_promise_level:
            return matching
        for other in sorted(self.owners):
            if (other.promise, other.namespace, other.name) == (
                    owner.promise, owner.namespace, owner.name) and \
                    self.owners[other].destinations:
                return self.owners[other].destinations[:1]
        request = f"{owner.promise}/{owner.namespace}/{owner.name}"
        return rendezvous_order(matching, request)[:1]

    def collides(self, owner: Owner, destinations: list[str], objects: dict[IdKey, str]) -> bool:
        return any(
            other != owner and destination in held.destinations
            and held.objects.get(identity, document) != document
            for destination in destinations
            for identity, document in objects.items()
            for other, held in self.owners.items()
        )

    def deleted(self, step: Step) -> list[Owner]:
        o = step.owner
        return [other for other in self.owners
                if (other.promise, other.namespace, other.name) == (o.promise, o.namespace, o.name)
                and (step.whole or other.pipeline == o.pipeline)]


# -- checks ------------------------------------------------------------------------------------


def placements(world: World) -> dict[tuple[str, Any], str]:
    return {key: next(iter(holders.values())).section
            for key, holders in world.index.objects.items()}


def comparable(world: World) -> dict[str, Any]:
    """The tree, with owner records compared without their serial numbers."""
    return {
        path: (decode_owner(data).with_(serial=0)
               if path.startswith(layout.OWNERS_DIR + "/") else data)
        for path, data in world.files().items()
    }


def replayed(scenario: Scenario, model: Model) -> World:
    world = World()
    for name, labels in scenario.destinations.items():
        world.destination(name, labels, cluster=TEST_CLUSTER)
    for owner in sorted(model.owners, key=lambda o: model.owners[o].changed_at):
        world.apply(model.owners[owner].body)
    return world


def run_step(world: World, model: Model, number: int, step: Step) -> None:
    before_index, before_files = index_state(world.index), world.files()
    owner = step.owner
    expected: type[StatewriterError] | None = None
    plan: Plan | None = None
    if step.delete:
        gone = model.deleted(step)
        expected = None if gone else NotFound
        try:
            plan = world.run(plan_delete(world.index, world.tree, owner.promise, owner.namespace,
                                         owner.name, None if step.whole else owner.pipeline,
                                         "prop"))
        except StatewriterError as error:
            assert type(error) is expected, error
            event("refused: NotFound")
        else:
            assert expected is None, f"expected {expected}"
            for o in gone:
                del model.owners[o]
    else:
        body, objects = model.bundle(step)
        destinations = model.destinations(owner, body["destinationSelectors"])
        if step.duplicate:
            expected = InvalidBundle
        elif model.collides(owner, destinations, objects):
            expected = Conflict
        try:
            plan = world.run(plan_apply(world.index, world.tree, parse_bundle(body), "prop"))
        except StatewriterError as error:
            assert type(error) is expected, error
            event(f"refused: {type(error).__name__}")
        else:
            assert expected is None, f"expected {expected}"
            assert list(plan.result.destinations) == destinations
            assert plan.result.state == ("Scheduled" if destinations else "Pending")
            previous = model.owners.get(owner)
            if previous is not None and previous.body == body:
                assert plan.changes == {}  # the same bundle again changes nothing
            assert not plan.notes.replaced and not plan.notes.kept
            changed_at = number if plan.changed or previous is None else previous.changed_at
            model.owners[owner] = Holding(body, destinations, objects, changed_at)
    if plan is not None:
        pending = getattr(plan.result, "state", None) == "Pending"
        event("unchanged" if not plan.changed else "pending" if pending else "written")
    if plan is None:  # refused: nothing moved
        assert index_state(world.index) == before_index
        assert world.files() == before_files


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_applies_and_deletes_keep_the_contract(scenario: Scenario) -> None:
    world = World()
    for name, labels in scenario.destinations.items():
        world.destination(name, labels, cluster=TEST_CLUSTER)
    model = Model(scenario)
    for number, step in enumerate(scenario.steps):
        placed_before = placements(world)
        run_step(world, model, number, step)
        check_tree(world.tree, exact_blobs=True)
        assert_reloads(world)
        placed_after = placements(world)
        for key in placed_before.keys() & placed_after.keys():
            assert placed_before[key] == placed_after[key], f"{key} moved between sections"
        assert {o for o, _ in world.index.owners.items()} == set(model.owners)
        assert comparable(world) == comparable(replayed(scenario, model))
        if any(RESOURCES_SHARED in p for p in world.files()):
            event("objects in resources/_shared")
        if any(len({o.promise for o in holders}) > 1 for holders in world.index.objects.values()):
            event("an object held by two promises")
    _maybe_kustomize(world)


_built = [0]


def _maybe_kustomize(world: World) -> None:
    """`kubectl kustomize` on the final tree of every 15th example (it is slow)."""
    _built[0] += 1
    if _built[0] % 15 != 1:
        return
    with tempfile.TemporaryDirectory() as temp:
        build_all(world.tree, Path(temp))
