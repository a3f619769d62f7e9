"""`statewriter history`: a request's audit trail, or the commits across requests, read from
the service (`--url`) or from a repository (`--repo`), printed as text or JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.cli.client import (
    add_retries_flag,
    add_url_flag,
    auth_headers,
    call,
    check_names,
    given_url,
    json_body,
    print_refusal,
)
from app.cli.exits import EXIT_FAILURE, Failure, UsageError, describe
from gitops.errors import StatewriterError
from gitops.quoting import quoted
from gitops.redact import redact


def add_parser(commands: Any) -> None:
    history = commands.add_parser(
        "history", help="a request's audit trail, or the commits across requests",
        description=HISTORY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    history.add_argument("request_promise", nargs="?", metavar="PROMISE",
                         help="with NS/NAME: one request's history")
    history.add_argument("request", nargs="?", metavar="NS/NAME", help="the request")
    source = history.add_mutually_exclusive_group()
    add_url_flag(source)
    source.add_argument("--repo", type=Path,
                        help="read a repository (bare or checkout) instead of asking the service "
                             "(default: the service)")
    # None: gitops.store's DEFAULT_BRANCH, imported where the store is read (importing gitops.store
    # here would cost every command ~60 ms)
    history.add_argument("--branch", help="with --repo, the branch to read (default: main)")
    history.add_argument("--json", action="store_true",
                         help="print one JSON list of the commits (default: text)")
    for flag, what in (("--promise", "naming this promise"),
                       ("--destination", "naming this destination"),
                       ("--actor", "made for this client (its token's name)"),
                       ("--action", "of this action: apply, delete, rollback, revert, "
                                    "destination, migrate"),
                       ("--since", "at or after this RFC 3339 time, e.g. 2024-05-01T00:00:00Z"),
                       ("--until", "at or before this RFC 3339 time")):
        history.add_argument(flag, help=f"only commits {what} (default: any)")
    history.add_argument("--limit", type=int, help="print at most this many commits (default: all)")
    add_retries_flag(history, 2)


HISTORY_HELP = """\
statewriter history PROMISE NS/NAME (--url URL | --repo PATH) [--json]
    one request's commits, newest first.

statewriter history (--url URL | --repo PATH) [--promise P] [--destination D] [--actor A]
                    [--action X] [--since T] [--until T] [--limit N] [--json]
    the commits across requests (GET /v1/history), newest first; the filters combine with
    AND, --since and --until are RFC 3339 (2024-05-01T00:00:00Z). Every page is printed,
    or the first N commits with --limit.

Without --url or --repo, the service at STATEWRITER_URL is asked.

Exit status: 0 when commits were printed, 1 when none were (or the service or the store
failed), 2 on a mistake in the flags."""
HISTORY_FILTERS = ("promise", "destination", "actor", "action", "since", "until")
HISTORY_PAGE = 100  # commits asked per request when following `next`


class _Answered(Exception):
    """The service's answer ended the pages, its reason already printed: exit `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def history_command(args: argparse.Namespace) -> int:
    if args.repo is None:
        try:
            args.url = given_url(args.url)
        except UsageError as error:
            raise UsageError(f"history: {error}") from None
        if args.url is None:
            raise UsageError("history: give --url (or set STATEWRITER_URL) to ask the service, "
                             "or --repo to read a repository")
    filters = {name: value for name in HISTORY_FILTERS if (value := getattr(args, name))}
    if args.request_promise is None and args.request is None:
        return _commits(args, filters)
    if args.request is None:
        raise UsageError(f"history: give PROMISE and NS/NAME for one request's history, or "
                         f"neither for the commits across requests (--promise "
                         f"{args.request_promise} filters them by promise)")
    if filters or args.limit is not None:
        flags = ", ".join(f"--{name}" for name in [*filters, *(["limit"] if args.limit else [])])
        raise UsageError(f"history: {flags} filter the commits across requests; PROMISE NS/NAME "
                         "names one request's history (give one or the other)")
    return _request_history(args)


def _request_history(args: argparse.Namespace) -> int:
    promise = args.request_promise
    namespace, _, name = args.request.partition("/")
    try:
        if not namespace or not name or "/" in name:
            raise UsageError(f"the request must be NS/NAME, not {quoted(args.request)}")
        check_names(promise, namespace, name)
    except UsageError as error:
        raise UsageError(f"history: {error}") from None
    if args.url:
        url = f"{args.url}/v1/promises/{promise}/requests/{namespace}/{name}/history"
        response = call("history", "GET", url, args.retries, headers=auth_headers())
        if response is None:
            return EXIT_FAILURE
        if response.status_code != 200:
            return print_refusal("history", response)
        entries = json_body(response).get("commits")
        if not isinstance(entries, list):
            raise Failure(f"history: {redact(url)} answered {response.status_code} without a "
                          "history: is it a statewriter service?")
    else:
        entries = _repo_request_history(args, promise, namespace, name)
    print(json.dumps(entries, indent=2) if args.json else format_history(entries))
    return 0 if entries else 1


def _repo_request_history(args: argparse.Namespace, promise: str, namespace: str,
                          name: str) -> list[Any]:
    # the store's reads load here, for --repo only: --url needs none of them
    from app.jsonable import jsonable
    from gitops.errors import NotFound
    from gitops.reads.history import request_history
    from gitops.store.base import DEFAULT_BRANCH
    from gitops.store.reads import open_repository

    try:
        repository = open_repository(args.repo)
        tip = repository.resolve_branch(DEFAULT_BRANCH if args.branch is None else args.branch)
        entries: list[Any] = jsonable(request_history(repository, tip, promise, namespace, name))
    except NotFound as error:  # --repo or --branch names nothing
        raise UsageError(f"history: {describe(error)}") from None
    except StatewriterError as error:
        raise Failure(f"history: {describe(error)}") from None
    return entries


def format_history(entries: list[dict[str, Any]], empty: str = "no commits name this request\n") -> str:
    """One block per commit: short sha, time, actor, action, summary, then what it names
    (requests and promises in the history across requests, pipelines, destinations, the
    client's own trailers) and its +/~/- files. `empty` when there is none."""
    if not entries:
        return empty
    return "\n\n".join(format_entry(entry) for entry in entries) + "\n"


def format_entry(entry: dict[str, Any]) -> str:
    head = f"{entry['sha'][:12]}  {entry['time']}  {entry['actor'] or '?'}  {entry['action'] or '?'}"
    lines = [head, f"    {entry.get('summary', entry.get('message', ''))}"]
    details = [f"reverts: {entry['reverts']}"] if entry.get("reverts") else []
    for key in ("promises", "requests", "pipelines", "destinations"):
        if entry.get(key):
            details.append(f"{key}: " + ", ".join(entry[key]))
    if details:
        lines.append("    " + "; ".join(details))
    for key, values in (entry.get("trailers") or {}).items():
        lines.extend(f"    {key}: {value}" for value in values)
    files = entry.get("files") or {}
    for key, mark in (("added", "+"), ("changed", "~"), ("removed", "-")):
        lines.extend(f"    {mark} {path}" for path in files.get(key, []))
    return "\n".join(lines)


def _commits(args: argparse.Namespace, filters: dict[str, str]) -> int:
    """The commits across requests, page after page (GET /v1/history, or the same reading
    of a repository), printed as they come; all of them, or the first --limit."""
    from gitops.errors import InvalidQuery
    from gitops.reads.query import parse_query

    try:
        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit must be at least 1, not {args.limit}")
        parse_query(**filters)  # the service's own rules, before anything is asked
    except UsageError as error:
        raise UsageError(f"history: {error}") from None
    except InvalidQuery as error:
        raise UsageError(f"history: --{error.message}") from None
    pages = _service_pages(args, args.url, filters) if args.url else _repo_pages(args, filters)
    printed: list[dict[str, object]] = []
    try:
        for page in pages:
            for entry in page[:args.limit - len(printed) if args.limit else None]:
                if not args.json:
                    print(("\n" if printed else "") + format_entry(entry))
                printed.append(entry)
            if args.limit is not None and len(printed) >= args.limit:
                break
    except _Answered as answered:
        return answered.code
    if args.json:
        print(json.dumps(printed, indent=2))
    elif not printed:
        print("no commits match" + (" these filters" if filters else ""))
    return 0 if printed else 1


def _page_size(args: argparse.Namespace, printed: int) -> int:
    return min(HISTORY_PAGE, args.limit - printed) if args.limit else HISTORY_PAGE


def _service_pages(args: argparse.Namespace, base: str,
                   filters: dict[str, str]) -> Iterator[list[dict[str, object]]]:
    url = f"{base}/v1/history"
    cursor: str | None = None
    given = 0
    while True:
        params = {**filters, "limit": str(_page_size(args, given))}
        if cursor is not None:
            params["cursor"] = cursor
        response = call("history", "GET", url, args.retries, params=params, headers=auth_headers())
        if response is None:
            raise _Answered(EXIT_FAILURE)  # `call` has said why
        if response.status_code != 200:
            raise _Answered(print_refusal("history", response))
        body = json_body(response)
        commits, following = body.get("commits"), body.get("next")
        if (not isinstance(commits, list) or not all(isinstance(c, dict) for c in commits)
                or not isinstance(following, str | None) or (following and following == cursor)):
            raise Failure(f"history: {redact(url)} answered without a page of commits: is it a "
                          "statewriter service (one that has GET /v1/history)?")
        yield commits
        given += len(commits)
        if following is None or not commits:
            return
        cursor = following


def _repo_pages(args: argparse.Namespace,
                filters: dict[str, str]) -> Iterator[list[dict[str, object]]]:
    from app.jsonable import jsonable
    from gitops.errors import NotFound
    from gitops.reads.audit import AuditLog
    from gitops.reads.query import parse_query
    from gitops.store.base import DEFAULT_BRANCH
    from gitops.store.reads import open_repository

    try:
        repository = open_repository(args.repo)
        tip = repository.resolve_branch(DEFAULT_BRANCH if args.branch is None else args.branch)
        log = AuditLog(repository)
        cursor: str | None = None
        given = 0
        while True:
            page = log.page(tip, parse_query(**filters, limit=str(_page_size(args, given)),
                                              cursor=cursor))
            yield jsonable(page.commits)
            given += len(page.commits)
            if page.next is None:
                return
            cursor = page.next
    except NotFound as error:  # --repo or --branch names nothing
        raise UsageError(f"history: {describe(error)}") from None
    except StatewriterError as error:
        raise Failure(f"history: {describe(error)}") from None
