"""What the commands that call the service (`push`, `delete`, `rollback`, `kratix`,
`validate --url`, `history --url`) share: their `--url` and `--retries` flags, the service's
URL (the flag, else `STATEWRITER_URL`), the token (`STATEWRITER_TOKEN`), the request
identity, retries with backoff, and printing the service's answer.

Connection failures (and 502/503/504, which a restarting service or a proxy in front of it
answers) are retried with exponential backoff and jitter. Both commands are idempotent, so
a retried request that had in fact arrived changes nothing the second time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

import httpx

from app.cli.exits import UsageError, describe
from gitops import names
from gitops.quoting import quoted
from gitops.redact import redact

RETRY_STATUSES = frozenset({502, 503, 504})
BACKOFF_BASE = 0.5  # seconds before the first retry
BACKOFF_CAP = 30.0
TIMEOUT = httpx.Timeout(300.0, connect=10.0)
URL_VARIABLE = "STATEWRITER_URL"
TOKEN_VARIABLE = "STATEWRITER_TOKEN"


def add_url_flag(parser: argparse._ActionsContainer, what: str = "the service") -> None:
    """`--url`, read when the command runs (`given_url`): the flag, else STATEWRITER_URL."""
    parser.add_argument("--url", help=f"{what}'s base URL, e.g. http://statewriter:8080 "
                                      f"(default: ${URL_VARIABLE})")


def add_request_flags(parser: argparse._ActionsContainer) -> None:
    """`--promise` and `--request NS/NAME`, by default as a Kratix pipeline's environment names
    them ($PROMISE, $REQUEST)."""
    parser.add_argument("--promise", default=os.environ.get("PROMISE"),
                        help="the promise (default: $PROMISE)")
    parser.add_argument("--request", metavar="NS/NAME", default=os.environ.get("REQUEST"),
                        help="the resource request (default: $REQUEST)")


def add_retries_flag(parser: argparse._ActionsContainer, default: int) -> None:
    parser.add_argument("--retries", type=int, default=default,
                        help="retries with backoff while the service cannot be reached or "
                             "answers 502, 503 or 504 (default: %(default)s)")


def given_url(flag: str | None) -> str | None:
    """The service's base URL as given: `--url`, else STATEWRITER_URL, checked (None: neither)."""
    if flag:
        return service_url(flag)
    from_environment = os.environ.get(URL_VARIABLE, "").strip()
    return service_url(from_environment, URL_VARIABLE) if from_environment else None


def required_url(flag: str | None) -> str:
    """`given_url`, a UsageError when neither the flag nor the variable is set."""
    url = given_url(flag)
    if url is None:
        raise UsageError(f"give --url or set {URL_VARIABLE}")
    return url


def auth_headers() -> dict[str, str]:
    """The bearer token from `STATEWRITER_TOKEN`, if set."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def service_url(value: str, flag: str = "--url") -> str:
    """The service's base URL (no trailing slash); a UsageError unless it is http(s)://HOST."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as error:
        raise UsageError(f"{flag} {quoted(redact(value))} is not a URL: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"{flag} {quoted(redact(value))} must be an http:// or https:// URL with a host, "
                         "e.g. http://statewriter:8080")
    return value.rstrip("/")


def split_request(value: str) -> tuple[str, str]:
    """`NS/NAME` as (namespace, name)."""
    namespace, _, name = value.partition("/")
    if not namespace or not name or "/" in name:
        raise UsageError(f"--request must be NS/NAME, not {quoted(value)}")
    return namespace, name


def check_names(promise: str, namespace: str, name: str, pipeline: str | None = None) -> None:
    """A UsageError unless each name is one the service accepts (DNS-1123, as it checks)."""
    checks = [(promise, names.is_label, "promise"), (namespace, names.is_label, "namespace"),
              (name, names.is_subdomain, "request name")]
    if pipeline is not None:
        checks.append((pipeline, names.is_label, "pipeline"))
    for value, valid, what in checks:
        if not valid(value):
            raise UsageError(f"{what} {quoted(value)} is not a DNS-1123 name")


def call(
    command: str,
    method: str,
    url: str,
    retries: int,
    *,
    content: bytes | None = None,
    params: dict[str, str] | Sequence[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response | None:
    """The service's answer, after retries; None (the reason printed) if it stays unreachable."""
    retries = max(0, retries)
    with httpx.Client(timeout=TIMEOUT) as client:
        try:
            query = params if params is None or isinstance(params, dict) else tuple(params)
            request = client.build_request(method, url, content=content, params=query,
                                           headers=headers)
            return _send(client, request, command, retries)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            attempts = f"{retries + 1} attempt{'s' if retries else ''}"
            print(f"statewriter: {command}: cannot reach {redact(url)} after {attempts}: "
                  f"{describe(error)}", file=sys.stderr)
            return None


def _send(client: httpx.Client, request: httpx.Request, command: str, retries: int) -> httpx.Response:
    attempt = 0
    while True:
        try:
            response = client.send(request)
            if response.status_code not in RETRY_STATUSES or attempt >= retries:
                return response
            why = f"HTTP {response.status_code}"
        except httpx.TransportError as error:
            if attempt >= retries:
                raise
            why = f"{type(error).__name__}: {describe(error)}"
        delay = backoff(attempt)
        print(f"statewriter: {command}: {why}; retrying in {delay:.1f}s ({attempt + 1}/{retries})",
              file=sys.stderr)
        time.sleep(delay)
        attempt += 1


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: half the step fixed, half random."""
    step = min(BACKOFF_CAP, BACKOFF_BASE * float(2 ** min(attempt, 32)))
    jitter: float = random.uniform(0, step / 2)
    return step / 2 + jitter


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when it is not one."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def print_answer(command: str, response: httpx.Response, keys: Sequence[str]) -> None:
    """A 2xx answer on stdout: the status, the given keys present in it, file counts."""
    body = json_body(response)
    print(f"statewriter {command}: HTTP {response.status_code} {body.get('state', '')}".rstrip())
    for key in keys:
        if key in body:
            print(f"  {key}: {_shown(body[key])}")
    files = body.get("files")
    if isinstance(files, dict):
        counts = ", ".join(f"{len(files.get(k) or [])} {k}" for k in ("added", "changed", "removed"))
        print(f"  files: {counts}")


def print_refusal(command: str, response: httpx.Response) -> int:
    """Any other answer on stderr with the service's reason; the exit code (1)."""
    body = json_body(response)
    message = body.get("message")
    reason = message if isinstance(message, str) else response.text[:2000]
    reason = " ".join(reason.split())  # an HTML page from a proxy on one line, too
    if response.status_code == 401 and not auth_headers():
        reason += f" (set {TOKEN_VARIABLE} to one of the service's tokens)"
    print(f"statewriter: {command}: HTTP {response.status_code}: {reason}", file=sys.stderr)
    if isinstance(message, str):
        for key, value in body.items():
            if key not in ("error", "message"):
                print(f"  {key}: {value}", file=sys.stderr)
    return 1


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
