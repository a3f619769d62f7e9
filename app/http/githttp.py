"""Read-only git smart HTTP for the embedded store, through `git http-backend` (CGI).

Credentials are checked before any of the request body is read. The body is fed to git as
it arrives, at most MAX_BODY bytes (413 past it), and git's answer is streamed back; git is
killed (with what it started) when the client goes away."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from app.config import Config
from app.http.answers import error_body
from app.http.auth import token_from_basic
from gitops.errors import Forbidden, LimitExceeded, Unauthorized
from gitops.git.process import AsyncProcess, kill_group
from gitops.store.http_backend import BackendRequest, HttpBackend

_ALLOWED = {"info/refs", "git-upload-pack", "HEAD"}
# An upload-pack request is wants and haves: a few KiB to a few MiB. This is also git's own
# default for the request it buffers in memory (GIT_HTTP_MAX_REQUEST_BUFFER), which the
# backend sets one byte above it so that git never refuses first: it refuses a buffer that
# is full.
MAX_BODY = 10 * 1024 * 1024
_CHUNK = 64 * 1024
_MAX_CGI_HEAD = 64 * 1024

log = logging.getLogger("statewriter.git")


def mount_git(app: FastAPI, config: Config, backend: HttpBackend) -> None:
    """`/git/state.git/`: the embedded store's repository, which `backend` runs git on."""

    @app.api_route("/git/state.git/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    async def git_http(request: Request, rest: str) -> Response:
        try:
            token_from_basic(config, request.headers.get("authorization"))
        except Unauthorized as error:
            return Response(error.message, 401, {"WWW-Authenticate": 'Basic realm="statewriter"'})
        service = request.query_params.get("service")
        if rest not in _ALLOWED or (service and service != "git-upload-pack"):
            raise Forbidden("the state store is read-only over HTTP")
        length = request.headers.get("content-length")
        if length is not None and int(length) > MAX_BODY:
            raise LimitExceeded(f"request body over {MAX_BODY} bytes", limit=MAX_BODY)
        client = request.client.host if request.client else ""
        cgi = BackendRequest(request.method, rest, request.url.query, request.headers, client)
        return GitBackendAnswer(backend, cgi)


class GitBackendAnswer(Response):
    """What `git http-backend` answers, streamed. It plays the ASGI conversation itself
    because the request body is read while the answer is written: one task alone reads
    `receive` (the body into git, then the client's going away), where Starlette's
    StreamingResponse would read it too, to watch for a disconnect."""

    def __init__(self, backend: HttpBackend, request: BackendRequest) -> None:
        super().__init__()
        self.backend = backend
        self.request = request
        self.too_large = False
        self.body_read = asyncio.Event()  # all of it, or too much, or the client has gone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # git and all it started are killed together when this block ends, however it ends
        started = self.backend.start(self.request, max_body=MAX_BODY, head_limit=_MAX_CGI_HEAD)
        async with started as process:
            feeder = asyncio.create_task(self._feed(receive, process))
            try:
                await self._answer(scope, receive, send, process)
            finally:
                feeder.cancel()
        if self.background is not None:
            await self.background()

    async def _feed(self, receive: Receive, process: AsyncProcess) -> None:
        """Pipe the request body into git, then wait for the client to go away. Kills git
        when the body is over MAX_BODY (git then never sees its end) or the client leaves."""
        stdin = process.stdin
        received = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                body: bytes = message.get("body", b"")
                received += len(body)
                if received > MAX_BODY:
                    self.too_large = True
                    break
                more = message.get("more_body", False)
                if stdin is not None:
                    try:
                        stdin.write(body)
                        await stdin.drain()
                        if not more:
                            stdin.close()
                            stdin = None
                    except ConnectionError:
                        stdin = None  # git has stopped reading: it answers without the rest
                if not more:
                    self.body_read.set()
        finally:
            self.body_read.set()
            kill_group(process)

    async def _answer(self, scope: Scope, receive: Receive, send: Send,
                      process: AsyncProcess) -> None:
        assert process.stdout is not None
        stdout = process.stdout
        try:
            head: bytes | None = await stdout.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            head = None
        # http-backend writes its CGI head before reading the body; what follows comes once
        # git has read all of it. So the answer starts only then: a body over the limit
        # ends git before that, and can still be answered 413.
        chunk = await stdout.read(_CHUNK) if head is not None else b""
        if not chunk:
            await self.body_read.wait()  # git ended first: the body's size decides
        if self.too_large:
            refusal = LimitExceeded(f"request body over {MAX_BODY} bytes", limit=MAX_BODY)
            await JSONResponse(error_body(refusal), 413)(scope, receive, send)
            return
        if head is None:
            kill_group(process)
            log.warning("git http-backend gave no answer (exit status %s)", await process.wait())
            failure = {"error": "GitBackendFailed", "message": "git http-backend gave no answer"}
            await JSONResponse(failure, 502)(scope, receive, send)
            return
        status, headers = _cgi_head(head)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        while chunk:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            chunk = await stdout.read(_CHUNK)
        if self.too_large:
            return  # cut short: uvicorn closes the connection without ending the answer
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _cgi_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    status, headers = 200, []
    for line in head.decode("latin-1").split("\r\n"):
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        elif key and key.lower() != "content-length":  # the answer is sent chunked
            headers.append((key.lower().encode("latin-1"), value.strip().encode("latin-1")))
    return status, headers
