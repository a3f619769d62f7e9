"""Read-only web pages at /ui (CONTRACT section 10): server-rendered with Jinja2, no
JavaScript, no asset from elsewhere, the same tokens as the API.

A browser signs in with a form that leaves a signed session value (never the token: see
`app.auth.session_value`) in an HttpOnly, SameSite=Strict cookie scoped to /ui (Secure over
https or behind an https `publicUrl`); the forms accept posts from this service's own pages
only. Any client may also send its token as HTTP Basic (the token as password, as /git
takes it) or as a bearer token. The pages read the same fresh snapshot as
the /v1 GETs; commits are read with git, the store's one way, bounded in time and size.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
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

from app.api import _snapshot, owner_state
from app.auth import ANONYMOUS, Principal, authenticate, from_session, session_value, token_from_basic
from app.config import Config
from app.refused import recent
from app.version import VERSION
from gitops import layout
from gitops.commitmsg import parse_trailers, trailer_pairs
from gitops.errors import (
    Forbidden,
    InvalidBundle,
    LimitExceeded,
    NotFound,
    StatewriterError,
    StoreUnavailable,
    Unauthorized,
    YamlError,
)
from gitops.history import request_history
from gitops.identity import CRD_KIND, Identity
from gitops.index import Holders, Index, ObjectKey
from gitops.owner import Owner
from gitops.secrets import is_secret_document
from gitops.store.objects import CatFile, base_env, run_git
from gitops.yamldocs import ParseLimits, load_documents

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
COOKIE = "statewriter_ui"
PREFIX = "/ui"

REQUESTS_PER_PAGE = 200
OWNERS_SHOWN = 6  # owners listed per dependency; the rest are counted
MAX_DEPENDENCIES = 2000
MAX_HISTORY = 200
MAX_STATUS_CHARS = 20_000
MAX_LOGIN_BODY = 8192
# The commit page: git's answers are bounded in time, and what is shown in size.
GIT_TIMEOUT = 30.0
MAX_STAT_FILES = 1000
MAX_DIFF_FILES = 100
MAX_DIFF_LINES = 5000  # changed lines (numstat) of the files whose diff is shown
MAX_DIFF_BYTES = 512 * 1024

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
                response = await _error_page(request, 400, "Bad request",
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


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # everything a client named (labels, paths, reasons) is text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(number=_number, when=_when, path=_path, short=lambda sha: (sha or "")[:12],
                    state_class=_state_class, status_class=_status_class)
_ENV.globals.update(request_url=_request_url, owner_url=_owner_url,
                    destination_url=_destination_url, commit_url=_commit_url, version=VERSION,
                    prefix=PREFIX)


async def _render(request: Request, template: str, who: Principal | None,
                  status: int = 200, **context: Any) -> HTMLResponse:
    config = _config(request)
    page = _ENV.get_template(template)
    values = {"who": who, "auth": config.auth_enabled, "title": "", "here": "", "crumbs": [],
              "nav": "", "tip": None, **context}
    text = await run_in_threadpool(page.render, values)
    return HTMLResponse(text, status_code=status)


async def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return await _render(request, "error.html", None, status, title=title, code=status,
                         message=message)


async def _refusal_page(request: Request, error: StatewriterError) -> Response:
    titles: list[tuple[type[StatewriterError], int, str]] = [
        (Unauthorized, 401, "Sign-in needed"), (Forbidden, 403, "Not allowed"),
        (NotFound, 404, "Not found"), (StoreUnavailable, 503, "The state store cannot be read now"),
        (LimitExceeded, 413, "Too large"), (InvalidBundle, 400, "Bad request"),
    ]
    status, title = next(((s, t) for kind, s, t in titles if isinstance(error, kind)),
                         (400, "Bad request"))
    response = await _error_page(request, status, title, error.message)
    if status == 401:
        scheme = "Bearer" if (request.headers.get("authorization") or "").lower().startswith(
            "bearer ") else "Basic"
        response.headers["WWW-Authenticate"] = f'{scheme} realm="statewriter"'
    return response


# -- who is looking -----------------------------------------------------------------------------


def _config(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


def viewer(request: Request) -> Principal:
    """The caller of a page: Authorization (Basic with the token as password, or Bearer)
    when sent, else the login cookie; neither is the login form."""
    config = _config(request)
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
    public = _config(request).public_url or ""
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
    public = _origin_of(_config(request).public_url)
    if public:
        found.add(public.lower())
    return found


@router.get("/login")
async def login_form(request: Request, next: str | None = None, expired: bool = False) -> Response:
    if not _config(request).auth_enabled:
        return RedirectResponse(_safe_next(next), status_code=303)
    message = "Your token is no longer valid: sign in again." if expired else None
    return await _render(request, "login.html", None, title="Sign in", next=_safe_next(next),
                         error=message)


@router.post("/login")
async def login(request: Request) -> Response:
    _same_origin(request)
    config = _config(request)
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
    # token it was signed by (app.auth.SESSION_SECONDS at most)
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


# -- what the index holds, per destination ---------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    promise: str
    namespace: str
    name: str
    pipelines: tuple[str, ...]
    state: str
    destinations: tuple[str, ...]
    reason: str | None
    objects: int


@dataclass
class DestinationView:
    destination: layout.Destination
    requests: list[RequestRow] = field(default_factory=list)
    dependencies: list[Identity] = field(default_factory=list)
    resources: int = 0
    promise_level: list[Owner] = field(default_factory=list)


@dataclass
class Summary:
    destinations: dict[str, DestinationView]
    pending: list[RequestRow]
    requests: int


@dataclass(frozen=True)
class DependencyRow:
    identity: Identity
    path: str
    owners: tuple[Owner, ...]  # the first few: promise-level bundles first
    count: int  # all its owners
    requests: int  # how many of them are requests


T = TypeVar("T")


def _consistent(read: Callable[[], T]) -> T:
    """`read()` over the live index, again when the lane changed a map under it (the index
    is published in place; a page is built from it while writes go on)."""
    for attempt in itertools.count():
        try:
            return read()
        except RuntimeError:  # "changed size during iteration"
            if attempt >= 4:
                raise StoreUnavailable("the state kept changing while this page was built; "
                                       "reload it") from None
    raise AssertionError("unreachable")


class _Summaries:
    """The summary of the last tip asked for: built once per change of the branch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str | None, int] | None = None
        self._summary: Summary | None = None

    def get(self, tip: str | None, index: Index) -> Summary:
        with self._lock:
            key = (tip, id(index))
            if self._summary is None or self._key != key:
                self._summary = _consistent(lambda: _summarise(index))
                self._key = key
            return self._summary


def _summaries(state: State) -> _Summaries:
    found = getattr(state, "ui_summaries", None)
    if not isinstance(found, _Summaries):
        found = state.ui_summaries = _Summaries()
    return found


def _summarise(index: Index) -> Summary:
    views = {name: DestinationView(d) for name, d in index.destinations.items()}
    pending: list[RequestRow] = []
    requests = 0
    for (promise, namespace, name), owners in index.requests.items():
        records = [r for r in (index.owners.get(o) for o in owners) if r is not None]
        if not records:
            continue
        if not name:  # promise-level bundles: owners of what they place
            for record in records:
                for destination in record.destinations:
                    if destination in views:
                        views[destination].promise_level.append(record.owner)
            continue
        requests += 1
        placed = tuple(sorted({d for r in records for d in r.destinations}))
        row = RequestRow(
            promise, namespace, name, tuple(r.owner.pipeline for r in records),
            "Scheduled" if all(r.destinations for r in records) else "Pending",
            placed, next((r.pending_reason for r in records if r.pending_reason), None),
            sum(len(holds) for r in records for holds in r.objects.values()),
        )
        if not placed:
            pending.append(row)
        for destination in placed:
            if destination in views:
                views[destination].requests.append(row)
    for key, holders in index.objects.items():
        view = views.get(key.destination)
        if view is None:
            continue
        if holders.section == layout.DEPENDENCIES:
            view.dependencies.append(key.identity)
        else:
            view.resources += 1
    def order(row: RequestRow) -> tuple[str, str, str]:
        return row.promise, row.namespace, row.name

    for view in views.values():
        view.requests.sort(key=order)
        view.dependencies.sort(key=_dependency_order)
        view.promise_level.sort()
    pending.sort(key=order)
    return Summary(dict(sorted(views.items())), pending, requests)


def _dependency_order(identity: Identity) -> tuple[int, str, str, str, str]:
    # CRDs first, then namespaces: the order Flux applies them in, and what is looked for
    rank = {CRD_KIND: 0, "Namespace": 1}.get(identity.kind, 2)
    return rank, identity.kind, identity.namespace, identity.name, identity.group


def _dependency_rows(index: Index, view: DestinationView) -> list[DependencyRow]:
    rows = []
    for identity in view.dependencies[:MAX_DEPENDENCIES]:
        holders = index.objects.get(ObjectKey(view.destination.name, identity))
        if holders is None:
            continue
        rows.append(_dependency_row(view.destination, identity, holders))
    return rows


def _dependency_row(destination: layout.Destination, identity: Identity,
                    holders: Holders) -> DependencyRow:
    promise_level: list[Owner] = []
    some_requests: list[Owner] = []
    requests = 0
    for owner in holders:
        if owner.is_promise_level:
            promise_level.append(owner)
        else:
            requests += 1
            if len(some_requests) < OWNERS_SHOWN:
                some_requests.append(owner)
    shown = (sorted(promise_level) + sorted(some_requests))[:OWNERS_SHOWN]
    path = layout.object_path(destination, layout.DEPENDENCIES, identity, holders)
    return DependencyRow(identity, path, tuple(shown), len(holders), requests)


# -- pages --------------------------------------------------------------------------------------


@router.get("")
async def home(request: Request, who: Viewer) -> Response:
    tip, index, _ = await _snapshot(request)
    summary = await run_in_threadpool(_summaries(request.app.state).get, tip, index)
    return await _render(request, "index.html", who, title="Destinations", tip=tip,
                         summary=summary, refused=len(recent(request.app.state)),
                         nav="destinations")


@router.get("/destinations/{name}")
async def destination_page(
    request: Request, who: Viewer, name: str,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    tip, index, _ = await _snapshot(request)
    summary = await run_in_threadpool(_summaries(request.app.state).get, tip, index)
    view = summary.destinations.get(name)
    if view is None:
        raise NotFound(f"There is no destination {name!r}.")
    dependencies = await run_in_threadpool(_consistent, lambda: _dependency_rows(index, view))
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
    tip, index, _ = await _snapshot(request)
    records = index.request_owners(promise, namespace, name)
    state = owner_state(tip, index, records) if records else None
    history: list[dict[str, Any]] = []
    if tip is not None:
        history = await run_in_threadpool(
            request_history, request.app.state.writer.store.path, tip, promise, namespace, name)
    refusals = [r for r in recent(request.app.state).newest_first()
                if r.promise == promise and r.request == f"{namespace}/{name}"]
    if state is None and not history and not refusals:
        raise NotFound(f"Request {namespace}/{name} of promise {promise} is not stored, "
                       "and no commit names it.")
    return await _render(
        request, "request.html", who, title=f"{namespace}/{name}", tip=tip, promise=promise,
        namespace=namespace, name=name, state=state, pipelines=_pipelines(state),
        objects=_object_count(state), history=history[:MAX_HISTORY],
        more_history=max(0, len(history) - MAX_HISTORY),
        refusals=refusals, crumbs=_request_crumbs(state), nav="destinations",
    )


@router.get("/promises/{promise}")
async def promise_page(request: Request, who: Viewer, promise: str) -> Response:
    tip, index, _ = await _snapshot(request)
    records = index.request_owners(promise)
    if not records:
        raise NotFound(f"Promise {promise} has no promise-level bundles stored.")
    state = owner_state(tip, index, records)
    return await _render(
        request, "request.html", who, title=f"Promise {promise}", tip=tip, promise=promise,
        namespace="", name="", state=state, pipelines=_pipelines(state),
        objects=_object_count(state), history=[],
        more_history=0, refusals=[], crumbs=_request_crumbs(state), nav="destinations",
    )


def _pipelines(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The state's pipelines with their status as indented JSON, bounded."""
    found = []
    for pipeline in (state or {}).get("pipelines", []):
        status = pipeline.get("status")
        text = json.dumps(status, indent=2, sort_keys=True, ensure_ascii=False) if status else ""
        if len(text) > MAX_STATUS_CHARS:
            text = text[:MAX_STATUS_CHARS] + "\n… (cut: the status is longer)"
        found.append({**pipeline, "status_text": text})
    return found


def _object_count(state: dict[str, Any] | None) -> int:
    return sum(len(p["objects"]) for p in (state or {}).get("pipelines", []))


def _request_crumbs(state: dict[str, Any] | None) -> list[tuple[str, str]]:
    crumbs = [("Destinations", PREFIX)]
    destinations = (state or {}).get("destinations") or []
    if len(destinations) == 1:
        crumbs.append((destinations[0], _destination_url(destinations[0])))
    return crumbs


@router.get("/refused")
async def refused_page(request: Request, who: Viewer) -> Response:
    found = recent(request.app.state)
    return await _render(request, "refused.html", who, title="Refused bundles",
                         refused=found.newest_first(), keep=found.keep,
                         crumbs=[("Destinations", PREFIX)], nav="refused")


# -- one commit ---------------------------------------------------------------------------------


_SHA = re.compile(r"[0-9a-f]{4,40}")
_HIDDEN_NOTE = {
    "bundles": "pending bundle documents under .statewriter/bundles/",
    "secret": "Secret objects",
    "unreadable": "files that cannot be read as YAML (a Secret may be in them)",
}
_NO_BLOB = "0" * 40
_PAGE_LIMITS = ParseLimits(max_depth=256, max_nodes=1_000_000, max_documents=1000)


@dataclass(frozen=True)
class StatLine:
    path: str
    added: int | None  # None: binary
    removed: int | None
    hidden: str | None  # why its diff is not shown here (a secret may be in it)

    @property
    def bar(self) -> tuple[int, int]:
        """git's +/- bar, at most 40 wide."""
        added, removed = self.added or 0, self.removed or 0
        total = added + removed
        if total <= 40:
            return added, removed
        plus = round(added * 40 / total)
        return plus, 40 - plus


@dataclass(frozen=True)
class DiffLine:
    kind: str  # file, hunk, add, del, meta, context
    text: str


@dataclass
class CommitView:
    sha: str
    parents: list[str]
    author: str
    time: str
    summary: str
    body: str
    requests: list[tuple[str, str, str]]  # (promise, namespace, name) its trailers name
    trailers: list[tuple[str, str]]
    stat: list[StatLine]
    files: int
    added: int
    removed: int
    diff: list[DiffLine]
    diff_files: int  # files whose diff is shown
    diff_cut: bool  # the diff was cut at MAX_DIFF_BYTES
    hidden: list[str]  # notes on what is never shown


def _hidden(path: str, contents: list[bytes]) -> str | None:
    """Whether a file's content stays off the page, from what it holds before and after the
    commit: pending bundles are kept as their documents, and a Secret's values are plaintext
    unless the destination encrypts them (`is_secret_document` decides, whatever the file's
    name; a file that cannot be read is not shown either)."""
    if path.startswith(layout.BUNDLES_DIR + "/"):
        return "bundles"
    for content in contents:
        try:
            docs = load_documents(content.decode(), _PAGE_LIMITS)
        except (UnicodeDecodeError, YamlError):
            return "unreadable"
        if any(is_secret_document(doc) for doc in docs):
            return "secret"
    return None


def _contents(repo: Path, sha: str) -> dict[str, list[bytes]]:
    """Each file the commit changed: its content before and after (one or both)."""
    _, raw = _git(repo, "diff-tree", "-r", "--root", "--no-commit-id", "--no-renames", "-z", sha)
    tokens = raw.split("\0")
    blobs: dict[str, list[str]] = {}
    for meta, path in zip(tokens[0::2], tokens[1::2], strict=False):
        fields = meta.split()
        if len(fields) >= 4 and path:
            blobs[path] = [oid for oid in fields[2:4] if oid != _NO_BLOB]
    reader = CatFile(repo, _git_env(repo))
    try:
        wanted = [oid for oids in blobs.values() for oid in oids]
        read = dict(zip(wanted, reader.read_many(wanted), strict=True))
    finally:
        reader.close()
    return {path: [found[1] for oid in oids if (found := read[oid]) is not None]
            for path, oids in blobs.items()}


def _git_env(repo: Path) -> dict[str, str]:
    return {**base_env(), "GIT_CEILING_DIRECTORIES": str(repo.resolve().parent)}


def _git(repo: Path, *args: str) -> tuple[int, str]:
    proc = run_git(["-C", str(repo), "-c", "log.showSignature=false", "-c", "core.quotePath=false",
                    *args], _git_env(repo), timeout=GIT_TIMEOUT)
    return proc.returncode, proc.stdout.decode("utf-8", errors="replace")


def _commit_view(repo: Path, tip: str, given: str) -> CommitView:
    code, out = _git(repo, "rev-parse", "--verify", "--quiet", f"{given}^{{commit}}")
    sha = out.strip()
    if code != 0 or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise NotFound(f"There is no commit {given} in the state store.")
    code, _ = _git(repo, "merge-base", "--is-ancestor", sha, tip)
    if code != 0:
        raise NotFound(f"Commit {sha[:12]} is not on the branch.")
    _, meta = _git(repo, "show", "-s", "--no-color", "--format=%P%x00%an <%ae>%x00%aI%x00%B", sha)
    parents, author, when, message = [*meta.split("\0", 3), "", "", ""][:4]
    _, numstat = _git(repo, "diff-tree", "-r", "--root", "--no-commit-id", "--no-renames",
                      "--numstat", "-z", sha)
    stat = _stat(numstat, _contents(repo, sha))
    shown: list[str] = []
    budget = MAX_DIFF_LINES
    for line in stat:
        if line.hidden or line.added is None or line.removed is None:
            continue
        changed = line.added + line.removed
        if len(shown) >= MAX_DIFF_FILES or (shown and changed > budget):
            break
        shown.append(line.path)
        budget -= changed
    diff: list[DiffLine] = []
    cut = False
    if shown:
        _, patch = _git(repo, "diff-tree", "-p", "-r", "--root", "--no-commit-id", "--no-renames",
                        "--no-color", sha, "--", *(f":(literal){path}" for path in shown))
        if len(patch) > MAX_DIFF_BYTES:
            patch, cut = patch[:MAX_DIFF_BYTES].rpartition("\n")[0], True
        diff = [_diff_line(text) for text in patch.splitlines()]
    trailers = parse_trailers(message)
    lines = message.strip().split("\n", 1)
    reasons = sorted({_HIDDEN_NOTE[s.hidden] for s in stat if s.hidden})
    return CommitView(
        sha=sha, parents=parents.split(), author=author, time=when.strip(),
        summary=lines[0], body=lines[1].strip("\n") if len(lines) > 1 else "",
        requests=_named_requests(message), trailers=[(k, v) for k, vs in trailers.items() for v in vs],
        stat=stat[:MAX_STAT_FILES], files=len(stat),
        added=sum(s.added or 0 for s in stat), removed=sum(s.removed or 0 for s in stat),
        diff=diff, diff_files=len(shown), diff_cut=cut, hidden=reasons,
    )


def _stat(numstat: str, contents: dict[str, list[bytes]]) -> list[StatLine]:
    found = []
    for entry in numstat.split("\0"):
        added, tab, rest = entry.partition("\t")
        removed, tab2, path = rest.partition("\t")
        if not tab or not tab2:
            continue
        found.append(StatLine(path, int(added) if added.isdigit() else None,
                              int(removed) if removed.isdigit() else None,
                              _hidden(path, contents.get(path, []))))
    return found


def _diff_line(text: str) -> DiffLine:
    if text.startswith("diff --git"):
        return DiffLine("file", text)
    if text.startswith("@@"):
        return DiffLine("hunk", text)
    if text.startswith(("+++", "---", "index ", "new file", "deleted file", "old mode",
                        "new mode", "similarity", "Binary files")):
        return DiffLine("meta", text)
    if text.startswith("+"):
        return DiffLine("add", text)
    if text.startswith("-"):
        return DiffLine("del", text)
    return DiffLine("context", text)


def _named_requests(message: str) -> list[tuple[str, str, str]]:
    """(promise, namespace, name) of each trailer group that names a request."""
    found: list[tuple[str, str, str]] = []
    promise = None
    for key, value in trailer_pairs(message):
        if key == "Statewriter-Promise":
            promise = value
        elif key == "Statewriter-Request" and promise:
            namespace, slash, name = value.partition("/")
            if slash and (promise, namespace, name) not in found:
                found.append((promise, namespace, name))
    return found


@router.get("/commits/{sha}")
async def commit_page(request: Request, who: Viewer, sha: str) -> Response:
    if not _SHA.fullmatch(sha):
        raise NotFound(f"{sha!r} is not a commit id.")
    tip, _, _ = await _snapshot(request)
    if tip is None:
        raise NotFound("The state store has no commits yet.")
    commit = await run_in_threadpool(_commit_view, request.app.state.writer.store.path, tip, sha)
    crumbs = [("Destinations", PREFIX)]
    crumbs.extend((f"{ns}/{name}", _request_url(promise, ns, name))
                  for promise, ns, name in commit.requests[:1])
    return await _render(request, "commit.html", who, title=f"Commit {commit.sha[:12]}",
                         tip=tip, commit=commit, crumbs=crumbs, limits={
                             "files": MAX_DIFF_FILES, "lines": MAX_DIFF_LINES,
                             "stat": MAX_STAT_FILES, "kib": MAX_DIFF_BYTES // 1024},
                         nav="destinations")

