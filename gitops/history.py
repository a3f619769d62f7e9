"""A request's audit trail, read straight from the commits' trailers (CONTRACT section 7).

Read-only: one `git log` pass over the branch, pre-filtered by git on the trailer text and
then matched exactly here, with each commit's files against its first parent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitops.commitmsg import parse_trailers
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
    tip = _resolve(repo, branch)
    if tip is None:
        return []
    request = f"{namespace}/{name}"
    output = _git(
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
            "time": datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "actor": _first(trailers, "Statewriter-Actor"),
            "action": _first(trailers, "Statewriter-Action"),
            "pipelines": pipelines,
            "destinations": trailers.get("Statewriter-Destination", []),
            "message": message.strip().split("\n", 1)[0] if message.strip() else "",
            "files": _files(changes),
        })
    return entries


def format_history(entries: list[dict[str, Any]]) -> str:
    """One block per commit: short sha, time, actor, action, summary, then +/~/- files."""
    if not entries:
        return "no commits name this request\n"
    blocks = []
    marks = (("added", "+"), ("changed", "~"), ("removed", "-"))
    for entry in entries:
        head = f"{entry['sha'][:12]}  {entry['time']}  {entry['actor'] or '?'}  {entry['action'] or '?'}"
        lines = [head, f"    {entry['message']}"]
        details = []
        if entry.get("pipelines"):
            details.append("pipelines: " + ", ".join(entry["pipelines"]))
        if entry.get("destinations"):
            details.append("destinations: " + ", ".join(entry["destinations"]))
        if details:
            lines.append("    " + "; ".join(details))
        files = entry.get("files") or {}
        for key, mark in marks:
            lines.extend(f"    {mark} {path}" for path in files.get(key, []))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _request_pipelines(message: str, promise: str, request: str) -> list[str] | None:
    """The pipelines the trailers give for (promise, request); None when they don't name it.

    Trailers come in groups (Promise, Request, Pipeline...; a destination commit that
    places several bundles has one group each), so a request is matched within its group:
    promise A with request x and promise B with request y do not name B's request x."""
    paragraph = message.strip().split("\n\n")[-1]
    promise_now: str | None = None
    inside = named = False
    pipelines: list[str] = []
    for line in paragraph.splitlines():
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        value = value.strip()
        if key == "Statewriter-Promise":
            promise_now, inside = value, False
        elif key == "Statewriter-Request":
            inside = promise_now == promise and value == request
            named = named or inside
        elif key == "Statewriter-Pipeline" and inside and value not in pipelines:
            pipelines.append(value)
    return pipelines if named else None


def _files(changes: str) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
    tokens = [t for t in changes.lstrip("\0\n").split("\0") if t]
    for status, path in zip(tokens[0::2], tokens[1::2], strict=False):
        if path == STATE or path.startswith(STATE + "/"):
            continue
        files[_STATUS.get(status[:1], "changed")].append(path)
    for paths in files.values():
        paths.sort()
    return files


def _first(trailers: dict[str, list[str]], key: str) -> str | None:
    values = trailers.get(key)
    return values[0] if values else None


def _resolve(repo: Path, branch: str) -> str | None:
    """The commit `branch` points at; None when the repository has no commits at all."""
    candidates = [f"refs/heads/{branch}"]
    if not branch.startswith("-"):
        candidates.append(branch)
    for candidate in candidates:
        code, out, _ = _run(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if code == 0:
            return out.strip()
    if not _git(repo, "rev-list", "--max-count=1", "--all").strip():
        return None
    raise NotFound(f"no branch {branch!r} in {repo}")


def _run(repo: Path, *args: str) -> tuple[int, str, str]:
    """git in `repo` the way the store runs it (`run_git`, `base_env`: no GIT_DIR or other
    variable of the caller's points it elsewhere), and never in a repository above `repo`."""
    env = {**base_env(), "GIT_CEILING_DIRECTORIES": str(repo.resolve().parent)}
    try:
        proc = run_git(["-C", str(repo), "-c", "log.showSignature=false", *args], env,
                       timeout=_TIMEOUT)
    except OSError as error:
        raise StoreUnavailable(f"git {args[0]} in {repo} failed: {error}") from None
    return (proc.returncode, proc.stdout.decode("utf-8", errors="replace"),
            proc.stderr.decode("utf-8", errors="replace"))


def _git(repo: Path, *args: str) -> str:
    code, out, err = _run(repo, *args)
    if code != 0:
        detail = err.strip().splitlines()[0] if err.strip() else f"exit status {code}"
        if "not a git repository" in err:
            raise NotFound(f"{repo} is not a git repository")
        raise StoreUnavailable(f"git {args[0]} in {repo} failed: {detail}")
    return out
