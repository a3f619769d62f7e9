"""`X-Request-ID` on every answer: the client's own (when it is a sane token), else a new one.
Handlers find it in `request.state.request_id`, and logs name it."""

from __future__ import annotations

import re
import uuid

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value.decode("latin-1") for key, value in scope["headers"]
                      if key == HEADER.encode()), "")
        request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER.encode()]
                message["headers"] = [*headers, (HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette's own 500 is sent outside this middleware, without the id: answer here
            # (it sends nothing once an answer started) and let it log the traceback.
            if not started:
                await JSONResponse(internal_error(request_id), 500)(scope, receive, send_with_id)
            raise


def internal_error(request_id: str) -> dict[str, str]:
    """The body of an answer to an unexpected error."""
    return {"error": "InternalError",
            "message": "unexpected error; the service log has the details under request id "
                       f"{request_id}",
            "requestId": request_id}


def request_id_of(state: object) -> str | None:
    value = getattr(state, "request_id", None)
    return value if isinstance(value, str) else None
