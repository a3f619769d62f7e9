"""`statewriter delete`: the work-writer stage of a Kratix delete workflow."""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx

from app.cli.client import (
    add_request_flags,
    add_retries_flag,
    add_url_flag,
    auth_headers,
    call,
    check_names,
    json_body,
    print_answer,
    print_refusal,
    required_url,
    split_request,
)
from app.cli.exits import UsageError

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


def add_parser(commands: Any) -> None:
    delete = commands.add_parser(
        "delete", help="remove what a request owns (delete workflows; idempotent)",
        description=DELETE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_url_flag(delete)
    add_request_flags(delete)
    delete.add_argument("--pipeline", default=os.environ.get("PIPELINE") or None,
                        help="only this pipeline's output (default: $PIPELINE, else every pipeline)")
    add_retries_flag(delete, 5)


def delete_command(args: argparse.Namespace) -> int:
    try:
        url, params = _delete_target(args)
    except UsageError as error:
        raise UsageError(f"delete: {error}") from None
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
    base = required_url(args.url)
    if not args.promise or not args.request:
        raise UsageError("give --promise and --request NS/NAME, or set PROMISE and REQUEST")
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
