"""Run the REAL service (`python -m app.cli serve`) as a subprocess for end-to-end tests.

    with running_server(tmp_path, config_yaml="auth: ...") as base_url:
        httpx.get(f"{base_url}/healthz")

The server listens on a free loopback port with its data under `<tmp_path>/data`, so its
embedded store is `<tmp_path>/data/state.git`. Readiness is polled on /healthz (bounded to
30 s, no fixed sleeps); on exit the process is terminated (killed if it lingers) and, when
the block failed or the server never came up, its stderr is printed for the test report.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def branch_tip(tmp_path: Path, branch: str = "main") -> str | None:
    """The embedded store's branch tip, or None before the first commit."""
    done = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "data" / "state.git"), "rev-parse", "--verify", "-q",
         f"refs/heads/{branch}"],
        capture_output=True, text=True, check=False,
    )
    return done.stdout.strip() or None


@contextmanager
def running_server(
    tmp_path: Path, config_yaml: str | None = None, env: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Start `statewriter serve` on 127.0.0.1:<port or a free one>; yield its base URL."""
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--data", str(data)]
    if config_yaml is not None:
        config = tmp_path / "statewriter.yaml"
        config.write_text(config_yaml)
        command += ["--config", str(config)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("STATEWRITER_")}
    environment.update(env or {})
    log_path = tmp_path / f"server-{port}.log"
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT)
        failed = True
        try:
            _wait_healthy(process, base_url, log_path)
            yield base_url
            failed = False
        finally:
            _stop(process)
            if failed:
                sys.stderr.write(f"--- statewriter serve output ({log_path}) ---\n")
                sys.stderr.write(log_path.read_text(errors="replace")[-20000:])
                sys.stderr.write("\n--- end of server output ---\n")


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"statewriter serve exited with {process.returncode} before answering; "
                    f"output:\n{log_path.read_text(errors='replace')[-5000:]}"
                )
            try:
                if client.get(f"{base_url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # poll interval, bounded by the deadline above
    raise RuntimeError(f"statewriter serve did not answer /healthz within {STARTUP_SECONDS:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
