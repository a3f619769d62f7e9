"""What a plan reports, as typed values. `app/` turns them into answers; nothing here knows
about HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from gitops.destination import Destination
from gitops.owner import Owner

SCHEDULED = "Scheduled"
PENDING = "Pending"


@dataclass(frozen=True)
class FileChanges:
    """Files a commit adds, changes and removes (state records included), sorted."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotPlaced:
    """A waiting bundle a destination could not take (a conflict); retried when it goes."""

    owner: Owner
    destination: str
    reason: str


@dataclass(frozen=True)
class Notes:
    """What a change did besides its own files, for the answer and the commit message."""

    replaced: tuple[str, ...] = ()  # shared dependencies replaced, with their previous writers
    kept: tuple[str, ...] = ()  # dependencies kept at a newer promise generation
    not_placed: tuple[NotPlaced, ...] = ()
    placed: tuple[Owner, ...] = ()  # waiting bundles this change placed
    # what the client should know though nothing was refused (each names file, document
    # and field: what statewriter could not check, or what the cluster may do differently)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Applied:
    """A bundle's owner after the change."""

    owner: Owner
    state: str  # SCHEDULED or PENDING
    destinations: tuple[str, ...]
    misplaced: bool | None = None  # placed requests: its selectors no longer match
    reason: str | None = None  # why it waits


@dataclass(frozen=True)
class Deleted:
    owners: tuple[Owner, ...]
    destinations: tuple[str, ...]


@dataclass(frozen=True)
class RolledBack:
    """A request written as it stood at `commit`: each pipeline it had then, after the change
    (`restored`, in the order they were first written), and the pipelines it had since, removed."""

    commit: str  # the full id of the commit rolled back to
    restored: tuple[Applied, ...]
    removed: tuple[Owner, ...] = ()

    @property
    def state(self) -> str:
        """SCHEDULED when any pipeline is placed (they all share the request's destination)."""
        return SCHEDULED if any(a.state == SCHEDULED for a in self.restored) else PENDING

    @property
    def destinations(self) -> tuple[str, ...]:
        return tuple(sorted({d for applied in self.restored for d in applied.destinations}))

    @property
    def misplaced(self) -> bool | None:
        """Placed, and a pipeline's selectors (as they were then) no longer match there."""
        placed = [a.misplaced for a in self.restored if a.misplaced is not None]
        return any(placed) if placed else None

    @property
    def reason(self) -> str | None:
        return next((a.reason for a in self.restored if a.reason), None)


@dataclass(frozen=True)
class DestinationSaved:
    destination: Destination


@dataclass(frozen=True)
class DestinationDeleted:
    name: str


@dataclass(frozen=True)
class Retried:
    """Waiting bundles placed once a conflict went (a follow-up of another change)."""


@dataclass(frozen=True)
class Migrated:
    from_version: int
    to_version: int


Result = Applied | Deleted | RolledBack | DestinationSaved | DestinationDeleted | Retried | Migrated
