"""Git-backed state stores: `open_store` picks the embedded or the remote one."""

from __future__ import annotations

from pathlib import Path

from gitops.errors import NotFound
from gitops.redact import redact
from gitops.store.base import DEFAULT_BRANCH, Author, Store
from gitops.store.embedded import EmbeddedStore
from gitops.store.githubapp import USERNAME as GITHUB_APP_USERNAME
from gitops.store.githubapp import GitHubApp, InstallationTokens
from gitops.store.lock import lock_data_folder
from gitops.store.remote import Credentials, RemoteStore
from gitops.store.signing import Signer

__all__ = [
    "Author",
    "Credentials",
    "EmbeddedStore",
    "GitHubApp",
    "RemoteStore",
    "Store",
    "open_existing_store",
    "open_store",
    "redact",
]

EMBEDDED_REPOSITORY = "state.git"  # the embedded store, under the data folder


def open_store(
    data: Path,
    remote: str | None,
    branch: str = DEFAULT_BRANCH,
    credentials: Credentials | None = None,
    timeout: float | None = None,
    github_app: GitHubApp | None = None,
    signer: Signer | None = None,
) -> Store:
    """The embedded store under `data` when there is no remote, else a cache of `remote`
    whose pushes and fetches are abandoned after `timeout` seconds (None: RemoteStore's),
    authenticated by `credentials` or by installation tokens of `github_app` (minted at the
    first fetch, then whenever the one cached is about to expire).
    Every commit it writes is signed by `signer` (closed with the store).
    The data folder is locked for the store's life: one service per folder."""
    if credentials is not None and github_app is not None:
        raise ValueError("give credentials or a GitHub App, not both")
    lock = lock_data_folder(data)
    try:
        store: EmbeddedStore | RemoteStore
        if remote is not None and github_app is not None:
            tokens = (InstallationTokens(github_app) if timeout is None
                      else InstallationTokens(github_app, timeout=timeout))
            credentials = Credentials(username=GITHUB_APP_USERNAME, token_source=tokens)
        if remote is None:
            store = EmbeddedStore(data / EMBEDDED_REPOSITORY, branch)
        elif timeout is None:
            store = RemoteStore(remote, data, branch, credentials)
        else:
            store = RemoteStore(remote, data, branch, credentials, timeout=timeout)
    except BaseException:
        lock.close()
        if signer is not None:
            signer.close()
        raise
    store.hold(lock)
    store.signer = signer
    return store


def open_existing_store(data: Path, branch: str = DEFAULT_BRANCH,
                        signer: Signer | None = None) -> Store:
    """The embedded store a service keeps under `data`, opened and locked as `open_store`
    opens it for the service (FolderInUse while a service holds it); NotFound, with nothing
    created, when `data` holds none."""
    if not (data / EMBEDDED_REPOSITORY / "HEAD").is_file():
        raise NotFound(f"{data} holds no embedded state store: give the data folder of a "
                       "service without a remote")
    return open_store(data, None, branch, signer=signer)
