"""`statewriter delete`: the work-writer stage of a Kratix delete workflow; and `statewriter
rollback`, the other write of a whole request by its name."""

from __future__ import annotations

import argparse
import json
import re
import sys

import httpx

from app.cli.client import (
    UsageError,
    auth_headers,
    call,
    check_names,
    json_body,
    print_answer,
    print_refusal,
    service_url,
    split_request,
)

DELETE_HELP = """\
Remove everything a resource request owns from the state store: what a Kratix delete
workflow runs. Sends DELETE /v1/promises/P/requests/NS/NAME (with ?pipeline=X, only that
pipeline's output) with the token from STATEWRITER_TOKEN, retrying connection failures
with backoff. Each flag defaults to an environment variable: --url STATEWRITER_URL,
--promise PROMISE, --request REQUEST, --pipeline PIPELINE.

Without --pipeline the output of EVERY pipeline of the request goes. Do not pass the delete
workflow's own pipeline name: nothing is stored under it, so nothing would be removed.

Idempotent, so a delete workflow can be re-run: when the service has nothing stored for the
request (404 from statewriter), it says so and exits 0. Exit 1 on any other non-2xx answer
(the service's reason goes to stderr) or when the service stays unreachable; 2 on a usage
problem.
"""


def delete_command(args: argparse.Namespace) -> int:
    try:
        url, params = _delete_target(args)
    except UsageError as error:
        print(f"statewriter: delete: {error}", file=sys.stderr)
        return 2
    headers = {"Accept": "application/json", **auth_headers()}
    response = call("delete", "DELETE", url, int(args.retries), params=params, headers=headers)
    if response is None:
        return 1
    nothing_stored = _nothing_stored(response)
    if nothing_stored:
        print(f"statewriter delete: nothing to delete: {nothing_stored} "
              "(already deleted, or never written)")
        return 0
    if not response.is_success:
        return print_refusal("delete", response)
    print_answer("delete", response, ("destinations", "commit", "changed"))
    print(f"  pipelines: {', '.join(_deleted_pipelines(response)) or '(none)'}")
    return 0


def _deleted_pipelines(response: httpx.Response) -> list[str]:
    deleted = json_body(response).get("deleted")
    owners = deleted if isinstance(deleted, list) else []
    return [str(owner.get("pipeline")) for owner in owners if isinstance(owner, dict)]


def _delete_target(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The request's URL and query, every name checked as the service checks it."""
    if not args.url:
        raise UsageError("give --url or set STATEWRITER_URL")
    if not args.promise or not args.request:
        raise UsageError("give --promise and --request NS/NAME, or set PROMISE and REQUEST")
    base = service_url(str(args.url))
    namespace, name = split_request(str(args.request))
    check_names(str(args.promise), namespace, name,
                str(args.pipeline) if args.pipeline is not None else None)
    url = f"{base}/v1/promises/{args.promise}/requests/{namespace}/{name}"
    return url, ({"pipeline": str(args.pipeline)} if args.pipeline is not None else {})


def _nothing_stored(response: httpx.Response) -> str | None:
    """statewriter's own 404 message, not a 404 from a wrong URL or a proxy in between."""
    body = json_body(response)
    message = body.get("message")
    if response.status_code == 404 and body.get("error") == "NotFound" and isinstance(message, str):
        return message
    return None


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


def rollback_command(args: argparse.Namespace) -> int:
    try:
        url, commit = _rollback_target(args)
    except UsageError as error:
        print(f"statewriter: rollback: {error}", file=sys.stderr)
        return 2
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
    if not args.url:
        raise UsageError("give --url or set STATEWRITER_URL")
    if not promise or not request:
        raise UsageError("give --promise and --request NS/NAME (or PROMISE NS/NAME), or set "
                         "PROMISE and REQUEST")
    if not args.commit:
        raise UsageError("give --commit SHA: the commit to roll the request back to")
    if not _COMMIT_ID.fullmatch(args.commit):
        raise UsageError(f"--commit must be a commit id (4 to 64 hex digits), not {args.commit!r}")
    base = service_url(str(args.url))
    namespace, name = split_request(request)
    check_names(promise, namespace, name)
    return f"{base}/v1/promises/{promise}/requests/{namespace}/{name}/rollback", args.commit


def _one_of(argument: str | None, flag: str | None, what: str, flag_name: str) -> str | None:
    if argument and flag and argument != flag:
        raise UsageError(f"{what} {argument!r} and {flag_name} {flag!r} disagree: give one")
    return argument or flag
