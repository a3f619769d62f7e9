"""The one place processes start: git, gpg, gpgconf, kubectl and `git http-backend`.

Every process gets its environment from `environment` (or, for the CGI, `cgi_environment`)
and runs one of four ways:

- `run`: to the end, with its input and a time limit, in a session of its own so that a
  timeout also kills what it started (ssh, curl, pack-objects);
- `stream`: its output cut into records as it comes, the process killed when the caller
  stops early or after the time limit, its failure raised once the output has ended;
- `CatFile`: one long-lived `git cat-file --batch`, restarted once when it dies;
- `spawned`: asynchronously, for a request's `git http-backend`, killed with its process
  group when the request ends or its task is cancelled.

Nothing else in `app/` or `gitops/` imports subprocess (tests/test_structure.py checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitops.errors import StoreUnavailable
from gitops.quoting import quoted

# Variables that would point git at another repository, index or object directory
# (e.g. when tests run from inside a git hook).
REPOSITORY_VARIABLES = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES", "GIT_QUARANTINE_PATH", "GIT_REPLACE_REF_BASE",
)
# What would let gpg prompt on a terminal or a display: it must fail instead.
_GPG_PROMPTS = ("GPG_TTY", "DISPLAY")
# A CGI gets its meta-variables and this, nothing of the service's environment (its tokens).
_CGI_PATH = "/usr/bin:/bin:/usr/local/bin"
ASKPASS_SCRIPT = """#!/bin/sh
# Answers git's credential prompts from variables set only for that git process.
case "$1" in
  Username*) printf '%s\\n' "$STATEWRITER_GIT_USERNAME" ;;
  *) printf '%s\\n' "$STATEWRITER_GIT_PASSWORD" ;;
esac
"""
_USERNAME, _PASSWORD = "STATEWRITER_GIT_USERNAME", "STATEWRITER_GIT_PASSWORD"  # ASKPASS_SCRIPT's
CATFILE_BATCH = 256  # requests per cat-file round: stays well below a pipe buffer, so no deadlock
_READ = 1 << 16  # bytes a stream reads at a time

Finished = subprocess.CompletedProcess[bytes]
AsyncProcess = asyncio.subprocess.Process


# -- environment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Askpass:
    """git's credential prompts answered by `script` (a file holding ASKPASS_SCRIPT) from
    variables of that git process alone: the secret is never in git config or a URL."""

    script: Path
    username: str
    password: str = field(repr=False)


def environment(
    *,
    repository: Path | None = None,
    no_system_config: bool = False,
    config: Mapping[str, str] | None = None,
    askpass: Askpass | None = None,
    ssh_command: Sequence[str] | None = None,
    gnupg_home: Path | None = None,
) -> dict[str, str]:
    """The caller's environment without the variables that point git elsewhere, with
    `LC_ALL=C` (rejection reasons are matched in English) and no terminal prompt; then:

    - `repository`: git never looks for a repository above it (a folder that is none
      fails instead of finding the one it sits in);
    - `no_system_config`: the machine's /etc/gitconfig is not read (a clone to verify);
    - `config`: git configuration, after what the caller's GIT_CONFIG_COUNT gives;
    - `askpass`: credentials answered by `Askpass.script`;
    - `ssh_command`: how git runs ssh;
    - `gnupg_home`: gpg's keyring, and no terminal or display to ask a passphrase on."""
    env = {k: v for k, v in os.environ.items() if k not in REPOSITORY_VARIABLES}
    env["LC_ALL"] = "C"
    env["GIT_TERMINAL_PROMPT"] = "0"
    if repository is not None:
        env["GIT_CEILING_DIRECTORIES"] = str(repository.resolve().parent)
    if no_system_config:
        env["GIT_CONFIG_NOSYSTEM"] = "1"
    if config:
        _add_config(env, config)
    if askpass is not None:
        env.update({"GIT_ASKPASS": str(askpass.script), _USERNAME: askpass.username,
                    _PASSWORD: askpass.password})
    if ssh_command is not None:
        env["GIT_SSH_COMMAND"] = shlex.join(ssh_command)
    if gnupg_home is not None:
        for name in _GPG_PROMPTS:
            env.pop(name, None)
        env["GNUPGHOME"] = str(gnupg_home)
    return env


def with_password(env: Mapping[str, str], password: str) -> dict[str, str]:
    """`env` whose askpass answers `password`: a token good for one git process."""
    return {**env, _PASSWORD: password}


def cgi_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """A CGI program's environment: its meta-variables and a fixed PATH. Nothing of the
    service's own environment reaches a program that answers the network."""
    return {**variables, "PATH": _CGI_PATH}


def _add_config(env: dict[str, str], config: Mapping[str, str]) -> None:
    count = int(env.get("GIT_CONFIG_COUNT") or 0)
    for key, value in config.items():
        env[f"GIT_CONFIG_KEY_{count}"] = key
        env[f"GIT_CONFIG_VALUE_{count}"] = value
        count += 1
    env["GIT_CONFIG_COUNT"] = str(count)


# -- run to the end -------------------------------------------------------------------------


class TimedOut(Exception):
    """A process ran past its time limit: it and all it started were killed."""

    def __init__(self, command: Sequence[str], seconds: float) -> None:
        super().__init__(f"{Path(command[0]).name} timed out after {seconds:g} s")
        self.seconds = seconds


def run(
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    input: bytes | None = None,
    timeout: float | None = None,
    output: bool = True,
) -> Finished:
    """Run `command` to its end in a session of its own (no terminal to prompt on), so that
    a timeout (TimedOut) kills its helpers too. `output=False` drops stdout unread (a
    kustomize build's can be tens of MB that nothing looks at)."""
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            assert timeout is not None
            raise TimedOut(command, timeout) from None
    return subprocess.CompletedProcess(list(command), proc.returncode, out or b"", err)


def run_git(
    args: Sequence[str],
    env: Mapping[str, str],
    input: bytes | None = None,
    timeout: float | None = None,
) -> Finished:
    """`run` of git; a timeout is StoreUnavailable naming git's verb (the first argument
    that is no option)."""
    try:
        return run(["git", *args], env, input=input, timeout=timeout)
    except TimedOut:
        verb = next((a for a in args if not a.startswith("-")), "")
        raise StoreUnavailable(f"git {verb} timed out") from None


# -- stream ---------------------------------------------------------------------------------


class Failed(Exception):
    """A streamed process ended badly: its exit status (negative: the signal that killed
    it, after the time limit or by someone else) and what it wrote to stderr."""

    def __init__(self, returncode: int, stderr: bytes) -> None:
        super().__init__(f"exit status {returncode}")
        self.returncode = returncode
        self.stderr = stderr


def stream(
    command: Sequence[str], env: Mapping[str, str], *, separator: bytes, timeout: float
) -> Generator[bytes, None, None]:
    """`command`'s stdout cut at `separator`, read as it is written (a `git log -z` over a
    long history is never held whole). The process is killed with its group when the
    caller stops early or after `timeout` seconds; a bad end raises Failed once the output
    has ended. stderr goes to a file: a pipe nobody reads could fill and stall it."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errors, env=dict(env), start_new_session=True)
        timer = threading.Timer(timeout, _kill_group, (proc.pid,))
        timer.start()
        ended = False
        try:
            assert proc.stdout is not None
            pending = b""
            while chunk := proc.stdout.read(_READ):
                *done, pending = (pending + chunk).split(separator)
                yield from done
            if pending:
                yield pending
            ended = True
        finally:
            timer.cancel()  # before the process is reaped: its id is never reused under us
            if not ended:
                _kill_group(proc.pid)
            code = proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if code != 0:
            errors.seek(0)
            raise Failed(code, errors.read())


def _kill_group(pid: int) -> None:
    """Kill the group of a process started in a session of its own (its id is the group's),
    while it is not reaped, so the id is not someone else's."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# -- the cat-file batch ---------------------------------------------------------------------


class CatFile:
    """One long-lived `git cat-file --batch`, shared by all threads under a lock."""

    def __init__(self, git_dir: Path, env: Mapping[str, str]) -> None:
        self._cmd = ["git", f"--git-dir={git_dir}", "cat-file", "--batch"]
        self._env = dict(env)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process serving the reads now; None before the first read or after `close`."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def read(self, sha: str) -> tuple[str, bytes] | None:
        return self.read_many([sha])[0]

    def read_many(self, shas: Sequence[str]) -> list[tuple[str, bytes] | None]:
        """(type, content) for each sha, None for a missing object; one round per CATFILE_BATCH."""
        out: list[tuple[str, bytes] | None] = []
        with self._lock:
            for i in range(0, len(shas), CATFILE_BATCH):
                out.extend(self._round(shas[i:i + CATFILE_BATCH]))
        return out

    def _round(self, shas: Sequence[str]) -> list[tuple[str, bytes] | None]:
        for attempt in (1, 2):
            try:
                return self._exchange(shas)
            except (OSError, ValueError) as e:
                # A dead or desynchronised process: start afresh once, then give up.
                self._stop()
                if attempt == 2:
                    raise StoreUnavailable(f"git cat-file failed: {e}") from None
        raise AssertionError("unreachable")

    def _exchange(self, shas: Sequence[str]) -> list[tuple[str, bytes] | None]:
        if self._proc is None:
            self._proc = subprocess.Popen(
                self._cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=self._env,
            )
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write("".join(f"{sha}\n" for sha in shas).encode())
        stdin.flush()
        result: list[tuple[str, bytes] | None] = []
        for sha in shas:
            header = stdout.readline().split()
            if not header:
                raise ValueError("no answer")
            if header[-1] == b"missing" and len(header) == 2:
                result.append(None)
                continue
            if len(header) != 3 or header[0].decode() != sha:
                raise ValueError(f"unexpected answer {quoted(b' '.join(header))}")
            size = int(header[2])
            data = stdout.read(size + 1)
            if len(data) != size + 1:
                raise ValueError("short read")
            result.append((header[1].decode(), data[:size]))
        return result

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def close(self) -> None:
        with self._lock:
            self._stop()


# -- asynchronous ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def spawned(
    command: Sequence[str], env: Mapping[str, str], *, limit: int
) -> AsyncIterator[AsyncProcess]:
    """`command` with its stdin and stdout piped (stderr dropped; `limit`: the longest line
    its stdout's reader takes), in a process group of its own. However the block ends (a
    cancelled task included) the group is killed and the process reaped: `git` runs
    git-http-backend, which runs upload-pack, which runs pack-objects; all hold the pipe."""
    process = await asyncio.create_subprocess_exec(
        *command, env=dict(env), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        limit=limit, start_new_session=True,
    )
    try:
        yield process
    finally:
        kill_group(process)
        await process.wait()


def kill_group(process: AsyncProcess) -> None:
    """Kill a spawned process's group; only while its leader is not reaped (so its id is
    not someone else's)."""
    if process.returncode is None:
        _kill_group(process.pid)
