"""`statewriter push DIR`: a pipeline's work-writer stage (docs/reference.md section 8): DIR
packed as a gzip'd tar in memory and POSTed as one bundle (PUSH_HELP says the rest), then,
with `--wait`, the request's delivery polled (`app/cli/wait.py`)."""

from __future__ import annotations

import argparse
import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Any

from app.cli.client import (
    add_retries_flag,
    add_url_flag,
    auth_headers,
    call,
    print_answer,
    print_refusal,
    required_url,
    split_request,
)
from app.cli.exits import UsageError, describe
from app.cli.wait import wait_for_delivery
from gitops.bundle_trailers import trailers_from_pairs
from gitops.errors import InvalidBundle
from gitops.owner import DEFAULT_PIPELINE

PUSH_HELP = """\
Send a pipeline's output to statewriter as one bundle: what a pipeline's work-writer stage
runs. Reads DIR/output (recursively) and DIR/metadata (destination-selectors.yaml or
cluster-selectors.yaml, status.yaml), packs them into a gzip'd tar and POSTs it to
URL/v1/bundles with the token from STATEWRITER_TOKEN. --trailer KEY=VALUE (repeatable) adds
commit trailers of the bundle's own, checked here as the service checks them. Connection
failures and 502/503/504 are retried with backoff: a bundle is idempotent, posting it twice
changes nothing the second time.

With --wait (a request's bundle only) it then waits until Flux on every destination the
request is placed on applied its commit, at most --timeout seconds.

Exit 0 on any 2xx (the outcome is printed; with --wait, once applied), 1 on any other
answer, when the service stays unreachable, or (--wait) when Flux failed to apply it or did
not within the timeout (the reason goes to stderr), 2 on a usage problem.
"""
ANSWER_KEYS = ("state", "commit", "changed", "destinations", "misplaced", "reason",
               "keptAtNewerGeneration", "replaced", "dryRun")


def add_parser(commands: Any) -> None:
    push = commands.add_parser("push", help="send a pipeline's output as one bundle",
                               description=PUSH_HELP,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    push.add_argument("dir", type=Path, metavar="DIR",
                      help="the pipeline's folder: DIR/output (sent recursively) and DIR/metadata")
    add_url_flag(push)
    push.add_argument("--promise", required=True, help="the promise (required)")
    push.add_argument("--request", metavar="NS/NAME",
                      help="the resource request (default: none, a promise-level bundle)")
    push.add_argument("--pipeline", default=DEFAULT_PIPELINE,
                      help="the pipeline that rendered the output (default: %(default)s)")
    push.add_argument("--promise-generation", type=int, metavar="N",
                      help="the promise generation that rendered the output (default: none)")
    add_retries_flag(push, 5)
    push.add_argument("--wait", action="store_true",
                      help="then wait until Flux applied the request's commit on every "
                           "destination (exit 1 if it failed or --timeout passed; default: "
                           "do not wait)")
    push.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                      help="how long --wait waits at most (default: %(default)g)")
    push.add_argument("--trailer", action="append", default=[], metavar="KEY=VALUE",
                      help="a commit trailer of the bundle's own, e.g. Change-Request=CHG-1042 "
                           "(repeatable; up to 16; default: none)")


def push_command(args: argparse.Namespace) -> int:
    try:
        base = required_url(args.url)
        params = [*push_identity(args).items(), *_trailers(args)]
        body = pack(Path(args.dir))
        if getattr(args, "wait", False) and not args.request:
            raise UsageError("--wait needs --request: only a request's delivery is reported")
    except UsageError as error:
        raise UsageError(f"push: {error}") from None
    except OSError as error:  # a file that cannot be read
        raise UsageError(f"push: cannot read {describe(error)}") from None
    headers = {"Content-Type": "application/gzip", "Accept": "application/json", **auth_headers()}
    response = call("push", "POST", _bundles_url(base), int(args.retries), content=body,
                    params=params, headers=headers)
    if response is None:
        return 1
    if not response.is_success:
        return print_refusal("push", response)
    print_answer("push", response, ANSWER_KEYS)
    if getattr(args, "wait", False):
        namespace, name = split_request(str(args.request))
        return wait_for_delivery(base.removesuffix("/v1/bundles"), str(args.promise), namespace,
                                 name, float(args.timeout), int(args.retries))
    return 0


def pack(directory: Path) -> bytes:
    """A gzip'd tar of DIR/output/** and DIR/metadata/**: regular files only, stable order."""
    output = directory / "output"
    if not output.is_dir():
        raise UsageError(f"{output} is not a folder (the pipeline's output)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for top in ("output", "metadata"):
            root = directory / top
            if top == "metadata" and not root.exists():
                continue
            for path in _files(root):
                relative = f"{top}/{path.relative_to(root).as_posix()}"
                content = path.read_bytes()
                info = tarfile.TarInfo(relative)
                info.size = len(content)
                info.mode = 0o644
                info.mtime = 0
                archive.addfile(info, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), mtime=0)


def _files(root: Path) -> list[Path]:
    if root.is_symlink() or not root.is_dir():
        raise UsageError(f"{root} must be a folder, not a link or a file")
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in subfolders:
            if (here / name).is_symlink():
                raise UsageError(f"{here / name} is a link; the service refuses links")
        for name in names:
            path = here / name
            if path.is_symlink() or not path.is_file():
                raise UsageError(f"{path} is not a regular file; the service refuses links and devices")
            found.append(path)
    return sorted(found)


def push_identity(args: argparse.Namespace) -> dict[str, str]:
    """The bundle's identity from the flags, as the tarball form's query parameters."""
    params = {"promise": str(args.promise), "pipeline": str(args.pipeline or DEFAULT_PIPELINE)}
    if args.request:
        namespace, name = split_request(str(args.request))
        params.update(namespace=namespace, name=name)
    if args.promise_generation is not None:
        if args.promise_generation < 0:
            raise UsageError("--promise-generation must not be negative")
        params["promiseGeneration"] = str(args.promise_generation)
    return params


def _trailers(args: argparse.Namespace) -> list[tuple[str, str]]:
    """`--trailer KEY=VALUE` flags as `trailer` query parameters, refused here (exit 2) when
    the service would refuse them."""
    try:
        trailers = trailers_from_pairs(getattr(args, "trailer", None) or [], "--trailer")
    except InvalidBundle as error:
        raise UsageError(error.message) from None
    return [("trailer", f"{key}={value}") for key, value in trailers]


def _bundles_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1/bundles") else f"{url}/v1/bundles"
