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
    data: Path,
    remote: str | None,
    branch: str = "main",
    credentials: Credentials | None = None,
    timeout: float | None = None,
) -> Store:
    """The embedded store under `data` when there is no remote, else a cache of `remote`
    whose pushes and fetches are abandoned after `timeout` seconds (None: RemoteStore's)."""
    if remote is None:
        return EmbeddedStore(data / "state.git", branch)
    if timeout is None:
        return RemoteStore(remote, data, branch, credentials)
    return RemoteStore(remote, data, branch, credentials, timeout=timeout)
