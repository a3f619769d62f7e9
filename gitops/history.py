"""git's output read as it comes (`git_records`): what the store's reads
(`gitops.store.reads`) stream a long log through, never holding it whole."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from gitops.errors import NotFound, StoreUnavailable
from gitops.store.objects import base_env

_TIMEOUT = 300


def _command(repo: Path) -> tuple[list[str], dict[str, str]]:
    """git in `repo` the way the store runs it (`run_git`, `base_env`: no GIT_DIR or other
    variable of the caller's points it elsewhere), and never in a repository above `repo`."""
    env = {**base_env(), "GIT_CEILING_DIRECTORIES": str(repo.resolve().parent)}
    return ["-C", str(repo), "-c", "log.showSignature=false"], env


def git_records(repo: Path, *args: str, separator: bytes = b"\0") -> Iterator[str]:
    """git's stdout cut at `separator`, read as git writes it (a `git log -z` over a long
    history is never held whole); errors (NotFound: no repository; else StoreUnavailable)
    once the output has ended. The process is killed when the caller stops early or after
    the time limit."""
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
