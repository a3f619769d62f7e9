"""HTTP limits before any route, so before authentication (app/http/server.py), and the streamed
read-only `/git` endpoint (app/http/githttp.py), against a real `statewriter serve` on 127.0.0.1
(docs/reference.md sections 6 and 8; issue 9, "No limits before authentication").

Memory is the server process's VmRSS; each check leaves a margin of a few MB for the
allocator, where the unbounded server grew by hundreds (+204 MB for 20 heads of 16 MiB)."""

from __future__ import annotations

import base64
import contextlib
import json
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.http.githttp import MAX_BODY
from app.http.server import MAX_CONNECTIONS, MAX_HEADER_FIELDS
from tests.procs import Server, git, running_server, wait_until

TOKEN = "r3ader-t0ken"
ADMIN = "adm1n-t0ken"
CONFIG = f"""
auth:
  tokens:
    - {{name: reader, token: {TOKEN}, promises: []}}
    - {{name: admin, token: {ADMIN}, promises: ["*"], destinations: true}}
"""
MAX_HEADER_BYTES = 65536  # the default of limits.maxHeaderBytes
RSS_MARGIN_KIB = 8 * 1024
MARGIN = 3.0  # seconds past a timeout for the server to act on it


def basic(token: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"git:{token}".encode()).decode()}


def rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def with_destination(server: Server, headers: dict[str, str]) -> Server:
    """The server, with one commit in its store to clone."""
    with server.client(timeout=30) as http:
        answer = http.put("/v1/destinations/worker-1", headers=headers, json={"labels": {"env": "dev"}})
        assert answer.status_code == 200, answer.text
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limits")
    config = root / "statewriter.yaml"
    config.write_text(CONFIG)
    with running_server(root / "data", config=config, ready_path="/healthz") as running:
        yield with_destination(running, {"authorization": f"Bearer {ADMIN}"})


# -- raw HTTP ------------------------------------------------------------------------------


def connect(server: Server, timeout: float = 30.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket's timeout)."""
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


def exchange(server: Server, request: bytes) -> bytes:
    with connect(server) as sock:
        sock.sendall(request)
        return read_to_eof(sock)


def head(*fields: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(fields) + b"Connection: close\r\n\r\n"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def closed_by_server(sock: socket.socket) -> Callable[[], bool]:
    """A check for wait_until: has the server closed `sock`? (reads and drops what it sent)"""
    sock.settimeout(0.05)

    def check() -> bool:
        try:
            while chunk := sock.recv(65536):
                del chunk
            return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    return check


# -- the request head ------------------------------------------------------------------------


def test_a_head_over_the_limit_is_refused_before_any_route(server: Server) -> None:
    filler = MAX_HEADER_BYTES - len(head(b"X-Fill: \r\n"))
    assert status_of(exchange(server, head(b"X-Fill: " + b"a" * filler + b"\r\n"))) == 200

    refused = exchange(server, head(b"X-Fill: " + b"a" * (filler + 1) + b"\r\n"))
    assert status_of(refused) == 413
    answer_head, _, body = refused.partition(b"\r\n\r\n")
    assert b"x-request-id: " in answer_head.lower()
    assert json.loads(body)["error"] == "LimitExceeded"

    # no token: the head is refused before authentication could be asked for
    with connect(server) as sock:
        sock.sendall(b"GET /v1/destinations HTTP/1.1\r\nX-Fill: " + b"a" * MAX_HEADER_BYTES)
        assert status_of(read_to_eof(sock)) == 413


def test_more_than_the_allowed_header_fields_are_refused(server: Server) -> None:
    # Host and Connection, plus these
    fields = [b"X-%d: y\r\n" % n for n in range(MAX_HEADER_FIELDS - 2)]
    assert status_of(exchange(server, head(*fields))) == 200
    assert status_of(exchange(server, head(*fields, b"X-One-Too-Many: y\r\n"))) == 413


def test_twenty_huge_heads_at_once_cost_a_few_mb(server: Server) -> None:
    """The unbounded server accepted these (16 MiB heads) and grew by 204 MB."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (16 << 20) + b"\r\n\r\n"
    answers: list[bytes | str] = []

    def send() -> None:
        try:
            answers.append(exchange(server, request)[:12])
        except OSError as error:  # recorded, so that the assertion below shows it
            answers.append(repr(error))

    before = rss_kib(server)
    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    grown = rss_kib(server) - before
    assert answers == [b"HTTP/1.1 413"] * 20
    assert grown < RSS_MARGIN_KIB, f"the server grew by {grown} KiB"


def test_chunk_trailers_are_bounded_too(server: Server) -> None:
    """The trailer fields after a chunked body are a head too, which httptools collects
    (the unbounded server grew by 124 MB for one of 64 MiB): the connection is closed."""
    before = rss_kib(server)
    with connect(server) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\nX-Trailer: ")
        with pytest.raises(ConnectionError):
            for _ in range(64):
                sock.sendall(b"a" * (1 << 20))
    grown = rss_kib(server) - before
    assert grown < RSS_MARGIN_KIB, f"the server grew by {grown} KiB"


# app.http.server's HEADER_TIMEOUT (10 s) and KEEP_ALIVE_TIMEOUT (5 s), shorter in the server of
# the test below, which waits for them to pass (the keep-alive one first)
QUICK_HEADER_TIMEOUT = 2.0
QUICK_KEEP_ALIVE_TIMEOUT = 1


@pytest.fixture
def quick_server(tmp_path: Path) -> Iterator[Server]:
    """A server like `server`, whose head and keep-alive timeouts are a few seconds shorter."""
    with running_server(tmp_path / "data", config_yaml=CONFIG, ready_path="/healthz",
                        settings={"app.http.server.HEADER_TIMEOUT": QUICK_HEADER_TIMEOUT,
                                  "app.http.server.KEEP_ALIVE_TIMEOUT": QUICK_KEEP_ALIVE_TIMEOUT}) as running:
        yield running


def test_slow_and_idle_connections_are_closed(quick_server: Server) -> None:
    """A head sent in part, or a byte at a time, is cut HEADER_TIMEOUT after the connection;
    an idle keep-alive connection KEEP_ALIVE_TIMEOUT after its last answer (both shorter
    here: `quick_server`)."""
    server = quick_server
    with connect(server) as stalled, connect(server) as trickling, connect(server) as idle:
        started = time.monotonic()
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.")
        trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()

        idle_closed = closed_by_server(idle)
        wait_until(idle_closed, QUICK_KEEP_ALIVE_TIMEOUT + MARGIN, "the idle connection to be closed")
        assert time.monotonic() - answered >= QUICK_KEEP_ALIVE_TIMEOUT - 0.5

        stalled_closed, trickle_closed = closed_by_server(stalled), closed_by_server(trickling)

        def trickle_cut() -> bool:
            try:
                trickling.send(b"a")  # one byte per poll: never complete, never over the size
            except OSError:
                return True
            return trickle_closed()

        wait_until(stalled_closed, QUICK_HEADER_TIMEOUT + MARGIN, "the stalled head to be closed")
        wait_until(trickle_cut, QUICK_HEADER_TIMEOUT + MARGIN, "the trickling head to be closed")
        assert time.monotonic() - started >= QUICK_HEADER_TIMEOUT - 0.5


def _open_idle(server: Server, count: int, stack: contextlib.ExitStack) -> list[socket.socket]:
    return [stack.enter_context(connect(server, timeout=5)) for _ in range(count)]


def test_idle_connections_do_not_stop_a_new_client(server: Server) -> None:
    with contextlib.ExitStack() as stack:
        _open_idle(server, 500, stack)
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 2


def test_past_the_connection_limit_the_longest_waiting_connections_make_room(server: Server) -> None:
    """More idle connections than the service keeps (20,000 stopped the unbounded one): a
    new client is still answered at once, and the oldest idle connections were closed."""
    needed = MAX_CONNECTIONS + 300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    with contextlib.ExitStack() as stack:
        idle = _open_idle(server, MAX_CONNECTIONS + 100, stack)
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        oldest = closed_by_server(idle[0])
        wait_until(oldest, 2, "the longest-waiting connection to make room")


# -- /git ------------------------------------------------------------------------------------


def test_clone_streams_with_auth_and_refuses_without(server: Server, tmp_path: Path) -> None:
    url = f"http://git:{TOKEN}@127.0.0.1:{server.port}/git/state.git"
    git("clone", "-q", url, str(tmp_path / "clone"))
    assert (tmp_path / "clone" / ".git").is_dir()
    assert git("-C", str(tmp_path / "clone"), "log", "--oneline") != ""

    with pytest.raises(RuntimeError, match=r"401|could not read Username"):
        git("clone", "-q", f"{server.url}/git/state.git", str(tmp_path / "anonymous"))
    with pytest.raises(RuntimeError, match=r"401|Authentication failed"):
        git("clone", "-q", url.replace(TOKEN, "wrong"), str(tmp_path / "wrong"))

    with server.client() as http:
        refs = http.get("/git/state.git/info/refs", params={"service": "git-upload-pack"},
                        headers=basic(TOKEN))
    assert refs.status_code == 200
    assert refs.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert refs.headers["transfer-encoding"] == "chunked"  # streamed, not buffered


def test_clone_without_auth(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", ready_path="/healthz") as open_server:
        with_destination(open_server, {})
        git("clone", "-q", f"{open_server.url}/git/state.git", str(tmp_path / "clone"))
        assert git("-C", str(tmp_path / "clone"), "log", "--oneline") != ""


def test_push_is_refused(server: Server, tmp_path: Path) -> None:
    url = f"http://git:{ADMIN}@127.0.0.1:{server.port}/git/state.git"
    checkout = tmp_path / "clone"
    git("clone", "-q", url, str(checkout))
    (checkout / "extra.txt").write_text("not through the API\n")
    git("-C", str(checkout), "add", "extra.txt")
    git("-C", str(checkout), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
        "commit", "-q", "-m", "extra")
    with pytest.raises(RuntimeError, match="403"):
        git("-C", str(checkout), "push", "-q", "origin", "HEAD")


def test_credentials_and_body_size_are_checked_before_the_body_is_read(server: Server) -> None:
    """Both answers come while the client has sent no byte of the body it announced."""
    post = (b"POST /git/state.git/git-upload-pack HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-git-upload-pack-request\r\n")
    with connect(server, timeout=5) as sock:
        sock.sendall(post + b"Content-Length: 1000\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 401")
    with connect(server, timeout=5) as sock:
        auth = b"Authorization: " + basic(TOKEN)["authorization"].encode() + b"\r\n"
        sock.sendall(post + auth + b"Content-Length: %d\r\n\r\n" % (200 << 20))
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")


def test_a_huge_upload_pack_body_is_413_without_growing_the_server(server: Server) -> None:
    """Streamed in (chunked, so only counting tells): the unbounded server read all of it
    into memory (+205 MB for 200 MB)."""
    chunk = b"0" * (1 << 20)

    def body() -> Iterator[bytes]:
        for _ in range(200):
            yield chunk

    before = rss_kib(server)
    with server.client(timeout=60) as http:
        answer = http.post("/git/state.git/git-upload-pack", content=body(),
                           headers={**basic(TOKEN),
                                    "content-type": "application/x-git-upload-pack-request"})
    grown = rss_kib(server) - before
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"] == "LimitExceeded"
    assert str(MAX_BODY) in answer.json()["message"]
    assert grown < RSS_MARGIN_KIB, f"the server grew by {grown} KiB"
    with server.client() as http:  # and it still serves
        assert http.get("/healthz").status_code == 200
