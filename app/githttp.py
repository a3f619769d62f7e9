"""Read-only git smart HTTP for the embedded store, through `git http-backend` (CGI)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import Response

from app.auth import token_from_basic
from app.config import Config
from gitops.errors import Forbidden, Unauthorized

_ALLOWED = {"info/refs", "git-upload-pack", "HEAD"}


def mount_git(app: FastAPI, config: Config) -> None:
    root = (config.data / "state.git").resolve()

    @app.api_route("/git/state.git/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
    async def git_http(request: Request, rest: str) -> Response:
        try:
            token_from_basic(config, request.headers.get("authorization"))
        except Unauthorized as error:
            return Response(error.message, 401, {"WWW-Authenticate": 'Basic realm="statewriter"'})
        service = request.query_params.get("service")
        if rest not in _ALLOWED or (service and service != "git-upload-pack"):
            raise Forbidden("the state store is read-only over HTTP")
        body = await request.body()
        env = {
            "GIT_PROJECT_ROOT": str(root.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{root.name}/{rest}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": request.client.host if request.client else "",
            "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        }
        process = await asyncio.create_subprocess_exec(
            "git", "http-backend", env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate(body)
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers[key] = value.strip()
        headers.pop("Content-Length", None)
        return Response(payload, status, headers)
