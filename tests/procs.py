"""Real processes for system tests and the benchmark: statewriter servers, git daemons,
and plain git, all on 127.0.0.1. Every wait is a bounded poll loop.

The one real-server harness of the tests:

    with running_server(tmp_path / "data", config_yaml="auth: ...", ready_path="/healthz") as server:
        with server.client() as http:
            http.get("/healthz")

(tests/conftest.py serves the app in the test's own process where no real process matters.)"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OWNERS = ".statewriter/owners"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") and not k.startswith("STATEWRITER_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> str:
    """Run git; raise with its stderr on failure."""
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                          env=_clean_env({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}), timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace")


def init_bare(path: Path, branch: str = "main") -> Path:
    git("init", "--bare", "-q", "-b", branch, str(path))
    return path


FIXTURE_STORES = {1: ROOT / "tests" / "fixtures" / "v1-store.fi",
                  2: ROOT / "tests" / "fixtures" / "v2-store.fi"}


def layout_store(path: Path, version: int) -> Path:
    """The fixture store statewriter's layout `version` wrote (tests/fixtures/make_v1_store.py,
    make_v2_store.py), as a bare repository at `path` (branch main)."""
    init_bare(path)
    git(f"--git-dir={path}", "fast-import", "--quiet",
        input=FIXTURE_STORES[version].read_bytes())
    return path


def layout_1_store(path: Path) -> Path:
    return layout_store(path, 1)


def owned_requests(git_dir: Path | str, branch: str = "main") -> set[tuple[str, str]]:
    """(namespace, name) of every request with an owner record on `branch`."""
    try:
        out = git(f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", branch, "--", OWNERS)
    except RuntimeError:
        return set()  # no branch yet
    found = set()
    for line in out.splitlines():
        parts = line[len(OWNERS) + 1:].split("/")
        if len(parts) == 5:  # promise/namespace/shard/name/pipeline.json
            found.add((parts[1], parts[3]))
    return found


def fsck(git_dir: Path | str, strict: bool = True) -> str:
    """`git fsck` output; raises when it is not clean."""
    args = [f"--git-dir={git_dir}", "fsck", "--no-progress", "--no-dangling"]
    if strict:
        args.append("--strict")
    return git(*args)


def verify_clone(url: str, workdir: Path, branch: str = "main") -> subprocess.CompletedProcess[str]:
    """Clone `url` and run `statewriter verify` on the checkout."""
    checkout = workdir / f"verify-{time.monotonic_ns()}"
    git("clone", "-q", "--branch", branch, url, str(checkout))
    return subprocess.run([sys.executable, "-m", "app.cli", "verify", str(checkout)], cwd=ROOT,
                          capture_output=True, text=True, env=_clean_env(), timeout=600)


def branch_tip(data: Path, branch: str = "main") -> str | None:
    """The branch tip of the embedded store under the data folder `data`, as git reads it
    (None before the first commit)."""
    done = subprocess.run(
        ["git", "--git-dir", str(data / "state.git"), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
        capture_output=True, text=True, check=False, env=_clean_env(),
    )
    return done.stdout.strip() or None


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll `check()` until it returns something truthy; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@dataclass
class Server:
    """A `statewriter serve` subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    data: Path
    log: Path
    started: float
    ready_after: float = 0.0
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def tip(self, branch: str = "main") -> str | None:
        """Its embedded store's branch tip (None before the first commit)."""
        return branch_tip(self.data, branch)

    def peak_rss_kib(self) -> int | None:
        """VmHWM of the server process (peak resident set), in KiB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# `python -c` program that sets the knobs of `start_server` (its first argument, JSON), then
# runs `statewriter` with the arguments that follow
_WITH_KNOBS = """
import importlib, json, runpy, sys

def owner_of(name):
    module, _, attribute = name.rpartition(".")
    owner = importlib.import_module(module)
    if not hasattr(owner, attribute):
        raise SystemExit(f"start_server: no {name} to set")
    return owner, attribute

def with_keywords(cls, given):
    class Knobbed(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**given, **kwargs})
    Knobbed.__name__, Knobbed.__qualname__ = cls.__name__, cls.__qualname__
    return Knobbed

knobs = json.loads(sys.argv.pop(1))
for name, value in knobs["settings"].items():
    setattr(*owner_of(name), value)
for name, given in knobs["keywords"].items():
    owner, attribute = owner_of(name)
    setattr(owner, attribute, with_keywords(getattr(owner, attribute), given))
runpy.run_module("app.cli", run_name="__main__", alter_sys=True)
"""

Knob = float | int | str
# Reads see a commit made elsewhere (another replica, a person) within half a second, not the
# service's five (Writer.max_staleness): for tests that wait for one to show
FRESH_READS: Mapping[str, Mapping[str, Knob]] = {"gitops.writer.Writer": {"max_staleness": 0.5}}
# The command line's retries 0.01 s apart, then 0.02 (app.cli.client's: 0.5 s, doubling): for tests
# that count retries against a service that never answers
QUICK_RETRIES: Mapping[str, Knob] = {"app.cli.client.BACKOFF_BASE": 0.01}


def statewriter_command(settings: Mapping[str, Knob] | None = None,
                        keywords: Mapping[str, Mapping[str, Knob]] | None = None) -> list[str]:
    """The command that runs `statewriter` (arguments to follow), with a test's knobs set in
    its process first (see `start_server`)."""
    if not settings and not keywords:
        return [sys.executable, "-m", "app.cli"]
    knobs = {"settings": dict(settings or {}),
             "keywords": {name: dict(given) for name, given in (keywords or {}).items()}}
    return [sys.executable, "-c", _WITH_KNOBS, json.dumps(knobs)]


def start_server(
    data: Path,
    remote: str | None = None,
    *,
    branch: str = "main",
    config: Path | None = None,
    config_yaml: str | None = None,
    timeout: float = 60.0,
    ready_path: str = "/v1/destinations",
    env: Mapping[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    port: int | None = None,
    settings: Mapping[str, Knob] | None = None,
    keywords: Mapping[str, Mapping[str, Knob]] | None = None,
) -> Server:
    """Start `statewriter serve` on `port` (else a free one) and wait until `ready_path`
    answers 200 (with auth on, "/healthz"). `config_yaml`: the config file's text, written
    next to the data folder (`<data>-statewriter.yaml`), instead of a `config` file.

    Cold start = `ready_after`: from spawning the process to the first 200 of `ready_path`
    (which needs the writer lane and its index loaded).

    A test's knobs for what has no flag or config key (so that it waits for a timer of a
    second, not of ten), set in the server's process before it starts; the service's own
    defaults stay as they are. `settings`: module attributes, e.g.
    `{"app.http.server.HEADER_TIMEOUT": 2.0}`; `keywords`: constructor keywords of a class, given
    to each instance the server makes of it, e.g. `{"gitops.writer.Writer": {"max_staleness":
    0.5}}`."""
    data.mkdir(parents=True, exist_ok=True)
    if config_yaml is not None:
        assert config is None, "a config file or its text, not both"
        config = data.parent / f"{data.name}-statewriter.yaml"
        config.write_text(config_yaml)
    last_error = ""
    given = port
    for _ in range(1 if given else 3):  # a free port may be taken between probing and binding
        port = given or free_port()
        args = [*statewriter_command(settings, keywords), "serve", "--host", "127.0.0.1",
                "--port", str(port), "--data", str(data), "--branch", branch]
        if remote:
            args += ["--remote", remote]
        if config:
            args += ["--config", str(config)]
        args += extra_args
        log = data.parent / f"{data.name}-server-{port}.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    env=_clean_env(env), start_new_session=True)
        server = Server(proc, port, data, log, started, args=args)
        try:
            _wait_ready(server, ready_path, timeout)
        except RuntimeError as error:
            last_error = str(error)
            server.stop()
            if "address already in use" in server.log_tail().lower():
                continue
            raise
        server.ready_after = time.perf_counter() - started
        return server
    raise RuntimeError(f"could not start a server: {last_error}")


def _wait_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, timeout=5) as client:
        while True:
            if server.proc.poll() is not None:
                raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(path).status_code == 200:
                    return
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"server not ready after {timeout}s:\n{server.log_tail()}")
            time.sleep(0.01)


@contextlib.contextmanager
def running_server(data: Path, remote: str | None = None, **kwargs: Any) -> Iterator[Server]:
    """`start_server(data, remote, **kwargs)` for the block, stopped after it; when the block
    fails, the server's output goes to stderr for the test report."""
    server = start_server(data, remote, **kwargs)
    failed = True
    try:
        yield server
        failed = False
    finally:
        server.stop()
        if failed:
            sys.stderr.write(f"--- statewriter serve output ({server.log}) ---\n"
                             f"{server.log_tail(400)}\n--- end of server output ---\n")


@dataclass
class GitDaemon:
    proc: subprocess.Popen[bytes]
    port: int
    base: Path

    def url(self, repo: str) -> str:
        return f"git://127.0.0.1:{self.port}/{repo}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            # the daemon forks a child per connection: end the whole process group
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def git_daemon(base: Path, timeout: float = 20.0) -> Iterator[GitDaemon]:
    """`git daemon` serving every repository below `base`, pushes allowed, on 127.0.0.1."""
    daemon: GitDaemon | None = None
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
             f"--base-path={base}", f"--port={port}", "--listen=127.0.0.1", str(base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_clean_env(),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None and port_open(port):
            daemon = GitDaemon(proc, port, base)
            break
        GitDaemon(proc, port, base).stop()
    if daemon is None:
        raise RuntimeError("git daemon did not start")
    try:
        yield daemon
    finally:
        daemon.stop()


@dataclass
class SshServer:
    port: int
    key: Path  # the client's private key
    known_hosts: Path

    def url(self, repo: Path) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{repo}"


@contextlib.contextmanager
def ssh_server(folder: Path, timeout: float = 20.0) -> Iterator[SshServer]:
    """A throw-away `sshd` on 127.0.0.1 accepting one fresh key for the current user."""
    sshd = "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        raise RuntimeError("sshd is missing: run scripts/test-deps.sh (Debian openssh-server)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                       check=True)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = free_port()
    (folder / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n")
    if os.getuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation
    host_key = (folder / "host_key.pub").read_text().split()[:2]
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(folder / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None or not port_open(port):
            raise RuntimeError("sshd did not start")
        yield SshServer(port, folder / "client_key", known_hosts)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
