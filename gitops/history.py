"""git's output read as it comes (`git_records`): what the store's reads
(`gitops.store.reads`) stream a long log through, never holding it whole."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path
from typing import NoReturn

from gitops.errors import NotFound, StoreUnavailable
from gitops.git import process

_TIMEOUT = 300


def _command(repo: Path) -> tuple[list[str], dict[str, str]]:
    """git in `repo` the way the store runs it (no GIT_DIR or other variable of the caller's
    points it elsewhere), and never in a repository above `repo`."""
    return ["-C", str(repo), "-c", "log.showSignature=false"], process.environment(repository=repo)


def git_records(repo: Path, *args: str, separator: bytes = b"\0") -> Generator[str, None, None]:
    """git's stdout cut at `separator`, read as git writes it (a `git log -z` over a long
    history is never held whole); errors (NotFound: no repository; else StoreUnavailable)
    once the output has ended. The process is killed when the caller stops early or after
    the time limit."""
    prefix, env = _command(repo)
    records = process.stream(["git", *prefix, *args], env, separator=separator, timeout=_TIMEOUT)
    try:
        with contextlib.closing(records):  # stopping early ends git now, not when collected
            for record in records:
                yield record.decode("utf-8", errors="replace")
        return
    except OSError as error:  # git could not be started
        raise StoreUnavailable(f"git {args[0]} in {repo} failed: {error}") from None
    except process.Failed as failed:
        code, err = failed.returncode, failed.stderr.decode("utf-8", errors="replace")
    if code < 0:
        raise StoreUnavailable(f"git {args[0]} in {repo} was stopped (signal {-code}): "
                               f"it took more than {_TIMEOUT}s or was killed")
    _raise(repo, args[0], code, err)


def _raise(repo: Path, verb: str, code: int, err: str) -> NoReturn:
    detail = err.strip().splitlines()[0] if err.strip() else f"exit status {code}"
    if "not a git repository" in err:
        raise NotFound(f"{repo} is not a git repository")
    raise StoreUnavailable(f"git {verb} in {repo} failed: {detail}")
