"""The fake store (tests/fakes.py) honours the store protocol the way the real stores do: each
behaviour the writer lane and the readers rely on runs against `FakeStore` and against
`gitops.store.EmbeddedStore` (a real bare repository), with the same assertions. "Two
replicas" are two stores over one published branch: one `FakeRemote`, or one repository."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.http.answers import answer
from gitops import planner
from gitops.bundle import parse_bundle
from gitops.errors import NotFound
from gitops.index import Index
from gitops.store import EmbeddedStore
from gitops.store.base import Author, FileChange, Store
from gitops.tree import blob_id
from gitops.writer import Done, Writer
from tests import support
from tests.fakes import FakeRemote, FakeStore

AUTHOR = Author("tester", "tester@example.invalid")
MESSAGE = "apply team-a/one\n\nAdded:\n  a/x.yaml\n\nStatewriter-Action: apply\nStatewriter-Promise: p1\n"

Replicas = Callable[[], Store]  # a new store over the same published branch each call


@pytest.fixture(params=["fake", "embedded"])
def replica(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replicas]:
    """Stores over one published branch: in memory, or one bare repository."""
    opened: list[Store] = []
    remote = FakeRemote()

    def open_one() -> Store:
        store: Store = (FakeStore(remote) if request.param == "fake"
                        else EmbeddedStore(tmp_path / "state.git"))
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_a_commit_is_readable_before_it_is_published_and_the_tip_after(replica: Replicas) -> None:
    store = replica()
    assert (store.tip(), store.refresh()) == (None, None)
    assert store.resolve_branch("main") is None  # no commit at all
    first = store.commit(None, {"a/x.yaml": b"x: 1\n", "b/y.yaml": b"y: 1\n"}, MESSAGE, AUTHOR)
    assert store.tree(first).read("a/x.yaml") == b"x: 1\n"
    assert store.tree(first).listdir("") == {"a": True, "b": True}
    assert store.tip() is None  # staged, not published
    assert store.publish(None, first)
    assert store.tip() == store.refresh() == store.resolve_branch("main") == first
    second = store.commit(first, {"a/x.yaml": None, "a/z.yaml": b"z\n"}, "second\n", AUTHOR)
    assert store.publish(first, second)
    tree = store.tree(second)
    assert (tree.read("a/x.yaml"), tree.read("a/z.yaml"), tree.read("b/y.yaml")) == (None, b"z\n", b"y: 1\n")
    assert tree.blob_id("a/z.yaml") == blob_id(b"z\n")
    assert store.tree(first).read("a/x.yaml") == b"x: 1\n"  # the first commit is untouched
    assert replica().refresh() == second  # another replica sees it
    with pytest.raises(NotFound):
        store.resolve_branch("elsewhere")


def test_a_publish_against_a_moved_branch_returns_false(replica: Replicas) -> None:
    ours, theirs = replica(), replica()
    base = ours.commit(None, {"a.yaml": b"a\n"}, "base\n", AUTHOR)
    assert ours.publish(None, base)
    assert theirs.refresh() == base
    moved = theirs.commit(base, {"b.yaml": b"b\n"}, "theirs\n", AUTHOR)
    assert theirs.publish(base, moved)
    late = ours.commit(base, {"c.yaml": b"c\n"}, "ours\n", AUTHOR)
    assert not ours.publish(base, late)  # the branch moved meanwhile: nothing changes
    assert ours.refresh() == moved
    assert ours.tree(moved).read("c.yaml") is None
    again = ours.commit(moved, {"c.yaml": b"c\n"}, "ours, again\n", AUTHOR)
    assert ours.publish(moved, again)
    assert theirs.refresh() == again


def test_changed_names_the_files_that_differ_below_a_folder(replica: Replicas) -> None:
    store = replica()
    first = store.commit(None, {"a/x": b"1", "a/y": b"1", "b/z": b"1", "c/d/e": b"1"}, "1\n", AUTHOR)
    second = store.commit(first, {"a/x": b"2", "a/y": None, "b/w": b"1", "c/d/e": b"1"}, "2\n", AUTHOR)
    assert store.publish(None, second)
    assert store.changed(first, second, "") == ["a/x", "a/y", "b/w"]
    assert store.changed(first, second, "a") == ["a/x", "a/y"]
    assert store.changed(first, second, "c/d") == []
    assert store.changed(None, first, "b/") == ["b/z"]
    assert store.changed(second, first, "b") == ["b/w"]
    # a replica that did not write them reads the same
    assert replica().changed(first, second, "") == ["a/x", "a/y", "b/w"]


@pytest.mark.parametrize("path", ["a/../x.yaml", "/x.yaml", "a//x.yaml", "./x.yaml", ".git/config",
                                  "a/\0.yaml"])
def test_paths_a_tree_cannot_hold_are_refused(replica: Replicas, path: str) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        replica().commit(None, {path: b"x"}, "bad\n", AUTHOR)


def test_a_file_is_never_also_a_folder(replica: Replicas) -> None:
    store = replica()
    base = store.commit(None, {"a/b.yaml": b"x"}, "base\n", AUTHOR)
    with pytest.raises(ValueError):
        store.commit(base, {"a": b"a file where a folder is"}, "bad\n", AUTHOR)
    with pytest.raises(ValueError):
        store.commit(base, {"a/b.yaml/c.yaml": b"below a file"}, "bad\n", AUTHOR)


def test_the_reads_of_a_history(replica: Replicas) -> None:
    store = replica()
    first = store.commit(None, {"a/x.yaml": b"one\ntwo\n", "b/y.bin": b"\0\1"}, MESSAGE, AUTHOR)
    second = store.commit(first, {"a/x.yaml": b"one\n2\nthree\n", "b/y.bin": None, "c.yaml": b"c\n"},
                          "change\n\nStatewriter-Action: delete\nStatewriter-Promise: p2\n", AUTHOR)
    assert store.publish(None, second)
    log = list(store.log(["main"], files=True))
    assert [entry.sha for entry in log] == [second, first]
    assert [entry.parents for entry in log] == [(first,), ()]
    assert [entry.subject for entry in log] == ["change", "apply team-a/one"]
    assert log[0].author == "tester <tester@example.invalid>"
    assert log[0].files == (FileChange("M", "a/x.yaml"), FileChange("D", "b/y.bin"),
                            FileChange("A", "c.yaml"))
    assert log[1].message == MESSAGE and log[1].files is not None
    (alone,) = store.log([second], walk=False, files=False)
    assert alone.files is None
    trailers = [entry.message for entry in store.log([second], trailers_only=True)]
    assert trailers == ["Statewriter-Action: delete\nStatewriter-Promise: p2\n",
                        "Statewriter-Action: apply\nStatewriter-Promise: p1\n"]
    assert [e.sha for e in store.log([second], grep=["Statewriter-Promise: p1"])] == [first]
    assert [e.sha for e in store.log([second], grep=["Statewriter-Promise: p1", "delete"])] == []
    assert [e.sha for e in store.log([f"{first}..{second}"])] == [second]
    assert [e.sha for e in store.log([first, second], walk=False)] == [first, second]
    assert store.resolve_commit(second[:10]) == second and store.resolve_commit("f" * 40) is None
    assert store.is_ancestor(first, second) and store.is_ancestor(second, second)
    assert not store.is_ancestor(second, first)
    changes = {diff.path: diff for diff in store.file_changes(second)}
    assert set(changes) == {"a/x.yaml", "b/y.bin", "c.yaml"}
    text = changes["a/x.yaml"]
    assert (text.before, text.after) == (blob_id(b"one\ntwo\n"), blob_id(b"one\n2\nthree\n"))
    assert (text.added, text.removed) == (2, 1)
    assert (changes["b/y.bin"].after, changes["b/y.bin"].added) == (None, None)  # gone; binary
    assert (changes["c.yaml"].before, changes["c.yaml"].added) == (None, 1)
    assert store.blobs([blob_id(b"c\n"), "0" * 40]) == [b"c\n", None]
    patch = store.patch(second, ["a/x.yaml"])
    assert "-two\n" in patch and "+three\n" in patch and "c.yaml" not in patch
    assert store.patch(second, []) == ""


def test_the_writer_lane_over_either_store(replica: Replicas) -> None:
    """The lane plans, commits and publishes through the protocol alone: the same answers,
    and a replica that did not write reads the same index."""
    writer = Writer(replica())
    try:
        put = functools.partial(planner.plan_put_destination, name="worker-1", labels={"env": "dev"},
                                path=None, actor="tester")
        assert answer(writer.submit(lambda index, tree: put(index, tree)).result(timeout=60))[0] == 200
        bundle = parse_bundle(support.payload("p1", "team-a/one", {"cm.yaml": support.config_map("one")},
                                              selectors={"env": "dev"}))
        done = writer.submit(functools.partial(planner.plan_apply, bundle=bundle, actor="tester"))
        outcome = done.result(timeout=60)
        assert isinstance(outcome, Done) and outcome.changed
        assert outcome.commit == writer.store.tip()
    finally:
        writer.close()
    other = replica()
    index = Index.load(other.tree(other.refresh()))
    assert index.request_destination("p1", "team-a", "one") == "worker-1"
