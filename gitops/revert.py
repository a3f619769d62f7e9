"""Reverting one commit of the branch: the repair the service asks for when a commit made
outside it (a person's push) left a state record it cannot read, or an operator's way back
from a bad change. `statewriter revert` runs it on a stopped service's data folder (the
embedded store) or a clone, through the store's own compare-and-swap.

As `git revert` does without a work tree: every file the commit changed goes back to what
its parent had, provided no later commit changed that file again (else the revert is
refused, naming those files: revert the later commits first, newest first). The result is
checked with `statewriter verify`'s invariants (without the kustomize builds) before it is
written; a revert that would break them is refused unless forced."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gitops.commitmsg import commit_message
from gitops.errors import Conflict, InvalidQuery, NotFound
from gitops.quoting import quoted
from gitops.store.base import Author, Store
from gitops.tree import Overlay, Tree
from gitops.verify import verify_tree

Changes = dict[str, bytes | None]


@dataclass(frozen=True)
class Reverted:
    commit: str  # the revert commit
    reverts: str
    files: tuple[str, ...]
    findings: tuple[str, ...]  # what verify still finds (only when forced)


def revert_changes(tip: Tree, before: Tree, after: Tree, paths: Sequence[str]) -> Changes:
    """What makes `tip` hold, at each of `paths` (the files a commit changed from `before` to
    `after`), what `before` held; Conflict when `tip` no longer holds what `after` did."""
    changes: Changes = {}
    moved = []
    for path in paths:
        if tip.blob_id(path) != after.blob_id(path):
            moved.append(path)
            continue
        changes[path] = before.read(path)
    if moved:
        shown = ", ".join(moved[:10]) + (f" (and {len(moved) - 10} more)" if len(moved) > 10 else "")
        raise Conflict(f"later commits changed {len(moved)} of its files again: {shown}; revert "
                       "those commits first (newest first)", files=tuple(moved))
    return changes


def revert(store: Store, given: str, author: Author, actor: str, force: bool = False) -> Reverted:
    """Revert commit `given` (an id or a prefix of one) on the store's branch."""
    tip = store.refresh()
    sha = store.resolve_commit(given)
    if sha is None or tip is None:
        raise NotFound(f"no commit {quoted(given)} in the state store")
    if not store.is_ancestor(sha, tip):
        raise InvalidQuery(f"commit {sha[:12]} is not on branch {store.branch}", field="commit")
    (entry,) = store.log([sha], walk=False)
    if len(entry.parents) > 1:
        raise InvalidQuery(f"commit {sha[:12]} is a merge: revert its changes by hand",
                           field="commit")
    parent = entry.parents[0] if entry.parents else None
    paths = store.changed(parent, sha, "")
    changes = revert_changes(store.tree(tip), store.tree(parent), store.tree(sha), paths)
    findings = tuple(verify_tree(Overlay(store.tree(tip), changes), kustomize=False))
    if findings and not force:
        raise Conflict(f"the state after reverting {sha[:12]} would break {len(findings)} "
                       f"invariant(s), the first: {findings[0]} (force it with --force)",
                       findings=findings)
    tip_tree = store.tree(tip)
    added = sorted(p for p, c in changes.items() if c is not None and tip_tree.blob_id(p) is None)
    removed = sorted(p for p, c in changes.items() if c is None)
    changed = sorted(set(changes) - set(added) - set(removed))
    message = commit_message(
        f"revert {sha[:12]}: {entry.subject}"[:200], added, changed, removed,
        [f"This reverts commit {sha}."],
        [("Statewriter-Action", "revert"), ("Statewriter-Reverts", sha),
         ("Statewriter-Actor", actor)])
    commit = store.commit(tip, changes, message, author)
    if not store.publish(tip, commit):
        raise Conflict(f"branch {store.branch} moved while reverting: run it again")
    return Reverted(commit, sha, tuple(sorted(changes)), findings)
