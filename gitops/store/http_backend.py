"""The embedded store served over git's smart HTTP: `git http-backend` (CGI) run on the
store's own repository. What knows that repository's folder and the CGI variables git reads
is here; `app/http/githttp.py` does the HTTP around it (credentials, which paths, the body's
bound, streaming the answer, killing git when the client goes away)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import NamedTuple

from gitops.git.process import AsyncProcess, cgi_environment, spawned
from gitops.store.base import Store
from gitops.store.embedded import EmbeddedStore


class BackendRequest(NamedTuple):
    """What git http-backend needs of one HTTP request."""

    method: str
    path: str  # below the repository's URL: "info/refs", "git-upload-pack", "HEAD"
    query: str
    headers: Mapping[str, str]  # names in lower case, as ASGI gives them
    client: str  # the client's address, "" when unknown


class HttpBackend:
    """`git http-backend` over one bare repository, read as it is on disk."""

    def __init__(self, repository: Path) -> None:
        self._root = repository.resolve()

    def start(self, request: BackendRequest, *, max_body: int,
              head_limit: int) -> AbstractAsyncContextManager[AsyncProcess]:
        """git http-backend answering `request`: its stdin takes the request body, its stdout
        gives the CGI answer (`head_limit`: the longest line its reader takes). Killed, with
        what it started, when the block ends. git buffers up to one byte more than
        `max_body`, the body's bound the caller enforces, so that git never refuses first
        (it refuses a buffer that is full)."""
        return spawned(["git", "http-backend"], cgi_environment(self._variables(request, max_body)),
                       limit=head_limit)

    def _variables(self, request: BackendRequest, max_body: int) -> dict[str, str]:
        headers = request.headers
        variables = {
            "GIT_PROJECT_ROOT": str(self._root.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_HTTP_MAX_REQUEST_BUFFER": str(max_body + 1),
            "PATH_INFO": f"/{self._root.name}/{request.path}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query,
            "CONTENT_TYPE": headers.get("content-type", ""),
            "REMOTE_ADDR": request.client,
            "GIT_PROTOCOL": headers.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": headers.get("content-encoding", ""),
        }
        length = headers.get("content-length")
        if length is not None:  # else (chunked) git reads to the end of its input
            variables["CONTENT_LENGTH"] = length
        return variables


def http_backend(store: Store) -> HttpBackend:
    """The store's repository over HTTP: only the embedded store's is the published state
    (a remote store's folder is a cache; its remote serves the state)."""
    if not isinstance(store, EmbeddedStore):
        raise TypeError(f"only the embedded store serves git over HTTP, not {type(store).__name__}")
    return HttpBackend(store.path)
