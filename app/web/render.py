"""How the /ui pages are rendered: the Jinja2 templates with their filters and the addresses
of the pages, and the error page every refusal becomes (inside the same layout, with the
navigation)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape

from app.http.answers import error_status
from app.http.auth import Principal
from app.http.state import config_of
from app.version import VERSION
from gitops.errors import StatewriterError
from gitops.owner import Owner

TEMPLATES = Path(__file__).resolve().parent / "templates"
PREFIX = "/ui"
MAX_TEXT_CHARS = 20_000  # a pipeline's status, Flux's message: longer ones are cut


def _number(value: int) -> str:
    return f"{value:,}"


def _when(value: str | datetime | None) -> Markup:
    """A time in UTC as the tables show it (their headings say UTC): the date and the clock,
    each kept whole, so a narrow column breaks between them and nowhere else."""
    if value is None:
        return Markup("")
    text = (value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime)
            else value.replace("T", " ").removesuffix("Z"))
    date, _, clock = text.partition(" ")
    return Markup('<span class="date">{}</span> <span class="clock">{}</span>').format(date, clock)


def _clip(text: str | None) -> str:
    """A text from elsewhere (Flux's message), bounded."""
    text = text or ""
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + "\n… (cut: the text is longer)"
    return text


def _status_text(status: dict[str, Any] | None) -> str:
    """A pipeline's status as indented JSON, bounded."""
    return _clip(json.dumps(status, indent=2, sort_keys=True, ensure_ascii=False) if status else "")


def _path(value: str) -> Markup:
    """A repository path that a narrow column breaks after its slashes, not in a name."""
    return Markup("/<wbr>").join(escape(part) for part in value.split("/"))


def request_url(promise: str, namespace: str, name: str, **query: str | None) -> str:
    return f"{PREFIX}/promises/{quote(promise, safe='')}/requests/{quote(namespace, safe='')}/" \
           f"{quote(name, safe='')}{_query(query)}"


def promise_url(promise: str, **query: str | None) -> str:
    """The promise's page, with the filters given (the empty ones left out)."""
    return f"{PREFIX}/promises/{quote(promise, safe='')}{_query(query)}"


def page_url(path: str, **query: str | None) -> str:
    """A page of /ui (`path` after the prefix), with the filters given."""
    return f"{PREFIX}{path}{_query(query)}"


def _query(values: dict[str, str | None]) -> str:
    given = {key: value for key, value in values.items() if value}
    return f"?{urlencode(given)}" if given else ""


def owner_url(owner: Owner) -> str:
    if owner.is_promise_level:
        return promise_url(owner.promise)
    return request_url(owner.promise, owner.namespace, owner.name)


def destination_url(name: str) -> str:
    return f"{PREFIX}/destinations/{quote(name, safe='')}"


def commit_url(sha: str) -> str:
    return f"{PREFIX}/commits/{quote(sha, safe='')}"


def _state_class(state: str | None) -> str:
    """A placement's state (Scheduled, Pending) or a delivery's (Applied, Failed, Pending,
    Unknown)."""
    return {"Scheduled": "ok", "Applied": "ok", "Pending": "warn", "Failed": "bad"}.get(
        state or "", "muted")


def _status_class(status: int) -> str:
    if status >= 500:
        return "bad"
    return {409: "warn", 403: "muted", 413: "warn"}.get(status, "bad")


# the templates, their filters and globals (a test renders a macro through it)
ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # everything a client named (labels, paths, reasons) is text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters.update(number=_number, when=_when, path=_path, short=lambda sha: (sha or "")[:12],
                    status_text=_status_text, clip=_clip,
                    state_class=_state_class, status_class=_status_class)
ENVIRONMENT.globals.update(request_url=request_url, owner_url=owner_url, promise_url=promise_url,
                    page_url=page_url, destination_url=destination_url, commit_url=commit_url,
                    version=VERSION, prefix=PREFIX)


async def render(request: Request, template: str, who: Principal | None,
                 status: int = 200, **context: Any) -> HTMLResponse:
    """`template` as an HTML answer; `who` signed in (None: no one yet, and no navigation)."""
    config = config_of(request)
    page = ENVIRONMENT.get_template(template)
    values = {"who": who, "auth": config.auth_enabled, "title": "", "here": "", "crumbs": [],
              "nav": "", "navigation": who is not None, "tip": None, **context}
    text = await run_in_threadpool(page.render, values)
    return HTMLResponse(text, status_code=status)


async def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """An error inside the pages' own layout, with their navigation (and who is signed in,
    when the page got as far as asking)."""
    who = getattr(request.state, "ui_viewer", None)
    return await render(request, "error.html", who if isinstance(who, Principal) else None,
                        status, title=title, code=status, message=message, navigation=True)


_TITLES = {401: "Sign-in needed", 403: "Not allowed", 404: "Not found", 413: "Too large",
           503: "The state store cannot be read now"}


async def refusal_page(request: Request, error: StatewriterError) -> Response:
    """A refusal as an error page, with the status the API answers it by."""
    status = error_status(error)  # the one table the API answers by, too
    response = await error_page(request, status, _TITLES.get(status, "Bad request"),
                                error.message)
    if status == 401:
        scheme = "Bearer" if (request.headers.get("authorization") or "").lower().startswith(
            "bearer ") else "Basic"
        response.headers["WWW-Authenticate"] = f'{scheme} realm="statewriter"'
    return response
