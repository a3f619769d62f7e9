"""The real `statewriter` command meeting ordinary mistakes and dependencies that cannot be
reached (docs/reference.md section 8): one line on stderr, `statewriter: ...`, a non-zero exit (2 for
usage and configuration, 1 at run time), never a traceback, never a credential. Plus
`--version`, a closed stdout, and git run the one way the store runs it (GIT_DIR ignored)."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.version import VERSION
from tests.procs import ROOT, free_port, git, init_bare, running_server, ssh_server
from tests.test_store import http_git_server

TIMEOUT = 120  # seconds any one command may take before the test fails
SECRET = "wr0ng-s3cret-t0ken"
TRAILERS = ("Statewriter-Promise: elastic-cloud\nStatewriter-Request: default/example\n"
            "Statewriter-Pipeline: default\nStatewriter-Action: apply\nStatewriter-Actor: tester\n")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "STATEWRITER_"))}
    env.update(extra or {})
    return env


def statewriter(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m app.cli ARGS`, killed (with anything it started) if it outlives TIMEOUT:
    a `serve` that wrongly started listens until then."""
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def one_line(done: subprocess.CompletedProcess[str], code: int, *secrets: str) -> str:
    """The one line the command ended with (asserting how it ended)."""
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("statewriter: "), done.stderr
    assert done.returncode == code, done.stderr
    for secret in secrets:
        assert secret not in done.stderr + done.stdout
    return lines[0]


def serve(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return statewriter("serve", "--host", "127.0.0.1", "--port", str(free_port()),
                       "--data", str(data), *args, env=env)


def commit(repo: Path, files: dict[str, str], message: str = f"apply\n\n{TRAILERS}") -> str:
    """One commit on main holding `files` (git fast-import: thousands of files in a blink)."""
    stream = [f"commit refs/heads/main\ncommitter T <t@example.org> 1700000000 +0000\n"
              f"data {len(message.encode())}\n{message}\n"]
    for path, text in files.items():
        stream.append(f"M 100644 inline {path}\ndata {len(text.encode())}\n{text}\n")
    git(f"--git-dir={repo}", "fast-import", "--quiet", input="".join(stream).encode())
    return git(f"--git-dir={repo}", "rev-parse", "main").strip()


@contextlib.contextmanager
def forge(root: Path, user: str, secret: str) -> Iterator[str]:
    """A git forge over HTTP (`git http-backend`) that wants basic auth `user:secret`;
    yields the URL of `root/remote.git`."""
    init_bare(root / "remote.git")
    accepted = {"Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}
    server = http_git_server(root, accepted)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/remote.git"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the command itself -------------------------------------------------------------------


def test_version() -> None:
    done = statewriter("--version")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"statewriter {VERSION}\n"


@pytest.mark.parametrize("args, env, expected", [
    ((), {}, "the following arguments are required: command"),
    (("serve", "--port", "abc"), {}, "argument --port: invalid int value: 'abc'"),
    (("serve", "--bogus"), {}, "unrecognized arguments: --bogus"),
    (("history", "elastic-cloud", "default/example"), {}, "give --url (or set STATEWRITER_URL)"),
    (("serve",), {"STATEWRITER_PORT": "abc"}, "STATEWRITER_PORT"),
])
def test_a_mistake_in_flags_or_environment_is_one_line(
    args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    assert expected in one_line(statewriter(*args, env=env), 2)


# -- serve: the data folder, the port, the state store --------------------------------------


def test_serve_with_a_file_for_data(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = one_line(serve(tmp_path / "file"), 2)
    assert str(tmp_path / "file") in line and "not a folder" in line


def test_serve_with_data_in_a_read_only_folder(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root writes through permission bits: sysfs is a folder where no one can create one
        parent = Path("/sys")
    else:
        parent = tmp_path / "read-only"
        parent.mkdir()
        parent.chmod(0o555)
    data = parent / "statewriter-data"
    line = one_line(serve(data), 2)
    assert str(data) in line
    assert not data.exists()


def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = statewriter("serve", "--host", "127.0.0.1", "--port", str(port),
                           "--data", str(tmp_path / "data"))
    line = one_line(done, 1)
    assert f"127.0.0.1:{port}" in line and "address already in use" in line.lower()


def test_serve_on_an_address_this_machine_does_not_have(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("auth:\n  tokens:\n    - {name: a, token: t0ken, promises: ['*']}\n")
    done = statewriter("serve", "--host", "192.0.2.1", "--port", str(free_port()),  # TEST-NET-1
                       "--data", str(tmp_path / "data"), "--config", str(config))
    assert "cannot listen on 192.0.2.1" in one_line(done, 2)


def test_a_second_service_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as first:
        line = one_line(serve(tmp_path / "data"), 1)
        assert f"statewriter pid {first.pid}" in line and str(tmp_path / "data") in line


def test_serve_with_a_corrupt_state_record_stays_up_read_only(tmp_path: Path) -> None:
    store = init_bare(tmp_path / "data" / "state.git")
    commit(store, {".statewriter/layout.json": "{not json"}, "a person's commit\n")
    with running_server(tmp_path / "data", ready_path="/healthz") as server, server.client() as http:
        ready = http.get("/readyz")  # it stays in its Service, for reads and git
        assert ready.status_code == 200 and ready.json()["writes"] is False
        assert ".statewriter/layout.json" in ready.json()["detail"]
        info = http.get("/git/state.git/info/refs", params={"service": "git-upload-pack"})
        assert info.status_code == 200  # Flux's source stays up


# -- serve: a remote that cannot be reached ----------------------------------------------


def test_serve_with_a_remote_that_does_not_exist(tmp_path: Path) -> None:
    missing = (tmp_path / "no-such-remote.git").as_uri()
    line = one_line(serve(tmp_path / "data", "--remote", missing), 1)
    assert line.startswith("statewriter: the state store cannot be opened: ") and missing in line


def test_serve_with_a_remote_nothing_listens_on(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/x.git"
    line = one_line(serve(tmp_path / "data", "--remote", url), 1)
    assert line.startswith("statewriter: the state store cannot be opened: ") and url in line


def test_serve_with_a_remote_that_needs_credentials(tmp_path: Path) -> None:
    with forge(tmp_path, "git", "the-right-one") as url:
        none = serve(tmp_path / "none", "--remote", url)
        in_url = serve(tmp_path / "in-url", "--remote", url.replace("//", f"//git:{SECRET}@"))
        config = tmp_path / "config.yaml"
        config.write_text(f"remoteCredentials:\n  token: {SECRET}\n")
        in_config = serve(tmp_path / "in-config", "--remote", url, "--config", str(config))
    opened = "statewriter: the state store cannot be opened: "
    line = one_line(none, 1)
    assert line.startswith(opened) and url in line
    for done in (in_url, in_config):  # the secret is in no form in the one line
        line = one_line(done, 1, SECRET, base64.b64encode(f"git:{SECRET}".encode()).decode())
        assert line.startswith(opened) and url in line


@pytest.mark.parametrize("known", ["nothing", "another key"])
def test_serve_with_an_ssh_remote_whose_host_key_is_unknown(tmp_path: Path, known: str) -> None:
    remote = init_bare(tmp_path / "remote.git")
    with ssh_server(tmp_path / "sshd") as sshd:
        known_hosts = tmp_path / "known_hosts"
        other_key = (tmp_path / "sshd" / "client_key.pub").read_text()
        known_hosts.write_text("" if known == "nothing" else f"[127.0.0.1]:{sshd.port} {other_key}")
        config = tmp_path / "config.yaml"
        config.write_text(f"remoteCredentials:\n  sshKeyFile: {sshd.key}\n"
                          f"  knownHostsFile: {known_hosts}\n")
        done = serve(tmp_path / "data", "--remote", sshd.url(remote), "--config", str(config))
    line = one_line(done, 1, "PRIVATE KEY")
    assert line.startswith("statewriter: the state store cannot be opened: ")
    assert f"127.0.0.1:{sshd.port}{remote}" in line


# -- history --------------------------------------------------------------------------------


def test_history_against_a_dead_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = statewriter("history", "elastic-cloud", "default/example", "--url", url, "--retries", "0")
    line = one_line(done, 1)
    assert url in line and "cannot reach" in line


def test_history_against_a_url_without_scheme() -> None:
    done = statewriter("history", "elastic-cloud", "default/example", "--url", "127.0.0.1:8080")
    assert "http://" in one_line(done, 2)


def test_history_of_a_missing_repo(tmp_path: Path) -> None:
    done = statewriter("history", "elastic-cloud", "default/example", "--repo",
                       str(tmp_path / "missing"))
    assert str(tmp_path / "missing") in one_line(done, 2)


def test_history_of_a_folder_that_is_no_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    done = statewriter("history", "elastic-cloud", "default/example", "--repo", str(tmp_path / "plain"))
    assert "is not a git repository" in one_line(done, 2)


def test_history_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`statewriter history ... | head -1`: far more output than a pipe holds, the reader
    gone after one line; exit 141 (128 + SIGPIPE) as for any tool, nothing on stderr."""
    repo = init_bare(tmp_path / "repo.git")
    commit(repo, {f"worker-1/resources/default/{i:05d}-a-file-with-a-long-name.yaml": "a: 1\n"
                  for i in range(5000)})
    command = [sys.executable, "-m", "app.cli", "history", "elastic-cloud", "default/example",
               "--repo", str(repo)]
    with subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            first = proc.stdout.readline()
            proc.stdout.close()  # what `head -1` does after its line
            stderr = proc.stderr.read()
            proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert b"apply" in first
    assert stderr == b""
    assert proc.returncode == 128 + signal.SIGPIPE


# -- push, delete and rollback --------------------------------------------------------------


def test_push_and_delete_against_a_dead_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "kratix" / "output").mkdir(parents=True)
    (tmp_path / "kratix" / "output" / "a.yaml").write_text("kind: ConfigMap\n")
    pushed = statewriter("push", str(tmp_path / "kratix"), "--url", url, "--promise",
                         "elastic-cloud", "--request", "default/example", "--retries", "0")
    deleted = statewriter("delete", "--url", url, "--promise", "elastic-cloud", "--request",
                          "default/example", "--retries", "0")
    rolled = statewriter("rollback", "--url", url, "--promise", "elastic-cloud", "--request",
                         "default/example", "--commit", "abc123", "--retries", "0")
    for done in (pushed, deleted, rolled):
        line = one_line(done, 1)
        assert url in line and "cannot reach" in line
    assert one_line(rolled, 1).startswith("statewriter: rollback: ")


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "statewriter:8080", "ftp://statewriter",
                                 "http://[::1"])
def test_push_and_delete_against_a_url_without_scheme(tmp_path: Path, url: str) -> None:
    (tmp_path / "kratix" / "output").mkdir(parents=True)
    pushed = statewriter("push", str(tmp_path / "kratix"), "--url", url, "--promise",
                         "elastic-cloud")
    deleted = statewriter("delete", "--url", url, "--promise", "elastic-cloud", "--request",
                          "default/example")
    rolled = statewriter("rollback", "--url", url, "--promise", "elastic-cloud", "--request",
                         "default/example", "--commit", "abc123")
    for done in (pushed, deleted, rolled):
        assert "--url" in one_line(done, 2)


@pytest.mark.parametrize(("args", "said"), [
    ((), "give --url or set STATEWRITER_URL"),
    (("--url", "http://127.0.0.1:1"), "give --promise and --request NS/NAME"),
    (("--url", "http://127.0.0.1:1", "elastic-cloud", "default/example"), "give --commit SHA"),
    (("--url", "http://127.0.0.1:1", "elastic-cloud", "default/example", "--to", "HEAD~1"),
     "--commit must be a commit id"),
    (("--url", "http://127.0.0.1:1", "elastic-cloud", "default/example", "--promise", "other",
      "--commit", "abc123"), "PROMISE 'elastic-cloud' and --promise 'other' disagree"),
    (("--url", "http://127.0.0.1:1", "--promise", "elastic-cloud", "--request", "default/Bad_Name",
      "--commit", "abc123"), "request name 'Bad_Name' is not a DNS-1123 name"),
])
def test_rollback_usage_mistakes_are_one_line_and_exit_2(args: tuple[str, ...], said: str) -> None:
    line = one_line(statewriter("rollback", *args), 2)
    assert line.startswith("statewriter: rollback: ") and said in line, line


# -- one way to run git: the caller's GIT_DIR does not redirect the commands ---------------


def test_history_and_verify_read_the_repository_named_not_git_dir(tmp_path: Path) -> None:
    repo = init_bare(tmp_path / "repo.git")
    sha = commit(repo, {"stray.yaml": "a: 1\n"})
    elsewhere = init_bare(tmp_path / "elsewhere.git")
    commit(elsewhere, {"other.yaml": "b: 2\n"}, "another repository\n")
    env = {"GIT_DIR": str(elsewhere), "GIT_WORK_TREE": str(tmp_path)}

    history = statewriter("history", "elastic-cloud", "default/example", "--repo", str(repo),
                          env=env)
    assert history.returncode == 0, history.stderr
    assert sha[:12] in history.stdout and "stray.yaml" in history.stdout

    verified = statewriter("verify", "--no-kustomize", str(repo), env=env)
    assert verified.returncode == 1, verified.stderr  # the stray file is a finding
    assert "stray.yaml" in verified.stdout and "other.yaml" not in verified.stdout
