"""The ownership index's layering: a plan's changes stay in its layer until merged down."""

from __future__ import annotations

import pytest

from gitops import layout
from gitops.errors import CorruptState
from gitops.identity import Identity
from gitops.index import Held, Index, OwnerRecord, encode_owner
from gitops.owner import Owner
from gitops.tree import DictTree

CRD = Identity("apiextensions.k8s.io", "CustomResourceDefinition", "", "things.example.com")
KEY = ("worker-1", CRD)


def record(name: str) -> OwnerRecord:
    owner = Owner("things", "team-a", name, "default")
    held = Held(CRD, "dependencies", "0" * 40)
    return OwnerRecord(owner, "sha256:x", {}, 1, destinations=("worker-1",),
                       objects={"worker-1": (held,)})


def holders(index: Index) -> set[str]:
    return {owner.name for owner in index.objects.get(KEY) or {}}


def test_holder_changes_stay_in_their_layer_until_merged_down() -> None:
    base = Index()
    for name in ("a", "b", "c"):
        base.put_owner(record(name))
    batch = base.child()
    plan = batch.child()
    plan.remove_owner(record("a").owner)
    plan.put_owner(record("d"))
    assert holders(plan) == {"b", "c", "d"} and len(plan.objects.get(KEY) or {}) == 3
    assert holders(batch) == holders(base) == {"a", "b", "c"}

    plan.merge_down()
    assert holders(batch) == {"b", "c", "d"} and holders(base) == {"a", "b", "c"}
    second = batch.child()
    second.remove_owner(record("b").owner)
    second.merge_down()
    assert holders(batch) == {"c", "d"} and holders(base) == {"a", "b", "c"}

    batch.merge_down()
    assert holders(base) == {"c", "d"} and len(base.objects.get(KEY) or {}) == 2


def test_an_object_whose_last_holder_leaves_is_gone_and_can_come_back() -> None:
    base = Index()
    base.put_owner(record("a"))
    plan = base.child()
    plan.remove_owner(record("a").owner)
    assert KEY not in plan.objects and KEY in base.objects
    again = plan.child()
    again.put_owner(record("e"))
    again.merge_down()
    assert holders(plan) == {"e"}
    plan.merge_down()
    assert holders(base) == {"e"} and len(base.objects.get(KEY) or {}) == 1


def test_a_discarded_layer_leaves_no_trace() -> None:
    base = Index()
    base.put_owner(record("a"))
    plan = base.child()
    plan.put_owner(record("b"))
    plan.remove_owner(record("a").owner)
    assert holders(base) == {"a"} and base.request_owners("things", "team-a", "b") == []


@pytest.mark.parametrize("content", [b"{not json", b'{"promise": "things"}', b"[]"])
def test_an_unreadable_record_stops_the_load_naming_its_file(content: bytes) -> None:
    good = record("a")
    tree = DictTree({
        layout.owner_record_path(good.owner): encode_owner(good),
        ".statewriter/owners/things/team-a/b/default.json": content,
    })
    with pytest.raises(CorruptState, match=r"owners/things/team-a/b/default\.json"):
        Index.load(tree)


@pytest.mark.parametrize("record", [
    b'{"name": "Worker", "labels": {}, "path": "worker"}',
    b'{"name": "worker", "labels": {"env": 1}, "path": "worker"}',
    b'{"name": "worker", "labels": {}, "path": "../etc"}',
    b'{"name": "worker", "labels": {}, "path": ".statewriter"}',
])
def test_a_destination_record_that_put_would_refuse_is_corrupt(record: bytes) -> None:
    tree = DictTree({".statewriter/destinations/worker.json": record})
    with pytest.raises(CorruptState, match=r"destinations/worker\.json"):
        Index.load(tree)
