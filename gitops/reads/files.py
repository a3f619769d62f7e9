"""A commit's files as the read models give them: added, changed and removed, sorted, the
service's own records (`.statewriter/`) left out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gitops.layout import STATE
from gitops.store.base import FileChange

_KIND = {"A": "added", "M": "changed", "T": "changed", "D": "removed"}


@dataclass(frozen=True)
class Files:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def files_of(changes: Iterable[FileChange]) -> Files:
    found: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    for change in changes:
        if change.path == STATE or change.path.startswith(STATE + "/"):
            continue
        found[_KIND.get(change.status, "changed")].append(change.path)
    return Files(*(tuple(sorted(found[kind])) for kind in ("added", "changed", "removed")))
