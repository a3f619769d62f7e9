"""`statewriter serve | verify | history | push | delete | rollback` (CONTRACT section 8).

A mistake in the flags, the environment or the config file, and a store or service that
cannot be reached, end the command with one line on stderr, `statewriter: <what went wrong>`,
and a non-zero exit (2 for usage and configuration, 1 for what failed at run time); never a
traceback. Output cut short by a closed pipe (`statewriter history ... | head -1`) ends
quietly with exit 141, as a tool stopped by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from app.cli.client import (
    UsageError,
    auth_headers,
    call,
    check_names,
    describe,
    json_body,
    print_refusal,
    service_url,
)
from app.cli.delete import DELETE_HELP, ROLLBACK_HELP, delete_command, rollback_command
from app.cli.validate import add_parser as validate_parser
from app.version import VERSION
from gitops.errors import StatewriterError
from gitops.owner import DEFAULT_PIPELINE
from gitops.redact import redact, redact_url

EXIT_FAILURE = 1  # what failed at run time: a store, a service, a file
EXIT_USAGE = 2  # a mistake in the flags, the environment or the config file
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT


class Failure(Exception):
    """Ends the command with `statewriter: <message>` on stderr and `code`."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line (its usage block is what --help is for)."""

    def error(self, message: str) -> NoReturn:
        raise Failure(f"{message} (see {self.prog} --help)", EXIT_USAGE)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        _configure_logs(args)
        status = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except Failure as failure:
        return _fail(failure.message, failure.code)
    except UsageError as error:
        return _fail(str(error), EXIT_USAGE)
    except BrokenPipeError:
        # Whoever read stdout stopped (`| head -1`): nothing to say, nowhere to say it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_CLOSED_PIPE
    except StatewriterError as error:  # a store, a repository, the service's answer
        return _fail(describe(error), EXIT_FAILURE)
    except OSError as error:  # a file or folder the command needed
        return _fail(describe(error), EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _configure_logs(args: argparse.Namespace) -> None:
    """The service logs JSON unless told otherwise; the other commands, plain text."""
    from app import logs

    if args.command != "serve":
        logs.configure("text")
        return
    try:
        logs.configure(logs.chosen_format(args.log_format))
    except ValueError as error:
        raise Failure(str(error), EXIT_USAGE) from None


def _fail(message: str, code: int) -> int:
    print(f"statewriter: {message}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="statewriter", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"statewriter {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data")
    serve.add_argument("--remote")
    serve.add_argument("--branch")
    serve.add_argument("--config", type=Path)
    serve.add_argument("--log-format", choices=("json", "text"),
                       help="one JSON object per line (default), or text; "
                            "default: $STATEWRITER_LOG_FORMAT, else json")

    verify = commands.add_parser("verify", help="check the invariants of a checkout or git URL")
    verify.add_argument("target", nargs="?", default=".")
    verify.add_argument("--no-kustomize", action="store_true", help="skip `kubectl kustomize`")
    verify.add_argument("--branch", help="the branch to clone (default: the remote's HEAD)")
    verify.add_argument("--kubernetes-version", help="validate objects against this Kubernetes "
                                                     "version (default: each destination's, "
                                                     "else the newest supported)")

    history = commands.add_parser(
        "history", help="a request's audit trail, or the commits across requests",
        description=HISTORY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    history.add_argument("request_promise", nargs="?", metavar="PROMISE")
    history.add_argument("request", nargs="?", metavar="NS/NAME")
    source = history.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="the service's URL")
    source.add_argument("--repo", type=Path, help="a repository (bare or checkout)")
    # None: gitops.store's DEFAULT_BRANCH, imported where the store is read (importing gitops.store
    # here would cost every command ~60 ms)
    history.add_argument("--branch", help="with --repo (default: main)")
    history.add_argument("--json", action="store_true", help="one JSON list of the commits")
    for flag, what in (("--promise", "naming this promise"),
                       ("--destination", "naming this destination"),
                       ("--actor", "made for this client (its token's name)"),
                       ("--action", "of this action: apply, delete, rollback, destination, "
                                    "migrate"),
                       ("--since", "at or after this RFC 3339 time, e.g. 2024-05-01T00:00:00Z"),
                       ("--until", "at or before this RFC 3339 time")):
        history.add_argument(flag, help=f"only commits {what}")
    history.add_argument("--limit", type=int, help="print at most this many commits (default: all)")
    history.add_argument("--retries", type=int, default=2,
                         help="with --url: retries with backoff when unreachable (default: 2)")

    push = commands.add_parser("push", help="send a pipeline's output as one bundle")
    push.add_argument("dir", type=Path)
    push.add_argument("--url", required=True)
    push.add_argument("--promise", required=True)
    push.add_argument("--request", metavar="NS/NAME")
    push.add_argument("--pipeline", default=DEFAULT_PIPELINE)
    push.add_argument("--promise-generation", type=int)
    push.add_argument("--retries", type=int, default=5)
    push.add_argument("--wait", action="store_true",
                      help="then wait until Flux applied the request's commit on every "
                           "destination (exit 1 if it failed or --timeout passed)")
    push.add_argument("--timeout", type=float, default=600.0,
                      help="seconds --wait waits at most (default: 600)")
    push.add_argument("--trailer", action="append", default=[], metavar="KEY=VALUE",
                      help="a commit trailer of the bundle's own, e.g. Change-Request=CHG-1042 "
                           "(repeatable; up to 16)")

    validate_parser(commands)

    delete = commands.add_parser(
        "delete", help="remove what a request owns (delete workflows; idempotent)",
        description=DELETE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    delete.add_argument("--url", default=os.environ.get("STATEWRITER_URL"),
                        help="the service (default: $STATEWRITER_URL)")
    delete.add_argument("--promise", default=os.environ.get("PROMISE"),
                        help="default: $PROMISE")
    delete.add_argument("--request", metavar="NS/NAME", default=os.environ.get("REQUEST"),
                        help="default: $REQUEST")
    delete.add_argument("--pipeline", default=os.environ.get("PIPELINE") or None,
                        help="only this pipeline's output (default: $PIPELINE, else every pipeline)")
    delete.add_argument("--retries", type=int, default=5,
                        help="connection retries with backoff (default: 5)")

    rollback = commands.add_parser(
        "rollback", help="write a request's output as it stood at an earlier commit",
        description=ROLLBACK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    rollback.add_argument("promise_arg", nargs="?", metavar="PROMISE",
                          help="the promise (or --promise)")
    rollback.add_argument("request_arg", nargs="?", metavar="NS/NAME",
                          help="the request (or --request)")
    rollback.add_argument("--url", default=os.environ.get("STATEWRITER_URL"),
                          help="the service (default: $STATEWRITER_URL)")
    rollback.add_argument("--promise", default=os.environ.get("PROMISE"), help="default: $PROMISE")
    rollback.add_argument("--request", metavar="NS/NAME", default=os.environ.get("REQUEST"),
                          help="default: $REQUEST")
    rollback.add_argument("--commit", "--to", metavar="SHA", dest="commit",
                          help="the commit of the branch to roll back to (an id, or 4 or more "
                               "of its first hex digits)")
    rollback.add_argument("--dry-run", action="store_true",
                          help="answer what would change, without committing")
    rollback.add_argument("--retries", type=int, default=5,
                          help="connection retries with backoff (default: 5)")
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "history":
        return _history(args)
    if args.command == "delete":
        return delete_command(args)
    if args.command == "rollback":
        return rollback_command(args)
    if args.command == "validate":
        from app.cli.validate import validate_command

        return validate_command(args)
    from app.cli.push import push_command

    status: int = push_command(args)
    return status


def _serve(args: argparse.Namespace) -> int:
    from app.config import ConfigError, load_config
    from app.http import metrics, server
    from app.main import create_app
    from gitops.errors import CorruptState, IdentityError, SigningError
    from gitops.notify import Notifier
    from gitops.secrets import Sealer
    from gitops.store import open_store
    from gitops.store.signing import Signer, open_signer
    from gitops.writer import Writer

    try:
        config = load_config(args.config, host=args.host, port=args.port, data=args.data,
                             remote=args.remote, branch=args.branch)
    except ConfigError as error:
        raise Failure(str(error), EXIT_USAGE) from None
    if not config.auth_enabled and not _is_loopback(config.host):
        raise Failure(f"refusing to listen on {config.host} without an auth section in the "
                      "config; add tokens or listen on 127.0.0.1", EXIT_USAGE)
    _check_data(config.data)
    listener = _listen(config.host, config.port)
    try:
        # The writer lane is the critical path, and each zlib or hashlib call in it hands the
        # GIL over; getting it back from busy request threads waits up to the switch interval
        # (5 ms by default; a quarter of the lane's time was spent there under load).
        sys.setswitchinterval(0.0005)
        signer: Signer | None = None
        if config.signing is not None:
            try:  # the key is read and tried once now; the store owns the signer from here on
                signer = open_signer(config.signing.format, config.signing.key_file)
            except SigningError as error:
                raise Failure(f"signing: {error}", EXIT_USAGE) from None
        sealer: Sealer | None = None
        if config.secrets is not None:  # read and checked once now (CONTRACT section 9)
            try:
                sealer = Sealer.from_file(config.secrets.identity_file,
                                          config.secrets.require_encryption,
                                          observe=metrics.encryption_operation)
            except (IdentityError, OSError, UnicodeDecodeError) as error:
                raise Failure(f"secrets.identityFile: {error}", EXIT_USAGE) from None
        held = _HeldLogs()
        if signer is not None:
            logging.getLogger("statewriter").info("commits are signed by the %s key %s",
                                                  signer.format, signer.fingerprint)
        notifier: Notifier | None = None
        try:
            store = open_store(config.data, config.remote, config.branch, config.credentials,
                               timeout=config.push.timeout, github_app=config.github_app,
                               signer=signer)
            try:
                # POSTs destinations' notify URLs after each publish, off the lane
                notifier = Notifier(store.tree, config.notify.hmac_token_file,
                                    user_agent=f"statewriter/{VERSION}", observe=metrics.notified)
                writer = Writer(store, config.author, min_interval=config.push.min_interval,
                                listeners=[notifier], observer=metrics.LANE)
            except BaseException:
                if notifier is not None:
                    notifier.close(timeout=0)
                store.close()
                raise
        except (CorruptState, StatewriterError, OSError) as error:
            held.finish(keep=False)
            what = "is corrupt" if isinstance(error, CorruptState) else "cannot be opened"
            raise Failure(f"the state store {what}: {describe(error)}") from None
        except BaseException:
            held.finish(keep=True)  # not a start-up problem we know: the log, then its traceback
            raise
        held.finish(keep=True)
        # uvicorn names the address only for sockets it bound itself
        address = _address(config.host, config.port)
        where = redact(config.remote) if config.remote else f"{store.path} (embedded)"
        logging.getLogger("statewriter").info(
            "statewriter %s on http://%s, state store %s", VERSION, address, where,
            extra={"event": "start", "version": VERSION, "address": address, "store": where})
        try:
            started = server.serve(create_app(config, writer, sealer), config, sockets=[listener])
        finally:
            notifier.close()  # closed with the writer already, unless the app never started
        return 0 if started else EXIT_FAILURE  # uvicorn has logged why it did not
    finally:
        listener.close()


class _HeldLogs(logging.Handler):
    """Holds the root logger's records while the service opens its store: written out once
    it has (or at the first warning, or when opening takes long enough for a person to want
    progress: a first fetch, a migration), dropped when it could not, so that a quick failed
    start ends with the one line that says why."""

    HOLD_SECONDS = 3.0

    def __init__(self) -> None:
        super().__init__()
        root = logging.getLogger()
        self._targets = list(root.handlers)
        self._held: list[logging.LogRecord] | None = []
        self._since = time.monotonic()
        root.handlers = [self]

    def emit(self, record: logging.LogRecord) -> None:
        quick = time.monotonic() - self._since < self.HOLD_SECONDS
        if self._held is not None and record.levelno < logging.WARNING and quick:
            self._held.append(record)
            return
        self._write_held()
        self._write(record)

    def finish(self, keep: bool) -> None:
        logging.getLogger().handlers = self._targets
        if keep:
            self._write_held()
        self._held = None

    def _write_held(self) -> None:
        held, self._held = self._held or [], None
        for record in held:
            self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        for handler in self._targets:
            if record.levelno >= handler.level:
                handler.handle(record)


def _check_data(data: Path) -> None:
    """The data folder, created and written once now, so that one that cannot be stops the
    service with its reason (the config checks what it can by looking; as root, or on a
    file system that refuses, only trying tells)."""
    try:
        data.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data):
            pass
    except OSError as error:
        raise Failure(f"the data folder {data} cannot be used: {error.strerror or error}",
                      EXIT_USAGE) from None


def _listen(host: str, port: int) -> socket.socket:
    """The service's socket, bound and listening before the store is opened, so that a port
    in use is one line at once rather than a failure after a long start."""
    address = _address(host, port)
    # as uvicorn binds it: IPv6 when the host is an IPv6 address, else IPv4
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, OverflowError) as error:
        sock.close()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        in_use = isinstance(error, OSError) and error.errno == errno.EADDRINUSE
        hint = " (another process listens there: stop it or choose another --port)" if in_use else ""
        raise Failure(f"cannot listen on {address}: {reason}{hint}",
                      EXIT_FAILURE if in_use else EXIT_USAGE) from None
    return sock


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _verify(args: argparse.Namespace) -> int:
    from gitops.verify import verify_target

    token = os.environ.get("STATEWRITER_TOKEN", "").strip() or None
    version = args.kubernetes_version
    if version is not None:
        from gitops.destination import kubernetes_version

        try:
            version = kubernetes_version(version)
        except ValueError as error:
            raise Failure(f"verify: --kubernetes-version {error}", EXIT_USAGE) from None
    findings = verify_target(args.target, kustomize=not args.no_kustomize, branch=args.branch,
                             token=token, kubernetes_version=version)
    for finding in findings:
        print(redact(finding, [token] if token else []))
    if not findings:
        print(f"{redact_url(args.target)}: ok")
    return 1 if findings else 0


HISTORY_HELP = """\
statewriter history PROMISE NS/NAME (--url URL | --repo PATH) [--json]
    one request's commits, newest first.

statewriter history (--url URL | --repo PATH) [--promise P] [--destination D] [--actor A]
                    [--action X] [--since T] [--until T] [--limit N] [--json]
    the commits across requests (GET /v1/history), newest first; the filters combine with
    AND, --since and --until are RFC 3339 (2024-05-01T00:00:00Z). Every page is printed,
    or the first N commits with --limit.

Exit status: 0 when commits were printed, 1 when none were (or the service or the store
failed), 2 on a mistake in the flags."""
HISTORY_FILTERS = ("promise", "destination", "actor", "action", "since", "until")
HISTORY_PAGE = 100  # commits asked per request when following `next`


class _Answered(Exception):
    """The service's answer ended the pages, its reason already printed: exit `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _history(args: argparse.Namespace) -> int:
    filters = {name: value for name in HISTORY_FILTERS if (value := getattr(args, name))}
    if args.request_promise is None and args.request is None:
        return _commits(args, filters)
    if args.request is None:
        raise Failure(f"history: give PROMISE and NS/NAME for one request's history, or neither "
                      f"for the commits across requests (--promise {args.request_promise} "
                      "filters them by promise)", EXIT_USAGE)
    if filters or args.limit is not None:
        flags = ", ".join(f"--{name}" for name in [*filters, *(["limit"] if args.limit else [])])
        raise Failure(f"history: {flags} filter the commits across requests; PROMISE NS/NAME "
                      "names one request's history (give one or the other)", EXIT_USAGE)
    return _request_history(args)


def _request_history(args: argparse.Namespace) -> int:
    from app.jsonable import jsonable
    from gitops.errors import NotFound
    from gitops.reads.history import request_history
    from gitops.store.base import DEFAULT_BRANCH
    from gitops.store.reads import open_repository

    promise = args.request_promise
    namespace, _, name = args.request.partition("/")
    try:
        if not namespace or not name or "/" in name:
            raise UsageError(f"the request must be NS/NAME, not {args.request!r}")
        check_names(promise, namespace, name)
        base = service_url(args.url) if args.url else ""
    except UsageError as error:
        raise Failure(f"history: {error}", EXIT_USAGE) from None
    if args.url:
        url = f"{base}/v1/promises/{promise}/requests/{namespace}/{name}/history"
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
        try:
            repository = open_repository(args.repo)
            tip = repository.resolve_branch(DEFAULT_BRANCH if args.branch is None else args.branch)
            entries = jsonable(request_history(repository, tip, promise, namespace, name))
        except NotFound as error:  # --repo or --branch names nothing
            raise Failure(f"history: {describe(error)}", EXIT_USAGE) from None
        except StatewriterError as error:
            raise Failure(f"history: {describe(error)}") from None
    print(json.dumps(entries, indent=2) if args.json else format_history(entries))
    return 0 if entries else 1


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
    details = []
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
    from gitops.reads.audit import parse_query

    try:
        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit must be at least 1, not {args.limit}")
        parse_query(**filters)  # the service's own rules, before anything is asked
        base = service_url(args.url) if args.url else ""
    except UsageError as error:
        raise Failure(f"history: {error}", EXIT_USAGE) from None
    except InvalidQuery as error:
        raise Failure(f"history: --{error.message}", EXIT_USAGE) from None
    pages = _service_pages(args, base, filters) if args.url else _repo_pages(args, filters)
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
    from gitops.reads.audit import AuditLog, parse_query
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
        raise Failure(f"history: {describe(error)}", EXIT_USAGE) from None
    except StatewriterError as error:
        raise Failure(f"history: {describe(error)}") from None


