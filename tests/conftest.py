"""What many test files share: the service in this process, and one way to talk to a service.

- `in_process(root, config_yaml)`: the real app (`app.main.create_app`) around a real writer
  lane over a real embedded store under `root/data`, assembled as `statewriter serve`
  assembles it, served to httpx in this process (no port, no subprocess). The fixtures
  `in_process_service` (one per test) and `module_in_process_service` (one per module) take
  their config text from the `service_config` fixture and the default token of
  `Service.call` from `service_token`: a module overrides either with a fixture of its own.
- `Service`: a base URL and a client, `call` with a bearer token, `refused` (the status, no
  write, the service lives); `Service.of(server)` wraps a real `statewriter serve`
  (tests/procs.py) the same way.
- `cli_reaches(service)`: `app.cli.main` run in the test's process talks to the service in
  this process.

Real processes (tests/procs.py) stay where the process is what is tested: HTTP limits and
slow connections (uvicorn and app.http.server's protocol), replicas, signals and SIGKILL, the
CLI's start and stop, its log lines and metrics, git over HTTP by git itself, the browser.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import threading
import time
import types
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import settings
from starlette.types import ASGIApp, Message

import app.cli.client
import app.logs
from app.config import Config, load_config
from app.http import metrics
from app.main import create_app, open_writer
from gitops.secrets import Sealer
from gitops.store.signing import open_signer
from tests.procs import Server, branch_tip

# Generated tests try the same examples on every run and every clone, so a run (and CI)
# answers for the code, not for its luck. `HYPOTHESIS_PROFILE=explore` tries new ones each
# run and keeps the failures it finds in .hypothesis/ to replay: an example it finds becomes
# an `@example` of its test.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

T = TypeVar("T")
IN_PROCESS_URL = "http://statewriter.invalid"  # names no host: only the in-process transport reaches it
ANSWER_SECONDS = 300.0  # a request the app never answers fails its test instead of hanging it


class _Default(enum.Enum):
    TOKEN = enum.auto()


DEFAULT_TOKEN = _Default.TOKEN
"""`Service.call(..., token=DEFAULT_TOKEN)`: the service's own default token (None: none)."""


class Service:
    """A statewriter service as a test talks to it: in this process (`in_process`) or a real
    `statewriter serve` (`Service.of`). `data` is its data folder (the embedded store is
    `data/state.git`); `token`, the bearer token `call` sends unless told otherwise."""

    def __init__(self, client: httpx.Client, data: Path, token: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.client = client
        self.url = str(client.base_url).rstrip("/")
        self.data = data
        self.token = token
        # in process: what any other httpx client needs to reach the service (None: a real one)
        self.transport = transport

    @classmethod
    def of(cls, server: Server, token: str | None = None) -> Service:
        """A real `statewriter serve` (tests/procs.py), talked to over its port."""
        return cls(httpx.Client(base_url=server.url, timeout=30), server.data, token)

    @property
    def repo(self) -> Path:
        """The embedded store's bare repository."""
        return self.data / "state.git"

    def tip(self, branch: str = "main") -> str | None:
        """The embedded store's branch tip as git reads it (None before the first commit)."""
        return branch_tip(self.data, branch)

    def call(self, method: str, path: str, token: str | _Default | None = DEFAULT_TOKEN,
             **kwargs: Any) -> httpx.Response:
        """One request, with `Authorization: Bearer <token>` unless `token` is None (then only
        the headers given)."""
        headers = dict(kwargs.pop("headers", {}))
        chosen = self.token if token is DEFAULT_TOKEN else token
        if chosen:
            headers["authorization"] = f"Bearer {chosen}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def refused(self, status: int, method: str, path: str,
                token: str | _Default | None = DEFAULT_TOKEN, **kwargs: Any) -> httpx.Response:
        """The call answers `status` within a second, writes nothing, and the service lives."""
        before = self.tip()
        started = time.monotonic()
        response = self.call(method, path, token, **kwargs)
        elapsed = time.monotonic() - started
        assert response.status_code == status, response.text[:500]
        assert elapsed < 1.0, f"answered after {elapsed:.2f}s"
        assert self.tip() == before
        assert self.client.get("/healthz").status_code == 200
        return response

    def http_client(self, **kwargs: Any) -> httpx.Client:
        """Another client of the service (its own cookies, its own headers)."""
        return httpx.Client(base_url=self.url, transport=self.transport, **kwargs)

    def close(self) -> None:
        self.client.close()


# -- the service in this process -----------------------------------------------------------------


class _Body(httpx.AsyncByteStream):
    """A synchronous request body handed to the app chunk by chunk, as a socket would."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class InProcessTransport(httpx.BaseTransport):
    """Serves httpx requests from an ASGI app in this process. The app runs on an event loop
    of its own thread, as under uvicorn, so synchronous code (the tests, the CLI's client, a
    generated client) can call it; its lifespan starts here and ends at `shutdown`. Shared
    by many clients: closing one of them leaves it serving."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False,
                                         client=("127.0.0.1", 50000))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="in-process-service",
                                        daemon=True)
        self._thread.start()
        self._to_app: asyncio.Queue[Message] | None = None
        self._from_app: asyncio.Queue[Message] | None = None
        self._lifespan: asyncio.Future[None] | None = None
        try:
            self._run(self._lifespan_event("startup"))
        except BaseException:
            self._stop_loop()
            raise

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        forwarded = httpx.Request(request.method, request.url, headers=request.headers,
                                  stream=_Body(request.stream), extensions=request.extensions)
        return self._run(self._send(forwarded), timeout=ANSWER_SECONDS)

    def close(self) -> None:
        """Nothing: one client closing does not stop the service (`shutdown` does)."""

    def shutdown(self) -> None:
        """The app's lifespan ends (the service closes its writer lane and store), then the loop."""
        try:
            self._run(self._lifespan_event("shutdown"))
        finally:
            self._stop_loop()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.aiter_raw()])  # as sent: no decoding
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=httpx.ByteStream(body), extensions=response.extensions)

    async def _lifespan_event(self, event: str) -> None:
        """ASGI's lifespan protocol, as uvicorn speaks it: `startup` starts the app's lifespan
        and waits until it is complete; `shutdown` ends it."""
        if self._to_app is None or self._from_app is None:
            self._to_app, self._from_app = asyncio.Queue(), asyncio.Queue()
            scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                     "state": {}}
            self._lifespan = asyncio.ensure_future(
                self._app(scope, self._to_app.get, self._from_app.put))
        assert self._lifespan is not None
        await self._to_app.put({"type": f"lifespan.{event}"})
        answer = asyncio.ensure_future(self._from_app.get())
        either: set[asyncio.Future[Any]] = {answer, self._lifespan}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            answer.cancel()
            self._lifespan.result()  # raises what ended the lifespan
            raise RuntimeError(f"the app's lifespan ended without answering {event}")
        message = answer.result()
        if message["type"] != f"lifespan.{event}.complete":
            raise RuntimeError(f"the app's {event} failed: {message.get('message', message)}")
        if event == "shutdown":
            await self._lifespan

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=60)
        self._loop.close()


def assemble(config: Config) -> ASGIApp:
    """The app `statewriter serve` runs (app.cli.serve), without its listener and uvicorn:
    the store the config names (with its signer), a notifier, the writer lane with the
    service's metrics, and the sealer when `secrets` is configured."""
    sealer = (Sealer.from_file(config.secrets.identity_file, config.secrets.require_encryption,
                               observe=metrics.encryption_operation)
              if config.secrets is not None else None)
    signer = (open_signer(config.signing.format, config.signing.key_file)
              if config.signing is not None else None)
    return create_app(config, open_writer(config, signer), sealer)


@contextmanager
def in_process(root: Path, config_yaml: str | None = None,
               token: str | None = None) -> Iterator[Service]:
    """The service over `root/data` (config file `root/statewriter.yaml` when `config_yaml` is
    given), in this process; closed (its lane, its store) when the block ends."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    path: Path | None = None
    if config_yaml is not None:
        path = root / "statewriter.yaml"
        path.write_text(config_yaml)
    # env={}: the settings are these, whatever STATEWRITER_* the test run has
    transport = InProcessTransport(assemble(load_config(path, env={}, data=data)))
    try:
        with httpx.Client(base_url=IN_PROCESS_URL, transport=transport) as client:
            yield Service(client, data, token, transport)
    finally:
        transport.shutdown()


@contextmanager
def cli_reaches(service: Service) -> Iterator[None]:
    """While the block runs, the command line run in this process (`app.cli.main`) talks to
    `service` in this process, whatever URL it names: app.cli.client's httpx clients go through
    the service's transport (only app.cli.client's name `httpx` changes), and the stderr handler
    the command installs (`app.logs.configure`) hears only the command's own thread, as its
    own process would: the service's log lines are not the command's output. A real service
    is reached over its port anyway."""
    if service.transport is None:
        yield
        return
    transport = service.transport
    command = threading.get_ident()

    class Client(httpx.Client):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{**kwargs, "transport": transport})

    class Httpx(types.ModuleType):
        """httpx, but for its Client."""

        def __getattr__(self, name: str) -> Any:
            return Client if name == "Client" else getattr(httpx, name)

    configure = app.logs.configure

    def configure_for_the_command(format: str) -> None:
        configure(format)
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: record.thread == command)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app.cli.client, "httpx", Httpx("httpx"))
        patch.setattr(app.logs, "configure", configure_for_the_command)
        yield


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_config() -> str | None:
    """The config file of the in-process service (None: none, no auth). Override in a module."""
    return None


@pytest.fixture(scope="module")
def service_token() -> str | None:
    """The bearer token `Service.call` sends by default (None: none). Override in a module."""
    return None


@pytest.fixture
def in_process_service(tmp_path: Path, service_config: str | None,
                       service_token: str | None) -> Iterator[Service]:
    """A service of this test's own, in this process."""
    with in_process(tmp_path / "service", service_config, service_token) as service:
        yield service


@pytest.fixture(scope="module")
def module_in_process_service(tmp_path_factory: pytest.TempPathFactory, service_config: str | None,
                              service_token: str | None) -> Iterator[Service]:
    """One service shared by the tests of a module (they build on what earlier ones wrote, as
    against one real server), in this process."""
    with in_process(tmp_path_factory.mktemp("service"), service_config, service_token) as service:
        yield service
