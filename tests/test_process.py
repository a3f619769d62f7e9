"""`gitops.git.process`, the one place processes start: each behaviour it guarantees, on real
processes. Every wait is for an event (a process's end is one: a pidfd becomes readable
when it exits), and the only times asserted are generous upper bounds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import time
from pathlib import Path

import pytest

from gitops.errors import StoreUnavailable
from gitops.git import process
from gitops.git.process import Askpass, CatFile, environment

# A shell that starts a long sleep in its own process group, writes the sleep's id to the
# file named by $1 and waits: the sleep is what only a kill of the whole group ends.
SLEEPER = 'sleep 1000 & echo $! > "$1"; wait'
GENEROUS = 60.0  # seconds: what no run below comes near, even on a loaded machine


def ends(pid: int) -> bool:
    """Whether process `pid` has ended, or ends within GENEROUS seconds (it need not be
    reaped: an orphan waits for init)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([handle], [], [], GENEROUS)[0])
    finally:
        os.close(handle)


def test_run_feeds_input_and_returns_output_and_status() -> None:
    done = process.run(["sh", "-c", "cat; echo oops >&2; exit 3"], environment(), input=b"in")
    assert (done.returncode, done.stdout, done.stderr) == (3, b"in", b"oops\n")
    assert process.run(["echo", "x"], environment(), output=False).stdout == b""


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    began = time.monotonic()
    with pytest.raises(process.TimedOut, match="sh timed out after 3 s"):
        process.run(["sh", "-c", SLEEPER, "sh", str(pid_file)], environment(), timeout=3)
    assert time.monotonic() - began < GENEROUS
    assert ends(int(pid_file.read_text()))


def test_a_git_timeout_is_store_unavailable_naming_the_verb() -> None:
    env = environment(config={"alias.hang": "!sleep 1000"})
    with pytest.raises(StoreUnavailable, match="git hang timed out"):
        process.run_git(["hang"], env, timeout=1)


def test_a_stream_stopped_early_kills_the_process_and_its_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = 'sleep 1000 & echo $! > "$1"; echo $$ > "$1.sh"; yes'
    records = process.stream(["sh", "-c", script, "sh", str(pid_file)], environment(),
                             separator=b"\n", timeout=GENEROUS)
    assert next(records) == b"y"
    records.close()
    assert ends(int(pid_file.read_text()))
    assert ends(int(Path(f"{pid_file}.sh").read_text()))


def test_a_stream_cuts_records_and_fails_once_the_output_has_ended() -> None:
    script = "printf 'a\\0b\\0c'; echo oops >&2; exit 3"
    records = process.stream(["sh", "-c", script], environment(), separator=b"\0", timeout=GENEROUS)
    assert [next(records), next(records), next(records)] == [b"a", b"b", b"c"]
    with pytest.raises(process.Failed) as failed:
        next(records)
    assert (failed.value.returncode, failed.value.stderr) == (3, b"oops\n")


def test_a_stream_is_killed_after_its_time_limit(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    records = process.stream(["sh", "-c", f"printf a; {SLEEPER}", "sh", str(pid_file)],
                             environment(), separator=b"\0", timeout=1)
    began = time.monotonic()
    assert next(records) == b"a"  # what came before the kill
    with pytest.raises(process.Failed) as failed:
        next(records)
    assert failed.value.returncode == -signal.SIGKILL
    assert time.monotonic() - began < GENEROUS
    assert ends(int(pid_file.read_text()))


@pytest.mark.parametrize("options", [
    {},
    {"repository": Path("/srv/data/state.git")},
    {"no_system_config": True, "config": {"http.extraHeader": "X: 1"}},
    {"askpass": Askpass(Path("/srv/askpass.sh"), "git", "secret"), "ssh_command": ["ssh"]},
    {"gnupg_home": Path("/srv/gnupg")},
])
def test_the_environment_never_points_git_elsewhere(
    options: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.setenv(name, str(tmp_path / name))
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "1")
    env = environment(**options)  # type: ignore[arg-type]
    seen = process.run(["env", "-0"], env).stdout.decode().split("\0")
    given = dict(line.split("=", 1) for line in seen if line)
    assert not {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"} & given.keys()
    assert given["LC_ALL"] == "C" and given["GIT_TERMINAL_PROMPT"] == "0"


def test_the_environment_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")  # the caller's own configuration stays first
    monkeypatch.setenv("GPG_TTY", "/dev/pts/0")
    env = environment(repository=tmp_path / "repo.git", no_system_config=True,
                      config={"credential.helper": ""}, ssh_command=["ssh", "-i", "a key"],
                      askpass=Askpass(tmp_path / "askpass.sh", "me", "pw"), gnupg_home=tmp_path)
    assert env["GIT_CEILING_DIRECTORIES"] == str(tmp_path.resolve())
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == (
        "2", "credential.helper", "")
    assert env["GIT_SSH_COMMAND"] == "ssh -i 'a key'"
    assert (env["GIT_ASKPASS"], env["STATEWRITER_GIT_USERNAME"]) == (str(tmp_path / "askpass.sh"), "me")
    assert process.with_password(env, "token")["STATEWRITER_GIT_PASSWORD"] == "token"
    assert env["GNUPGHOME"] == str(tmp_path) and "GPG_TTY" not in env


def test_the_askpass_script_answers_from_the_environment(tmp_path: Path) -> None:
    script = tmp_path / "askpass.sh"
    script.write_text(process.ASKPASS_SCRIPT)
    script.chmod(0o700)
    env = environment(askpass=Askpass(script, "me", "pw"))
    ask = [process.run([str(script), prompt], env).stdout for prompt in ("Username for x", "Password")]
    assert ask == [b"me\n", b"pw\n"]


def test_a_cgi_gets_nothing_of_the_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEWRITER_TOKEN", "secret")
    env = process.cgi_environment({"REQUEST_METHOD": "GET"})
    seen = process.run(["/usr/bin/env"], env).stdout.decode()
    assert "STATEWRITER_TOKEN" not in seen and "REQUEST_METHOD=GET" in seen


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str]:
    """A bare repository holding one blob, and the blob's id."""
    repo = tmp_path / "repo.git"
    assert process.run_git(["init", "--bare", "-q", str(repo)], environment()).returncode == 0
    done = process.run_git([f"--git-dir={repo}", "hash-object", "-w", "--stdin"], environment(),
                           input=b"hello\n")
    return repo, done.stdout.decode().strip()


def test_the_cat_file_batch_reads_objects_and_none_for_a_missing_one(
    repository: tuple[Path, str]
) -> None:
    repo, blob = repository
    reader = CatFile(repo, environment())
    try:
        assert reader.read_many([blob, "0" * 40, blob]) == [("blob", b"hello\n"), None,
                                                              ("blob", b"hello\n")]
    finally:
        reader.close()
    assert reader.pid is None


def test_the_cat_file_batch_survives_a_killed_process(repository: tuple[Path, str]) -> None:
    repo, blob = repository
    reader = CatFile(repo, environment())
    try:
        assert reader.read(blob) == ("blob", b"hello\n")
        first = reader.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert reader.read(blob) == ("blob", b"hello\n")  # started afresh, once
        assert reader.pid not in (None, first)
    finally:
        reader.close()


def test_the_cat_file_batch_gives_up_after_one_restart(tmp_path: Path) -> None:
    reader = CatFile(tmp_path / "no-repository", environment())  # git exits at once, twice
    with pytest.raises(StoreUnavailable, match="git cat-file failed"):
        reader.read("0" * 40)
    assert reader.pid is None


def test_a_spawned_process_is_killed_with_its_group_when_cancelled(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    seen: list[process.AsyncProcess] = []

    async def serve(started: asyncio.Event) -> None:
        command = ["sh", "-c", f'{SLEEPER.replace("wait", "echo up; wait")}', "sh", str(pid_file)]
        async with process.spawned(command, environment(), limit=1024) as spawned:
            seen.append(spawned)
            assert spawned.stdout is not None
            assert await spawned.stdout.readline() == b"up\n"
            started.set()
            await asyncio.Event().wait()  # until cancelled, as a request whose client left

    async def cancel_once_up() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(serve(started))
        await asyncio.wait_for(started.wait(), GENEROUS)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(cancel_once_up())
    assert seen[0].returncode == -signal.SIGKILL  # reaped
    assert ends(int(pid_file.read_text()))
