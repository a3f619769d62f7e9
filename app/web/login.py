"""Signing in and out of the /ui pages with a form: the token is checked like the API's, and
the browser keeps a signed session value (never the token: `app.web.sessions`) in an
HttpOnly, SameSite=Strict cookie scoped to /ui (Secure over https or behind an https
`publicUrl`). The forms accept posts from this service's own pages only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.http.auth import authenticate
from app.http.bodies import read_body
from app.http.state import config_of
from app.web.access import COOKIE, Page, forget, secure
from app.web.render import PREFIX, render
from app.web.sessions import session_value
from gitops.errors import Forbidden, InvalidBundle, Unauthorized

MAX_LOGIN_BODY = 8192

router = APIRouter(route_class=Page)


def _safe_next(target: str | None) -> str:
    """Where a login goes on to: a page of ours, never another site."""
    if (not target or len(target) > 2000 or not target.startswith(PREFIX)
            or target[len(PREFIX):len(PREFIX) + 1] not in ("", "/", "?")
            or target.startswith(f"{PREFIX}/login") or "\\" in target
            or any(ord(c) < 32 or ord(c) == 127 for c in target)):
        return PREFIX
    return target


def _same_origin(request: Request) -> None:
    """Only this service's own pages may post its forms (the cookie is SameSite=Strict; this
    also keeps other sites from signing a browser in or out). Fails closed: a browser's
    fetch metadata says where a post comes from, else its Origin or Referer must be ours."""
    refused = Forbidden("this form only accepts posts from its own pages")
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise refused
        return
    claimed = request.headers.get("origin") or _origin_of(request.headers.get("referer"))
    if not claimed or claimed.lower() not in _own_origins(request):
        raise refused


def _origin_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _own_origins(request: Request) -> set[str]:
    """The origins this service's pages are served from: as this request reached it, and as
    `publicUrl` names it (behind a proxy the two differ)."""
    found = {f"{request.url.scheme}://{request.headers.get('host', '')}".lower()}
    public = _origin_of(config_of(request).public_url)
    if public:
        found.add(public.lower())
    return found


@router.get("/login")
async def login_form(request: Request, next: str | None = None, expired: bool = False) -> Response:
    if not config_of(request).auth_enabled:
        return RedirectResponse(_safe_next(next), status_code=303)
    message = "Your token is no longer valid: sign in again." if expired else None
    return await render(request, "login.html", None, title="Sign in", next=_safe_next(next),
                        error=message)


@router.post("/login")
async def login(request: Request) -> Response:
    _same_origin(request)
    config = config_of(request)
    fields = await _form(request)
    target = _safe_next(fields.get("next"))
    if not config.auth_enabled:
        return RedirectResponse(target, status_code=303)
    token = (fields.get("token") or "").strip()
    try:
        if not token or any(c.isspace() for c in token):
            raise Unauthorized("invalid token")
        session = session_value(authenticate(config, f"Bearer {token}"))
        if session is None:
            raise Unauthorized("invalid token")
    except Unauthorized:
        return await render(request, "login.html", None, 401, title="Sign in", next=target,
                            error="That token is not valid.")
    response = RedirectResponse(target, status_code=303)
    # No Max-Age: the cookie ends with the browser session, and the signed value with the
    # token it was signed by (app.web.sessions.SESSION_SECONDS at most)
    response.set_cookie(COOKIE, session, path=PREFIX, httponly=True,
                        samesite="strict", secure=secure(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    _same_origin(request)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    forget(request, response)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the login's two fields), read within a bound."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InvalidBundle("the form must be sent as application/x-www-form-urlencoded")
    body = await read_body(request, MAX_LOGIN_BODY)
    parsed = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=8)
    return {key: values[0] for key, values in parsed.items() if values}
