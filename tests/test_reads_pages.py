"""The read models the pages show (gitops.reads.search, .promises, requests.waiting_for,
history.parse_action) on an index the real planner built: pure functions of the index, as
a REPL would call them."""

from __future__ import annotations

import pytest

from gitops.commitmsg import ACTIONS
from gitops.errors import InvalidQuery
from gitops.reads.history import parse_action
from gitops.reads.promises import promise_overview
from gitops.reads.requests import waiting_for
from gitops.reads.search import MAX_OWNERS, ObjectQuery, find_objects, parse_search
from gitops.reads.summaries import summarise
from tests.support import World, config_map, crd, payload

CRD = crd("example.com", "Widget")
CRD_NAME = "widgets.example.com"


@pytest.fixture
def world() -> World:
    """Two destinations; three requests of promise shop sharing a CRD, one placed on each
    destination and one waiting for env=qa; a promise-level bundle of promise base."""
    world = World()
    world.destination("dev", {"env": "dev"})
    world.destination("prod", {"env": "prod"})
    for ref, env in (("team-a/one", "dev"), ("team-b/two", "dev"), ("team-a/three", "prod")):
        name = ref.partition("/")[2]
        world.apply(payload("shop", ref, {"crd.yaml": CRD, "cm.yaml": config_map(name)},
                            selectors={"env": env}))
    world.apply(payload("shop", "team-c/later", {"cm.yaml": config_map("later")},
                        selectors={"env": "qa", "tier": "web"}))
    world.apply(payload("base", None, {"cm.yaml": config_map("settings", "base-system")},
                        selectors={"env": "dev"}))
    return world


def test_a_shared_crd_is_one_object_per_destination_with_all_its_owners(world: World) -> None:
    query = parse_search("customresourcedefinition", CRD_NAME)
    assert query == ObjectQuery("customresourcedefinition", CRD_NAME, None)
    found = find_objects(world.index, query)
    assert found.total == 2
    dev, prod = found.objects
    assert (dev.destination, dev.section, dev.count) == ("dev", "dependencies", 2)
    assert [o.request for o in dev.owners] == ["team-a/one", "team-b/two"]
    assert dev.path.startswith("dev/dependencies/_cluster/") and dev.path.endswith(f"{CRD_NAME}.yaml")
    assert [o.request for o in prod.owners] == ["team-a/three"]


def test_a_kind_with_its_group_a_namespace_and_promise_level_owners(world: World) -> None:
    by_group = find_objects(world.index, ObjectQuery(
        "CustomResourceDefinition.apiextensions.k8s.io", CRD_NAME, None))
    assert by_group.total == 2
    settings = find_objects(world.index, ObjectQuery("ConfigMap", "settings", "base-system"))
    ((found),) = settings.objects
    assert [(o.promise, o.is_promise_level) for o in found.owners] == [("base", True)]
    assert find_objects(world.index, ObjectQuery("ConfigMap", "settings", "default")).total == 0
    assert find_objects(world.index, ObjectQuery("", "one", None)).total == 1  # any kind
    assert find_objects(world.index, ObjectQuery("Secret", "one", None)).total == 0


def test_an_object_with_more_owners_than_are_listed_counts_them(world: World) -> None:
    for n in range(MAX_OWNERS + 5):
        world.apply(payload("shop", f"team-m/r{n}", {"crd.yaml": CRD}, selectors={"env": "prod"}))
    (prod,) = [o for o in find_objects(world.index, ObjectQuery("", CRD_NAME, None)).objects
               if o.destination == "prod"]
    assert prod.count == MAX_OWNERS + 6 and len(prod.owners) == MAX_OWNERS


@pytest.mark.parametrize(("kind", "name", "namespace", "field"), [
    ("Config Map", "", "", "kind"),
    ("<script>", "", "", "kind"),
    ("K" * 400, "", "", "kind"),
    ("", "a/b", "", "name"),
    ("", "a b", "", "name"),
    ("", "x" * 254, "", "name"),
    ("", "x\u0000", "", "name"),
    ("", "x", "Team", "namespace"),
    ("", "", "team-a", "name"),
])
def test_search_terms_that_name_no_object_are_refused(kind: str, name: str, namespace: str,
                                                     field: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_search(kind, name, namespace)
    assert refused.value.detail["field"] == field


def test_no_terms_is_no_search() -> None:
    assert parse_search(None, "", "  ") is None


def test_a_promise_exists_with_requests_or_promise_level_bundles(world: World) -> None:
    shop = promise_overview(world.index, "shop")
    assert shop is not None
    assert (shop.requests, shop.namespaces, shop.destinations, shop.promise_level) == (
        4, ("team-a", "team-b", "team-c"), ("dev", "prod"), False)
    base = promise_overview(world.index, "base")
    assert base is not None and (base.requests, base.promise_level) == (0, True)
    assert promise_overview(world.index, "nothing") is None
    assert summarise(world.index).promises == {"base": 0, "shop": 4}


def test_a_pending_request_waits_for_its_selectors(world: World) -> None:
    (waiting,) = waiting_for(world.index.request_owners("shop", "team-c", "later"))
    assert (waiting.pipeline, waiting.selectors) == ("default", {"env": "qa", "tier": "web"})
    assert waiting_for(world.index.request_owners("shop", "team-a", "one")) == ()
    (row,) = summarise(world.index).pending
    assert (row.name, row.waits_for) == ("later", {"env": "qa", "tier": "web"})


def test_the_actions_a_history_is_filtered_by() -> None:
    assert {"rollback", "revert"} <= set(ACTIONS)
    assert [parse_action(a) for a in (None, "", "revert")] == [None, None, "revert"]
    with pytest.raises(InvalidQuery) as refused:
        parse_action("<b>")
    assert refused.value.detail["field"] == "action"
