"""`statewriter serve | verify | history | push | delete` (CONTRACT section 8)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path

import httpx

from app.client import auth_headers
from app.delete import DELETE_HELP, delete_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="statewriter", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data")
    serve.add_argument("--remote")
    serve.add_argument("--branch")
    serve.add_argument("--config", type=Path)

    verify = commands.add_parser("verify", help="check the invariants of a checkout or git URL")
    verify.add_argument("target", nargs="?", default=".")
    verify.add_argument("--no-kustomize", action="store_true", help="skip `kubectl kustomize`")
    verify.add_argument("--branch", help="the branch to clone (default: the remote's HEAD)")

    history = commands.add_parser("history", help="a request's audit trail")
    history.add_argument("promise")
    history.add_argument("request", metavar="NS/NAME")
    source = history.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="the service's URL")
    source.add_argument("--repo", type=Path, help="a repository (bare or checkout)")
    history.add_argument("--branch", default="main")
    history.add_argument("--json", action="store_true")

    push = commands.add_parser("push", help="send a pipeline's output as one bundle")
    push.add_argument("dir", type=Path)
    push.add_argument("--url", required=True)
    push.add_argument("--promise", required=True)
    push.add_argument("--request", metavar="NS/NAME")
    push.add_argument("--pipeline", default="default")
    push.add_argument("--promise-generation", type=int)
    push.add_argument("--retries", type=int, default=5)

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

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "serve":
        return _serve(args)
    if args.command == "verify":
        return _verify(args)
    if args.command == "history":
        return _history(args)
    if args.command == "delete":
        return delete_command(args)
    from app.push import push_command

    status: int = push_command(args)
    return status


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.config import ConfigError, load_config
    from app.main import create_app
    from gitops.store import open_store
    from gitops.store.remote import Credentials
    from gitops.writer import Writer

    try:
        config = load_config(args.config, host=args.host, port=args.port, data=args.data,
                             remote=args.remote, branch=args.branch)
    except ConfigError as error:
        print(f"statewriter: {error}", file=sys.stderr)
        return 2
    if not config.auth_enabled and not _is_loopback(config.host):
        print(f"statewriter: refusing to listen on {config.host} without an auth section in the "
              "config; add tokens or listen on 127.0.0.1", file=sys.stderr)
        return 2
    # The writer lane is the critical path, and each zlib or hashlib call in it hands the
    # GIL over; getting it back from busy request threads waits up to the switch interval
    # (5 ms by default; a quarter of the lane's time was spent there under load).
    sys.setswitchinterval(0.0005)
    credentials = Credentials(**config.remote_credentials) if config.remote_credentials else None
    store = open_store(config.data, config.remote, config.branch, credentials)
    writer = Writer(store, config.author)
    uvicorn.run(create_app(config, writer), host=config.host, port=config.port, log_level="info")
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _verify(args: argparse.Namespace) -> int:
    from gitops.verify import verify_target

    findings = verify_target(args.target, kustomize=not args.no_kustomize, branch=args.branch)
    for finding in findings:
        print(finding)
    if not findings:
        print(f"{args.target}: ok")
    return 1 if findings else 0


def _history(args: argparse.Namespace) -> int:
    from gitops.history import format_history, request_history

    namespace, _, name = args.request.partition("/")
    if not name:
        print("statewriter: request must be NS/NAME", file=sys.stderr)
        return 2
    if args.url:
        url = f"{args.url.rstrip('/')}/v1/promises/{args.promise}/requests/{namespace}/{name}/history"
        response = httpx.get(url, headers=auth_headers(), timeout=30)
        if response.status_code != 200:
            print(f"statewriter: {response.status_code} {response.text}", file=sys.stderr)
            return 1
        entries = response.json()["commits"]
    else:
        entries = request_history(args.repo, args.branch, args.promise, namespace, name)
    print(json.dumps(entries, indent=2) if args.json else format_history(entries))
    return 0 if entries else 1


if __name__ == "__main__":
    sys.exit(main())
