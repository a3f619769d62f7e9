"""Git-backed state stores: `open_store` picks the embedded or the remote one."""

from __future__ import annotations

from pathlib import Path

from gitops.store.base import Author, Store
from gitops.store.embedded import EmbeddedStore
from gitops.store.remote import Credentials, RemoteStore, redact

__all__ = [
    "Author",
    "Credentials",
    "EmbeddedStore",
    "RemoteStore",
    "Store",
    "open_store",
    "redact",
]


def open_store(
    data: Path, remote: str | None, branch: str = "main", credentials: Credentials | None = None
) -> Store:
    """The embedded store under `data` when there is no remote, else a cache of `remote`."""
    if remote is None:
        return EmbeddedStore(data / "state.git", branch)
    return RemoteStore(remote, data, branch, credentials)
