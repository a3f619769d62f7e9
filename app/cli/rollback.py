"""`statewriter rollback`: a request's output, every pipeline of it, written again as it
stood at an earlier commit of the branch (POST .../rollback), the other write of a whole
request by its name."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from app.cli.client import (
    add_request_flags,
    add_retries_flag,
    add_url_flag,
    auth_headers,
    call,
    check_names,
    print_answer,
    print_refusal,
    required_url,
    split_request,
)
from app.cli.exits import UsageError
from gitops.quoting import quoted

ROLLBACK_HELP = """\
Write a request's output, every pipeline of it, as it stood at an earlier commit of the
branch, in one commit: sends POST /v1/promises/P/requests/NS/NAME/rollback with
{"commit": SHA} and the token from STATEWRITER_TOKEN, retrying connection failures with
backoff (sent twice, the second changes nothing). Each flag defaults to an environment
variable: --url STATEWRITER_URL, --promise PROMISE, --request REQUEST;
`statewriter rollback PROMISE NS/NAME --to SHA` says the same.

The output passes the checks a post of it would pass now: a conflict with what others wrote
since is refused (HTTP 409), an object its destination would refuse now too (422). The
request stays at the destination it is placed at now. SHA: a commit of the branch's history
(`statewriter history PROMISE NS/NAME` lists the request's), at least 4 hex digits.
--dry-run answers what would change without committing.

Exit 0 on any 2xx (written, unchanged, or pending), 1 on any other answer (the service's
reason goes to stderr) or when the service stays unreachable; 2 on a usage problem.
"""
ROLLBACK_KEYS = ("state", "commit", "changed", "rolledBackTo", "destinations", "pipelines",
                 "removed", "misplaced", "reason", "replaced", "keptAtNewerGeneration", "dryRun")
_COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,64}")



def add_parser(commands: Any) -> None:
    rollback = commands.add_parser(
        "rollback", help="write a request's output as it stood at an earlier commit",
        description=ROLLBACK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    rollback.add_argument("promise_arg", nargs="?", metavar="PROMISE",
                          help="the promise (or --promise)")
    rollback.add_argument("request_arg", nargs="?", metavar="NS/NAME",
                          help="the request (or --request)")
    add_url_flag(rollback)
    add_request_flags(rollback)
    rollback.add_argument("--commit", "--to", metavar="SHA", dest="commit",
                          help="the commit of the branch to roll back to: an id, or 4 or more "
                               "of its first hex digits (required)")
    rollback.add_argument("--dry-run", action="store_true",
                          help="answer what would change, without committing (default: commit)")
    add_retries_flag(rollback, 5)


def rollback_command(args: argparse.Namespace) -> int:
    try:
        url, commit = _rollback_target(args)
    except UsageError as error:
        raise UsageError(f"rollback: {error}") from None
    headers = {"Content-Type": "application/json", "Accept": "application/json", **auth_headers()}
    response = call("rollback", "POST", url, int(args.retries),
                    content=json.dumps({"commit": commit}).encode(),
                    params={"dryRun": "true"} if args.dry_run else None, headers=headers)
    if response is None:
        return 1
    if not response.is_success:
        return print_refusal("rollback", response)
    print_answer("rollback", response, ROLLBACK_KEYS)
    return 0


def _rollback_target(args: argparse.Namespace) -> tuple[str, str]:
    """The request's rollback URL and the commit, every name checked as the service checks it.
    The request may be named by flags or, as `statewriter rollback PROMISE NS/NAME`, by
    arguments (not both, unless they agree)."""
    promise = _one_of(args.promise_arg, args.promise, "PROMISE", "--promise")
    request = _one_of(args.request_arg, args.request, "NS/NAME", "--request")
    base = required_url(args.url)
    if not promise or not request:
        raise UsageError("give --promise and --request NS/NAME (or PROMISE NS/NAME), or set "
                         "PROMISE and REQUEST")
    if not args.commit:
        raise UsageError("give --commit SHA: the commit to roll the request back to")
    if not _COMMIT_ID.fullmatch(args.commit):
        raise UsageError(f"--commit must be a commit id (4 to 64 hex digits), not {quoted(args.commit)}")
    namespace, name = split_request(request)
    check_names(promise, namespace, name)
    return f"{base}/v1/promises/{promise}/requests/{namespace}/{name}/rollback", args.commit


def _one_of(argument: str | None, flag: str | None, what: str, flag_name: str) -> str | None:
    if argument and flag and argument != flag:
        raise UsageError(f"{what} {quoted(argument)} and {flag_name} {quoted(flag)} disagree: give one")
    return argument or flag
