"""Read-only web pages at /ui (docs/reference.md section 10): server-rendered with Jinja2, no
JavaScript, no asset from elsewhere, the same tokens as the API.

A browser signs in with a form that leaves a signed session value (never the token: see
`app.web.sessions.session_value`) in an HttpOnly, SameSite=Strict cookie scoped to /ui (Secure over
https or behind an https `publicUrl`); the forms accept posts from this service's own pages
only. Any client may also send its token as HTTP Basic (the token as password, as /git
takes it) or as a bearer token. The pages read the same fresh snapshot as
the /v1 GETs; commits are read with git, the store's one way, bounded in time and size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup, escape
from starlette.datastructures import State

from app.http.answers import error_status
from app.http.auth import ANONYMOUS, Principal, authenticate, token_from_basic
from app.http.refused import recent
from app.http.state import config_of, snapshot
from app.version import VERSION
from app.web.sessions import from_session, session_value
from gitops.errors import (
    Forbidden,
    InvalidBundle,
    LimitExceeded,
    NotFound,
    StatewriterError,
    Unauthorized,
)
from gitops.owner import Owner
from gitops.reads.commits import MAX_DIFF_BYTES, MAX_DIFF_FILES, MAX_DIFF_LINES, MAX_STAT_FILES, commit_view
from gitops.reads.history import request_history
from gitops.reads.requests import RequestState, request_state
from gitops.reads.summaries import Summaries, consistent, dependency_rows

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
COOKIE = "statewriter_ui"
PREFIX = "/ui"

REQUESTS_PER_PAGE = 200
MAX_HISTORY = 200
MAX_STATUS_CHARS = 20_000
MAX_LOGIN_BODY = 8192

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class _LoginNeeded(Exception):
    """No credentials (or a cookie whose token is no longer valid): the login form."""

    def __init__(self, expired: bool) -> None:
        super().__init__("sign in")
        self.expired = expired


class _Page(APIRoute):
    """Every /ui route answers HTML, also when it refuses: a login redirect, or an error
    page with the status the API would give; and every answer carries the headers above."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except _LoginNeeded as needed:
                response = _to_login(request, needed.expired)
            except RequestValidationError:
                response = await _error_page(request, 422, "Bad request",
                                             "A query parameter of this address is not valid.")
            except StatewriterError as error:
                response = await _refusal_page(request, error)
            response.headers.update(SECURITY_HEADERS)
            return response

        return page


router = APIRouter(prefix=PREFIX, route_class=_Page, include_in_schema=False)


def static_files() -> StaticFiles:
    """The stylesheet, mounted at /ui/static (no token needed: the login page uses it)."""
    return StaticFiles(directory=STATIC)


# -- templates ----------------------------------------------------------------------------------


def _number(value: int) -> str:
    return f"{value:,}"


def _when(value: str | datetime | None) -> str:
    """A time in UTC as the tables show it (their headings say UTC)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.replace("T", " ").removesuffix("Z")


def _path(value: str) -> Markup:
    """A repository path that a narrow column breaks after its slashes, not in a name."""
    return Markup("/<wbr>").join(escape(part) for part in value.split("/"))


def _request_url(promise: str, namespace: str, name: str) -> str:
    return f"{PREFIX}/promises/{quote(promise, safe='')}/requests/{quote(namespace, safe='')}/" \
           f"{quote(name, safe='')}"


def _owner_url(owner: Owner) -> str:
    if owner.is_promise_level:
        return f"{PREFIX}/promises/{quote(owner.promise, safe='')}"
    return _request_url(owner.promise, owner.namespace, owner.name)


def _destination_url(name: str) -> str:
    return f"{PREFIX}/destinations/{quote(name, safe='')}"


def _commit_url(sha: str) -> str:
    return f"{PREFIX}/commits/{quote(sha, safe='')}"


def _state_class(state: str | None) -> str:
    return {"Scheduled": "ok", "Pending": "warn"}.get(state or "", "muted")


def _status_class(status: int) -> str:
    if status >= 500:
        return "bad"
    return {409: "warn", 403: "muted", 413: "warn"}.get(status, "bad")


def _status_text(status: dict[str, Any] | None) -> str:
    """A pipeline's status as indented JSON, bounded."""
    text = json.dumps(status, indent=2, sort_keys=True, ensure_ascii=False) if status else ""
    if len(text) > MAX_STATUS_CHARS:
        text = text[:MAX_STATUS_CHARS] + "\n… (cut: the status is longer)"
    return text


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # everything a client named (labels, paths, reasons) is text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(number=_number, when=_when, path=_path, short=lambda sha: (sha or "")[:12],
                    status_text=_status_text,
                    state_class=_state_class, status_class=_status_class)
_ENV.globals.update(request_url=_request_url, owner_url=_owner_url,
                    destination_url=_destination_url, commit_url=_commit_url, version=VERSION,
                    prefix=PREFIX)


async def _render(request: Request, template: str, who: Principal | None,
                  status: int = 200, **context: Any) -> HTMLResponse:
    config = config_of(request)
    page = _ENV.get_template(template)
    values = {"who": who, "auth": config.auth_enabled, "title": "", "here": "", "crumbs": [],
              "nav": "", "tip": None, **context}
    text = await run_in_threadpool(page.render, values)
    return HTMLResponse(text, status_code=status)


async def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return await _render(request, "error.html", None, status, title=title, code=status,
                         message=message)


_TITLES = {401: "Sign-in needed", 403: "Not allowed", 404: "Not found", 413: "Too large",
           503: "The state store cannot be read now"}


async def _refusal_page(request: Request, error: StatewriterError) -> Response:
    status = error_status(error)  # the one table the API answers by, too
    response = await _error_page(request, status, _TITLES.get(status, "Bad request"),
                                 error.message)
    if status == 401:
        scheme = "Bearer" if (request.headers.get("authorization") or "").lower().startswith(
            "bearer ") else "Basic"
        response.headers["WWW-Authenticate"] = f'{scheme} realm="statewriter"'
    return response


# -- who is looking -----------------------------------------------------------------------------


def viewer(request: Request) -> Principal:
    """The caller of a page: Authorization (Basic with the token as password, or Bearer)
    when sent, else the login cookie; neither is the login form."""
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
        raise _LoginNeeded(expired=False)
    principal = from_session(config, value)
    if principal is None:  # expired, or its token rotated or removed
        raise _LoginNeeded(expired=True)
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


def _to_login(request: Request, expired: bool) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PREFIX}/login?next={quote(target, safe='/')}"
    if expired:
        location += "&expired=1"
    response = RedirectResponse(location, status_code=303)
    if expired:
        _forget(request, response)
    return response


def _safe_next(target: str | None) -> str:
    """Where a login goes on to: a page of ours, never another site."""
    if (not target or len(target) > 2000 or not target.startswith(PREFIX)
            or target[len(PREFIX):len(PREFIX) + 1] not in ("", "/", "?")
            or target.startswith(f"{PREFIX}/login") or "\\" in target
            or any(ord(c) < 32 or ord(c) == 127 for c in target)):
        return PREFIX
    return target


def _secure(request: Request) -> bool:
    """Whether the cookie is `Secure`: over https, and whenever the service's public URL is
    https (a proxy in front ended TLS, so the request itself came as http)."""
    public = config_of(request).public_url or ""
    return request.url.scheme == "https" or public.lower().startswith("https://")


def _forget(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, secure=_secure(request), httponly=True,
                           samesite="strict")


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
    return await _render(request, "login.html", None, title="Sign in", next=_safe_next(next),
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
        return await _render(request, "login.html", None, 401, title="Sign in", next=target,
                             error="That token is not valid.")
    response = RedirectResponse(target, status_code=303)
    # No Max-Age: the cookie ends with the browser session, and the signed value with the
    # token it was signed by (app.web.sessions.SESSION_SECONDS at most)
    response.set_cookie(COOKIE, session, path=PREFIX, httponly=True,
                        samesite="strict", secure=_secure(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    _same_origin(request)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    _forget(request, response)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the login's two fields), read within a bound."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InvalidBundle("the form must be sent as application/x-www-form-urlencoded")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_LOGIN_BODY:
            raise LimitExceeded(f"the form is over {MAX_LOGIN_BODY} bytes")
        chunks.append(chunk)
    parsed = parse_qs(b"".join(chunks).decode("utf-8", errors="replace"), max_num_fields=8)
    return {key: values[0] for key, values in parsed.items() if values}


def _summaries(state: State) -> Summaries:
    found = getattr(state, "ui_summaries", None)
    if not isinstance(found, Summaries):
        found = state.ui_summaries = Summaries()
    return found


_SHA = re.compile(r"[0-9a-f]{4,40}")


# -- pages --------------------------------------------------------------------------------------


@router.get("")
async def home(request: Request, who: Viewer) -> Response:
    tip, index, _ = await snapshot(request)
    summary = await run_in_threadpool(_summaries(request.app.state).get, tip, index)
    return await _render(request, "index.html", who, title="Destinations", tip=tip,
                         summary=summary, refused=len(recent(request.app.state)),
                         nav="destinations")


@router.get("/destinations/{name}")
async def destination_page(
    request: Request, who: Viewer, name: str,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    tip, index, _ = await snapshot(request)
    summary = await run_in_threadpool(_summaries(request.app.state).get, tip, index)
    view = summary.destinations.get(name)
    if view is None:
        raise NotFound(f"There is no destination {name!r}.")
    dependencies = await run_in_threadpool(consistent, lambda: dependency_rows(index, view))
    pages = max(1, -(-len(view.requests) // REQUESTS_PER_PAGE))
    page = min(page, pages)
    start = (page - 1) * REQUESTS_PER_PAGE
    return await _render(
        request, "destination.html", who, title=f"Destination {name}", tip=tip, view=view,
        dependencies=dependencies, requests=view.requests[start:start + REQUESTS_PER_PAGE],
        page=page, pages=pages, first=start + 1,
        crumbs=[("Destinations", PREFIX)], here=name, nav="destinations",
    )


@router.get("/promises/{promise}/requests/{namespace}/{name}")
async def request_page(request: Request, who: Viewer, promise: str, namespace: str,
                       name: str) -> Response:
    tip, index, _ = await snapshot(request)
    records = index.request_owners(promise, namespace, name)
    state = request_state(tip, index, records) if records else None
    history = await run_in_threadpool(request_history, request.app.state.writer.store, tip,
                                      promise, namespace, name)
    refusals = [r for r in recent(request.app.state).newest_first()
                if r.promise == promise and r.request == f"{namespace}/{name}"]
    if state is None and not history and not refusals:
        raise NotFound(f"Request {namespace}/{name} of promise {promise} is not stored, "
                       "and no commit names it.")
    return await _render(
        request, "request.html", who, title=f"{namespace}/{name}", tip=tip, promise=promise,
        namespace=namespace, name=name, state=state, history=history[:MAX_HISTORY],
        more_history=max(0, len(history) - MAX_HISTORY),
        refusals=refusals, crumbs=_request_crumbs(state), nav="destinations",
    )


@router.get("/promises/{promise}")
async def promise_page(request: Request, who: Viewer, promise: str) -> Response:
    tip, index, _ = await snapshot(request)
    records = index.request_owners(promise)
    if not records:
        raise NotFound(f"Promise {promise} has no promise-level bundles stored.")
    return await _render(
        request, "request.html", who, title=f"Promise {promise}", tip=tip, promise=promise,
        namespace="", name="", state=request_state(tip, index, records), history=[],
        more_history=0, refusals=[], crumbs=_request_crumbs(None), nav="destinations",
    )


def _request_crumbs(state: RequestState | None) -> list[tuple[str, str]]:
    crumbs = [("Destinations", PREFIX)]
    if state is not None and len(state.destinations) == 1:
        crumbs.append((state.destinations[0], _destination_url(state.destinations[0])))
    return crumbs


@router.get("/refused")
async def refused_page(request: Request, who: Viewer) -> Response:
    found = recent(request.app.state)
    return await _render(request, "refused.html", who, title="Refused bundles",
                         refused=found.newest_first(), keep=found.keep,
                         crumbs=[("Destinations", PREFIX)], nav="refused")


# -- one commit ---------------------------------------------------------------------------------


@router.get("/commits/{sha}")
async def commit_page(request: Request, who: Viewer, sha: str) -> Response:
    if not _SHA.fullmatch(sha):
        raise NotFound(f"{sha!r} is not a commit id.")
    tip, _, _ = await snapshot(request)
    if tip is None:
        raise NotFound("The state store has no commits yet.")
    commit = await run_in_threadpool(commit_view, request.app.state.writer.store, tip, sha)
    crumbs = [("Destinations", PREFIX)]
    crumbs.extend((f"{ns}/{name}", _request_url(promise, ns, name))
                  for promise, ns, name in commit.requests[:1])
    return await _render(request, "commit.html", who, title=f"Commit {commit.sha[:12]}",
                         tip=tip, commit=commit, crumbs=crumbs, limits={
                             "files": MAX_DIFF_FILES, "lines": MAX_DIFF_LINES,
                             "stat": MAX_STAT_FILES, "kib": MAX_DIFF_BYTES // 1024},
                         nav="destinations")

