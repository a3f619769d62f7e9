"""Reverting a commit on the embedded store (gitops.revert; `statewriter revert`): the repair
for a person's push that left a record the service cannot read, and a way back from a bad
change. Real git throughout: the bad commit is pushed from a real clone, and the service's
writer judges the repair by loading the state again."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from gitops import layout, planner
from gitops.bundle import parse_bundle
from gitops.errors import Conflict, InvalidQuery, NotFound
from gitops.revert import revert
from gitops.store import EmbeddedStore
from gitops.store.base import Author
from gitops.verify import verify_tree
from gitops.writer import Done, Writer
from tests.procs import git, init_bare
from tests.support import config_map, payload

AUTHOR = Author("operator", "operator@example.invalid")


def write(writer: Writer, ref: str, value: str) -> None:
    bundle = parse_bundle(payload("shop", ref, {"a.yaml": config_map("a", "team-a", value)},
                                  selectors={"env": "dev"}))
    outcome = writer.submit(functools.partial(planner.plan_apply, bundle=bundle, actor="t")).result(60)
    assert isinstance(outcome, Done) and outcome.changed, outcome


@pytest.fixture
def store(tmp_path: Path) -> Path:
    repo = init_bare(tmp_path / "state.git")
    writer = Writer(EmbeddedStore(repo))
    try:
        writer.submit(functools.partial(planner.plan_put_destination, name="w1",
                                        labels={"env": "dev"}, path=None, actor="t")).result(60)
        write(writer, "team-a/one", "1")
    finally:
        writer.close()
    return repo


def push_by_hand(repo: Path, tmp_path: Path, path: str, content: str) -> str:
    """What a person does: clone, edit a file, commit and push."""
    work = tmp_path / "work"
    git("clone", "-q", str(repo), str(work))
    (work / path).parent.mkdir(parents=True, exist_ok=True)
    (work / path).write_text(content)
    git("-C", str(work), "add", "-A")
    git("-C", str(work), "-c", "user.name=someone", "-c", "user.email=s@example.invalid",
        "commit", "-qm", "edit by hand")
    git("-C", str(work), "push", "-q", "origin", "main")
    return git("-C", str(work), "rev-parse", "HEAD").strip()


def test_reverting_a_hand_made_commit_that_broke_a_record_repairs_the_store(
        store: Path, tmp_path: Path) -> None:
    record = layout.owner_record_path(parse_bundle(payload("shop", "team-a/one")).owner)
    bad = push_by_hand(store, tmp_path, record, "{not json")
    broken = Writer(EmbeddedStore(store))
    try:  # the service stays up read-only on it, and says why
        unready = broken.readiness()
        assert unready is not None and "corrupt" in unready.reason
    finally:
        broken.close()
    done = revert(EmbeddedStore(store), bad[:10], AUTHOR, "operator")
    assert done.reverts == bad and done.files == (record,) and done.findings == ()
    message = git(f"--git-dir={store}", "log", "-1", "--format=%B", "main")
    assert f"Statewriter-Reverts: {bad}" in message and "Statewriter-Action: revert" in message
    writer = Writer(EmbeddedStore(store))  # loads again, and writes
    try:
        write(writer, "team-a/one", "2")
    finally:
        writer.close()
    assert verify_tree(EmbeddedStore(store).tree(EmbeddedStore(store).tip()), kustomize=True) == []


def test_a_file_changed_again_later_is_a_conflict_and_nothing_changes(store: Path) -> None:
    writer = Writer(EmbeddedStore(store))
    try:
        first = EmbeddedStore(store).tip()
        write(writer, "team-a/one", "2")
        middle = EmbeddedStore(store).tip()
        write(writer, "team-a/one", "3")
    finally:
        writer.close()
    assert first and middle
    tip = EmbeddedStore(store).tip()
    with pytest.raises(Conflict, match="revert those commits first"):
        revert(EmbeddedStore(store), middle, AUTHOR, "operator")
    assert EmbeddedStore(store).tip() == tip
    # newest first works: the last change, then the one before
    revert(EmbeddedStore(store), tip or "", AUTHOR, "operator")
    revert(EmbeddedStore(store), middle, AUTHOR, "operator")
    tree = EmbeddedStore(store).tree(EmbeddedStore(store).tip())
    assert tree.files("") and dict(tree.files("")) == dict(EmbeddedStore(store).tree(first).files(""))


def test_a_revert_that_would_break_an_invariant_is_refused_unless_forced(
        store: Path, tmp_path: Path) -> None:
    # someone added a file no owner holds, and someone else removed it: reverting the
    # removal would bring back an object nobody owns
    stray = "w1/resources/stray.yaml"
    push_by_hand(store, tmp_path / "a", stray, config_map("stray", "team-a"))
    work = tmp_path / "b"
    git("clone", "-q", str(store), str(work))
    git("-C", str(work), "rm", "-q", stray)
    git("-C", str(work), "-c", "user.name=s", "-c", "user.email=s@e", "commit", "-qm", "clean up")
    git("-C", str(work), "push", "-q", "origin", "main")
    removal = git("-C", str(work), "rev-parse", "HEAD").strip()
    tip = EmbeddedStore(store).tip()
    with pytest.raises(Conflict) as refused:
        revert(EmbeddedStore(store), removal, AUTHOR, "operator")
    assert any("stray.yaml" in finding for finding in refused.value.detail["findings"])
    assert EmbeddedStore(store).tip() == tip
    forced = revert(EmbeddedStore(store), removal, AUTHOR, "operator", force=True)
    assert forced.findings and EmbeddedStore(store).tip() == forced.commit


def test_unknown_and_foreign_commits_are_refused(store: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        revert(EmbeddedStore(store), "0" * 40, AUTHOR, "operator")
    other = init_bare(tmp_path / "other.git")
    blob = git(f"--git-dir={store}", "hash-object", "-w", "--stdin", input=b"x")
    tree = git(f"--git-dir={store}", "mktree", input=f"100644 blob {blob.strip()}\tx\n".encode())
    stray = git(f"--git-dir={store}", "-c", "user.name=a", "-c", "user.email=a@b", "commit-tree",
                tree.strip(), "-m", "not on main").strip()
    with pytest.raises(InvalidQuery):
        revert(EmbeddedStore(store), stray, AUTHOR, "operator")
    assert other.exists()
