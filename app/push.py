"""`statewriter push DIR`: a pipeline's work-writer stage (CONTRACT section 8).

Reads `DIR/output` (recursively) and `DIR/metadata`, packs them into a gzip'd tar in memory
and POSTs it to `<URL>/v1/bundles` as `application/gzip`, the identity in query parameters
and the token from `STATEWRITER_TOKEN`. Connection failures (and 502/503/504, which a
restarting service or a proxy in front of it answers) are retried with exponential backoff
and jitter: a bundle is idempotent, posting it twice changes nothing the second time.

Exit codes: 0 on any 2xx (the outcome is printed), 1 on any other answer or when the
service stays unreachable (the reason goes to stderr), 2 on a local usage problem.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx

RETRY_STATUSES = frozenset({502, 503, 504})
BACKOFF_BASE = 0.5  # seconds before the first retry
BACKOFF_CAP = 30.0
TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class PushError(Exception):
    """A local problem with the folders or the arguments (exit code 2)."""


def push_command(args: argparse.Namespace) -> int:
    try:
        params = _identity(args)
        body = pack(Path(args.dir))
    except PushError as error:
        print(f"statewriter push: {error}", file=sys.stderr)
        return 2
    headers = {"Content-Type": "application/gzip", "Accept": "application/json"}
    token = os.environ.get("STATEWRITER_TOKEN", "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = _bundles_url(str(args.url))
    retries = max(0, int(args.retries))
    try:
        response = _post(url, body, params, headers, retries)
    except httpx.HTTPError as error:
        print(f"statewriter push: cannot reach {url} after {retries + 1} attempts: {error}",
              file=sys.stderr)
        return 1
    return _report(response)


def pack(directory: Path) -> bytes:
    """A gzip'd tar of DIR/output/** and DIR/metadata/**: regular files only, stable order."""
    output = directory / "output"
    if not output.is_dir():
        raise PushError(f"{output} is not a folder (the pipeline's output)")
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
        raise PushError(f"{root} must be a folder, not a link or a file")
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in subfolders:
            if (here / name).is_symlink():
                raise PushError(f"{here / name} is a link; the service refuses links")
        for name in names:
            path = here / name
            if path.is_symlink() or not path.is_file():
                raise PushError(f"{path} is not a regular file; the service refuses links and devices")
            found.append(path)
    return sorted(found)


def _identity(args: argparse.Namespace) -> dict[str, str]:
    params = {"promise": str(args.promise), "pipeline": str(args.pipeline or "default")}
    if args.request:
        namespace, _, name = str(args.request).partition("/")
        if not namespace or not name or "/" in name:
            raise PushError(f"--request must be NS/NAME, not {args.request!r}")
        params.update(namespace=namespace, name=name)
    if args.promise_generation is not None:
        if args.promise_generation < 0:
            raise PushError("--promise-generation must not be negative")
        params["promiseGeneration"] = str(args.promise_generation)
    return params


def _bundles_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1/bundles") else f"{url}/v1/bundles"


def _post(
    url: str, body: bytes, params: dict[str, str], headers: dict[str, str], retries: int
) -> httpx.Response:
    with httpx.Client(timeout=TIMEOUT) as client:
        attempt = 0
        while True:
            try:
                response = client.post(url, content=body, params=params, headers=headers)
                if response.status_code not in RETRY_STATUSES or attempt >= retries:
                    return response
                why = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                if attempt >= retries:
                    raise
                why = f"{type(error).__name__}: {error}"
            delay = backoff(attempt)
            print(f"statewriter push: {why}; retrying in {delay:.1f}s "
                  f"({attempt + 1}/{retries})", file=sys.stderr)
            time.sleep(delay)
            attempt += 1


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: half the step fixed, half random."""
    step = min(BACKOFF_CAP, BACKOFF_BASE * float(2 ** min(attempt, 32)))
    jitter: float = random.uniform(0, step / 2)
    return step / 2 + jitter


def _report(response: httpx.Response) -> int:
    body = _json(response)
    if 200 <= response.status_code < 300:
        print(f"statewriter push: HTTP {response.status_code} {body.get('state', '')}".rstrip())
        for key in ("state", "commit", "changed", "destinations", "misplaced", "reason",
                    "keptAtNewerGeneration", "replaced", "dryRun"):
            if key in body:
                value = body[key]
                if isinstance(value, list):
                    value = ", ".join(map(str, value)) or "(none)"
                elif isinstance(value, bool):
                    value = str(value).lower()
                print(f"  {key}: {value}")
        files = body.get("files")
        if isinstance(files, dict):
            counts = ", ".join(f"{len(files.get(k) or [])} {k}" for k in ("added", "changed", "removed"))
            print(f"  files: {counts}")
        return 0
    message = body.get("message") if body else None
    reason = message if isinstance(message, str) else response.text.strip()[:2000]
    print(f"statewriter push: HTTP {response.status_code}: {reason}", file=sys.stderr)
    if isinstance(message, str):
        for key, value in body.items():
            if key not in ("error", "message"):
                print(f"  {key}: {value}", file=sys.stderr)
    return 1


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
