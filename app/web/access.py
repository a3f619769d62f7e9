"""Who looks at a /ui page, and how every page answers: `viewer` reads the caller's token
(HTTP Basic with the token as password, a bearer token, or the signed session cookie of the
login form); `Page` is the route class of every page, which turns a missing sign-in into the
login form, any refusal into an error page with the status the API gives, and adds the
security headers to every answer."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from app.http.auth import ANONYMOUS, Principal, authenticate, token_from_basic
from app.http.state import config_of
from app.web.render import PREFIX, error_page, refusal_page
from app.web.sessions import from_session
from gitops.errors import StatewriterError

COOKIE = "statewriter_ui"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginNeeded(Exception):
    """No credentials (or a cookie whose token is no longer valid): the login form."""

    def __init__(self, expired: bool) -> None:
        super().__init__("sign in")
        self.expired = expired


class Page(APIRoute):
    """Every /ui route answers HTML, also when it refuses: a login redirect, or an error
    page with the status the API would give; and every answer carries the headers above."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginNeeded as needed:
                response = to_login(request, needed.expired)
            except RequestValidationError:
                response = await error_page(request, 422, "Bad request",
                                            "A query parameter of this address is not valid.")
            except StatewriterError as error:
                response = await refusal_page(request, error)
            response.headers.update(SECURITY_HEADERS)
            return response

        return page


def is_page_address(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


async def unrouted_page(request: Request) -> Response:
    """What an address under /ui that no page serves answers: the pages' own error page."""
    response = await error_page(request, 404, "Not found", "No page is served at this address.")
    response.headers.update(SECURITY_HEADERS)
    return response


def viewer(request: Request) -> Principal:
    """The caller of a page: Authorization (Basic with the token as password, or Bearer)
    when sent, else the login cookie; neither is the login form. Kept on the request, so
    that an error page says who is signed in too."""
    principal = _caller(request)
    request.state.ui_viewer = principal
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


def _caller(request: Request) -> Principal:
    config = config_of(request)
    if config.tokens is None:
        return Principal(ANONYMOUS, None)
    header = request.headers.get("authorization")
    if header:
        if header.lower().startswith("basic "):
            return token_from_basic(config, header)
        return authenticate(config, header)
    value = request.cookies.get(COOKIE)
    if not value:
        raise LoginNeeded(expired=False)
    principal = from_session(config, value)
    if principal is None:  # expired, or its token rotated or removed
        raise LoginNeeded(expired=True)
    return principal


def to_login(request: Request, expired: bool) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PREFIX}/login?next={quote(target, safe='/')}"
    if expired:
        location += "&expired=1"
    response = RedirectResponse(location, status_code=303)
    if expired:
        forget(request, response)
    return response


def secure(request: Request) -> bool:
    """Whether the cookie is `Secure`: over https, and whenever the service's public URL is
    https (a proxy in front ended TLS, so the request itself came as http)."""
    public = config_of(request).public_url or ""
    return request.url.scheme == "https" or public.lower().startswith("https://")


def forget(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, secure=secure(request), httponly=True,
                           samesite="strict")
