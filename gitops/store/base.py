"""The state store interface: what the writer lane needs from git, and what readers need
(`Reads`: the log, one commit's changes, blobs).

Two implementations: `EmbeddedStore` (a bare repository under the data folder that is
itself the state store) and `RemoteStore` (a bare clone under the data folder that pushes
to a remote). The planner never sees either; it reads a `Tree`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gitops.tree import Changes, Tree

DEFAULT_BRANCH = "main"  # the branch a store writes unless told another (`serve --branch`)


@dataclass(frozen=True)
class Author:
    name: str = "statewriter"
    email: str = "statewriter@example.invalid"


@dataclass(frozen=True)
class FileChange:
    """One file a commit changed against its first parent: `status` as git gives it
    (A added, M changed, T type changed, D removed)."""

    status: str
    path: str


@dataclass(frozen=True)
class LogEntry:
    sha: str
    time: int  # committer time, seconds since the epoch
    parents: tuple[str, ...]
    author: str  # "name <email>"
    authored: str  # the author date, ISO 8601
    subject: str  # the message's first line
    message: str  # the whole message; with `trailers_only`, its trailer block (unfolded)
    files: tuple[FileChange, ...] | None  # with `files`: what it changed (first parent)


@dataclass(frozen=True)
class FileDiff:
    """One file a commit changed: its blob before and after (None: absent) and the lines
    added and removed (None: binary)."""

    path: str
    before: str | None
    after: str | None
    added: int | None
    removed: int | None


class Reads(Protocol):
    """What the read models (`gitops.reads`) need of a repository: its log, one commit's
    changes and patch, blobs, and where a branch or a commit id points."""

    def resolve_branch(self, branch: str) -> str | None:
        """The commit `branch` points at; None when there is no commit at all (NotFound when
        there are commits, but not this branch)."""
        ...

    def resolve_commit(self, given: str) -> str | None:
        """The full id of the commit `given` (an id or a prefix of one) names, or None."""
        ...

    def is_ancestor(self, commit: str, of: str) -> bool: ...

    def log(self, revisions: Sequence[str], *, grep: Sequence[str] = (), files: bool = False,
            trailers_only: bool = False, walk: bool = True,
            topo_order: bool = False, grep_any: bool = False) -> Iterator[LogEntry]:
        """The commits of `revisions`, newest first (see `gitops.store.reads.GitReads.log`)."""
        ...

    def first_parents(self, tip: str, since: str | None = None) -> list[tuple[str, int]]:
        """Commits from `tip` down its first parents to `since` (excluded), newest first,
        with their commit times."""
        ...

    def last_changes(self, tip: str, paths: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The newest commit of `tip`'s first parents that changed each path, with its time."""
        ...

    def file_changes(self, commit: str) -> list[FileDiff]:
        """Every file `commit` changed against its first parent."""
        ...

    def patch(self, commit: str, paths: Sequence[str]) -> str:
        """The patch of `commit` against its first parent, for `paths` only."""
        ...

    def blobs(self, oids: Sequence[str]) -> list[bytes | None]:
        """The content of each blob (None: no such object)."""
        ...


class Store(Reads, Protocol):
    branch: str
    path: Path  # the bare repository the service writes (the embedded store, or the remote's cache)

    def tip(self) -> str | None:
        """The published branch tip as last seen (None for an empty store)."""
        ...

    def tree(self, commit: str | None) -> Tree:
        """A lazy read-only view of `commit`'s tree (empty when None)."""
        ...

    def commit(self, parent: str | None, changes: Changes, message: str, author: Author) -> str:
        """Write a commit on top of `parent` applying `changes`; returns its sha.

        Touches only the trees along the changed paths. Does not move the branch; the new
        objects are staged in memory (readable through `tree`) until `publish`."""
        ...

    def publish(self, expected: str | None, new: str) -> bool:
        """Write the staged objects, then make `new` the branch tip if the branch is still
        at `expected`.

        Returns False (and changes nothing) when the branch moved meanwhile."""
        ...

    def refresh(self) -> str | None:
        """Fetch the branch from where it is published; returns its current tip."""
        ...

    def changed(self, old: str | None, new: str | None, prefix: str) -> list[str]:
        """Files below folder `prefix` that differ between two commits (cost follows the
        change, not the repository's size)."""
        ...

    def for_branch(self, branch: str) -> Store:
        """The same repository (or remote) written on another `branch`."""
        ...

    def maintain(self) -> None:
        """Housekeeping (rolling up small packs); safe while the writer keeps writing."""
        ...

    def close(self) -> None: ...
