"""The state store interface: what the writer lane needs from git, nothing more.

Two implementations: `EmbeddedStore` (a bare repository under the data folder that is
itself the state store) and `RemoteStore` (a bare clone under the data folder that pushes
to a remote). The planner never sees either; it reads a `Tree`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gitops.tree import Changes, Tree


@dataclass(frozen=True)
class Author:
    name: str = "statewriter"
    email: str = "statewriter@example.invalid"


class Store(Protocol):
    branch: str
    path: Path  # the bare repository the service reads (the embedded store, or the remote's cache)

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

    def maintain(self) -> None:
        """Housekeeping (rolling up small packs); safe while the writer keeps writing."""
        ...

    def close(self) -> None: ...
