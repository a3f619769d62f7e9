"""A request's audit trail, read straight from the commits' trailers (CONTRACT section 7).

Read-only: one `git log` pass over the branch, pre-filtered by git on the trailer text and
then matched exactly here, with each commit's files against its first parent.

What the history across requests (`gitops/audit.py`) shares with it lives here too: git run
the way the store runs it (`git_output`, `git_records`), the branch's tip (`resolve_tip`),
files from `--name-status -z` (`name_status_files`), times (`iso_time`) and the text form
(`format_history`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from gitops.commitmsg import parse_trailers, trailer_pairs
from gitops.errors import NotFound, StoreUnavailable
from gitops.layout import STATE
from gitops.store.objects import base_env, run_git

_RECORD = "\x1e"
_FIELD = "\x1f"
_FORMAT = f"--format={_RECORD}%H{_FIELD}%ct{_FIELD}%B{_FIELD}"
_STATUS = {"A": "added", "M": "changed", "T": "changed", "D": "removed"}
_TIMEOUT = 300


def request_history(
    repo: Path, branch: str, promise: str, namespace: str, name: str
) -> list[dict[str, Any]]:
    """Every commit on `branch` whose trailers name request `namespace/name` of `promise`,
    newest first. [] when there is none (or the repository has no commits yet)."""
    repo = Path(repo)
    if not repo.is_dir():
        raise NotFound(f"no repository at {repo}")
    tip = resolve_tip(repo, branch)
    if tip is None:
        return []
    request = f"{namespace}/{name}"
    output = git_output(
        repo,
        "log", "--no-renames", "--name-status", "--diff-merges=first-parent", "--root", "-z",
        "--no-color", "--fixed-strings", "--all-match",
        f"--grep=Statewriter-Promise: {promise}", f"--grep=Statewriter-Request: {request}",
        _FORMAT, tip, "--",
    )
    entries = []
    for record in output.split(_RECORD)[1:]:
        sha, _, rest = record.partition(_FIELD)
        seconds, _, rest = rest.partition(_FIELD)
        message, _, changes = rest.rpartition(_FIELD)
        pipelines = _request_pipelines(message, promise, request)
        if pipelines is None:
            continue
        trailers = parse_trailers(message)
        entries.append({
            "sha": sha,
            "time": iso_time(int(seconds)),
            "actor": _first(trailers, "Statewriter-Actor"),
            "action": _first(trailers, "Statewriter-Action"),
            "pipelines": pipelines,
            "destinations": trailers.get("Statewriter-Destination", []),
            "message": message.strip().split("\n", 1)[0] if message.strip() else "",
            "files": name_status_files(changes),
        })
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


def _request_pipelines(message: str, promise: str, request: str) -> list[str] | None:
    """The pipelines the trailers give for (promise, request); None when they don't name it.

    Trailers come in groups (Promise, Request, Pipeline...; a destination commit that
    places several bundles has one group each), so a request is matched within its group:
    promise A with request x and promise B with request y do not name B's request x."""
    promise_now: str | None = None
    inside = named = False
    pipelines: list[str] = []
    for key, value in trailer_pairs(message):
        if key == "Statewriter-Promise":
            promise_now, inside = value, False
        elif key == "Statewriter-Request":
            inside = promise_now == promise and value == request
            named = named or inside
        elif key == "Statewriter-Pipeline" and inside and value not in pipelines:
            pipelines.append(value)
    return pipelines if named else None


def name_status_files(changes: str) -> dict[str, list[str]]:
    """`git log --name-status -z` output of one commit as its files added, changed and
    removed (sorted), leaving out the service's own records under `.statewriter/`."""
    files: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    tokens = [t for t in changes.lstrip("\0\n").split("\0") if t]
    for status, path in zip(tokens[0::2], tokens[1::2], strict=False):
        if path == STATE or path.startswith(STATE + "/"):
            continue
        files[_STATUS.get(status.lstrip("\n")[:1], "changed")].append(path)
    for paths in files.values():
        paths.sort()
    return files


def iso_time(seconds: int) -> str:
    """A commit time as the API gives it: RFC 3339 in UTC, to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first(trailers: dict[str, list[str]], key: str) -> str | None:
    values = trailers.get(key)
    return values[0] if values else None


def resolve_tip(repo: Path, branch: str) -> str | None:
    """The commit `branch` points at; None when the repository has no commits at all."""
    candidates = [f"refs/heads/{branch}"]
    if not branch.startswith("-"):
        candidates.append(branch)
    for candidate in candidates:
        code, out, _ = _run(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if code == 0:
            return out.strip()
    if not git_output(repo, "rev-list", "--max-count=1", "--all").strip():
        return None
    raise NotFound(f"no branch {branch!r} in {repo}")


def _command(repo: Path) -> tuple[list[str], dict[str, str]]:
    """git in `repo` the way the store runs it (`run_git`, `base_env`: no GIT_DIR or other
    variable of the caller's points it elsewhere), and never in a repository above `repo`."""
    env = {**base_env(), "GIT_CEILING_DIRECTORIES": str(repo.resolve().parent)}
    return ["-C", str(repo), "-c", "log.showSignature=false"], env


def _run(repo: Path, *args: str) -> tuple[int, str, str]:
    prefix, env = _command(repo)
    try:
        proc = run_git([*prefix, *args], env, timeout=_TIMEOUT)
    except OSError as error:
        raise StoreUnavailable(f"git {args[0]} in {repo} failed: {error}") from None
    return (proc.returncode, proc.stdout.decode("utf-8", errors="replace"),
            proc.stderr.decode("utf-8", errors="replace"))


def git_output(repo: Path, *args: str) -> str:
    """git's stdout; NotFound when `repo` is no repository, StoreUnavailable on any failure."""
    code, out, err = _run(repo, *args)
    if code != 0:
        _raise(repo, args[0], code, err)
    return out


def git_records(repo: Path, *args: str, separator: bytes = b"\0") -> Iterator[str]:
    """git's stdout cut at `separator`, read as git writes it (a `git log -z` over a long
    history is never held whole); errors as `git_output`'s, once the output has ended. The
    process is killed when the caller stops early or after the time limit."""
    prefix, env = _command(repo)
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(["git", *prefix, *args], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=errors, env=env,
                                    start_new_session=True)
        except OSError as error:
            raise StoreUnavailable(f"git {args[0]} in {repo} failed: {error}") from None
        timer = threading.Timer(_TIMEOUT, _kill, (proc,))
        timer.start()
        ended = False
        try:
            assert proc.stdout is not None
            pending = b""
            while chunk := proc.stdout.read(1 << 16):
                *done, pending = (pending + chunk).split(separator)
                for record in done:
                    yield record.decode("utf-8", errors="replace")
            if pending:
                yield pending.decode("utf-8", errors="replace")
            ended = True
        finally:
            timer.cancel()  # before the process is reaped: its id is never reused under us
            if not ended:
                _kill(proc)
            code = proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if code != 0:
            if code < 0:
                raise StoreUnavailable(f"git {args[0]} in {repo} was stopped (signal {-code}): "
                                       f"it took more than {_TIMEOUT}s or was killed")
            errors.seek(0)
            _raise(repo, args[0], code, errors.read().decode("utf-8", errors="replace"))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _raise(repo: Path, verb: str, code: int, err: str) -> NoReturn:
    detail = err.strip().splitlines()[0] if err.strip() else f"exit status {code}"
    if "not a git repository" in err:
        raise NotFound(f"{repo} is not a git repository")
    raise StoreUnavailable(f"git {verb} in {repo} failed: {detail}")
