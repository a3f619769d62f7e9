"""Runs the service under uvicorn with the HTTP limits that apply before any route, and so
before authentication (docs/reference.md sections 6 and 8):

- a request head (request line and header fields) of at most `limits.maxHeaderBytes` bytes
  and MAX_HEADER_FIELDS fields, else 413 and the connection is closed; bytes past the limit
  are never parsed, so such a request costs about that much memory; the trailer fields of a
  chunked body are bounded alike (the connection is closed: the request has its answer);
- HEADER_TIMEOUT seconds to send a complete head, from the connection (first request) or
  from its first byte (later requests), else the connection is closed without an answer;
- KEEP_ALIVE_TIMEOUT seconds idle between two requests, else the connection is closed;
- MAX_CONNECTIONS open connections: a new one past it closes the connection that has waited
  longest for a request head, if any; when all are busy, uvicorn answers 503
  (`limit_concurrency`).

uvicorn's httptools protocol bounds neither the head nor the time to send it, hence the
subclass below (httptools is kept: it is the fast parser).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
import uuid
from collections import OrderedDict
from typing import Any, ClassVar

import httptools
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from app.config import DEFAULT_MAX_HEADER_BYTES, Config

MAX_HEADER_FIELDS = 100
HEADER_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5
MAX_CONNECTIONS = 1000
LINGER = 5.0  # seconds a refused connection is read (and dropped) before it is closed
_FD_RESERVE = 200  # file descriptors kept for the store, git's pipes and logs

log = logging.getLogger("statewriter.server")


def serve(app: FastAPI, config: Config, sockets: list[socket.socket] | None = None) -> bool:
    """Serve `app` until SIGINT or SIGTERM, on `sockets` (bound and listening) or else on the
    configured host and port. False when it could not start (uvicorn has logged why)."""
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.host, port=config.port, log_level="info",
        log_config=None, access_log=False,  # app.logs: one formatter; app.http.access: its own request lines
        http=bounded_protocol(config.max_header_bytes),
        ws="none",  # no WebSocket routes: an Upgrade request is served as plain HTTP
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        limit_concurrency=_connection_limit(),
    ))
    server.run(sockets=sockets)
    return server.started


def _connection_limit() -> int:
    """MAX_CONNECTIONS, or fewer when the process may not open that many files (the soft
    limit is raised to the hard one first, as many runtimes do)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - _FD_RESERVE))


def bounded_protocol(max_header_bytes: int) -> type[HttpToolsProtocol]:
    """A BoundedHttpToolsProtocol class for one server: heads of at most `max_header_bytes`."""
    limit = max_header_bytes

    class Bounded(BoundedHttpToolsProtocol):
        max_header_bytes = limit
        waiting: ClassVar[OrderedDict[BoundedHttpToolsProtocol, None]] = OrderedDict()

    return Bounded


class _TooManyFields(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the request head bounded in size, field count and
    time. `_reading_head` is true from the connection or the end of a request's body to the
    end of the next request's head: bytes received meanwhile are that head's. `_chunk_open`
    is true from a chunk's size line to its first byte: the last chunk has none, and its
    trailer fields follow, which httptools would collect without a limit."""

    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    # The server's connections waiting for a request head, longest-waiting first: the ones
    # closed to make room for new connections.
    waiting: ClassVar[OrderedDict[BoundedHttpToolsProtocol, None]] = OrderedDict()

    def __init__(self, config: uvicorn.Config, server_state: ServerState,
                 app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._reading_head = True
        self._head_bytes = 0
        self._head_fields = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._chunk_open = False
        self._trailer_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) >= limit and self.waiting:
            longest, _ = self.waiting.popitem(last=False)
            longest.transport.close()
            self.connections.discard(longest)  # now: uvicorn counts it until connection_lost
        self._arm_head_timer()
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.waiting.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered already: drop what is still coming until the linger ends
        self._unset_keepalive_if_required()
        if self._chunk_open:
            self._trailer_bytes += len(data)
        rest: bytes | memoryview = data
        if self._reading_head:
            self._arm_head_timer()  # also for bytes between requests, which start no message
            room = self.max_header_bytes - self._head_bytes
            if len(data) > room:
                # Parse only up to the limit: if that does not end the head, it is too large.
                view = memoryview(data)
                if not self._feed(view[:room]):
                    return
                if self._reading_head:
                    self._refuse(f"request head over {self.max_header_bytes} bytes")
                    return
                rest = view[room:]
            else:
                self._head_bytes += len(data)
        if self._feed(rest) and self._chunk_open and self._trailer_bytes > self.max_header_bytes:
            log.warning("closed %s: chunk trailers over %d bytes", self.client, self.max_header_bytes)
            self.transport.close()

    def _feed(self, data: bytes | memoryview) -> bool:
        """Parse `data`; false when the connection was answered and is closing."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # ws="none": uvicorn's own protocol also goes on as plain HTTP here
        except httptools.HttpParserError:
            if self._head_fields > MAX_HEADER_FIELDS:
                self._refuse(f"request head over {MAX_HEADER_FIELDS} header fields")
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return False
        return True

    # -- parser and uvicorn callbacks ---------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > MAX_HEADER_FIELDS:
            raise _TooManyFields  # stops the parser; _feed answers
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = self._chunk_open = False
        self._head_bytes = self._head_fields = 0
        self._cancel_head_timer()
        self._track()
        super().on_headers_complete()
        if self.cycle is not None:
            _answer_in_one_write(self.cycle)

    def on_body(self, body: bytes) -> None:
        self._chunk_open = False
        super().on_body(body)

    def on_chunk_header(self) -> None:
        self._chunk_open, self._trailer_bytes = True, 0

    def on_chunk_complete(self) -> None:
        self._chunk_open = False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._chunk_open = True, False
        self._track()

    def on_response_complete(self) -> None:
        if self.cycle is not None and isinstance(self.cycle.transport, _HeldHead):
            self.cycle.transport.release()  # a HEAD answer, or one without a body write
        super().on_response_complete()
        self._track()

    # -- refusals and timeouts ----------------------------------------------------------------

    def _answering(self) -> bool:
        """A request on this connection is still being answered."""
        return self.cycle is not None and not self.cycle.response_complete

    def _track(self) -> None:
        """Keep `waiting` up to date: this connection waits for a head, and nothing else."""
        self.waiting.pop(self, None)
        if self._reading_head and not self._answering() and not self.transport.is_closing():
            self.waiting[self] = None

    def _refuse(self, why: str) -> None:
        """413, then read and drop what the client still sends for LINGER seconds before
        closing: closing with unread data would reset the connection, and the client would
        likely never see the answer."""
        self._refused = True
        self._cancel_head_timer()
        self.waiting.pop(self, None)
        if self._answering() or not self._reading_head:
            self.transport.close()  # an answer is being written, or trailers: it has one
            return
        log.warning("413 to %s: %s", self.client, why)
        body = json.dumps({"error": "LimitExceeded", "message": why}, separators=(",", ":")).encode()
        head = [b"HTTP/1.1 413 Content Too Large\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n",
                 b"content-length: %d\r\n" % len(body),
                 b"x-request-id: " + uuid.uuid4().hex.encode() + b"\r\n",
                 b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER, self.transport.close)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._answering():
            self._arm_head_timer()  # a pipelined head waits while the answer before it is written
            return
        self.transport.close()


class _HeldHead:
    """The transport of one request's answer, holding the response head back until the
    first body bytes so that both go in one write (one `send` instead of two: writing a
    small answer was a sixth of the event loop's time). Everything else is the transport's."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.holding = False  # while the head is being written
        self.head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self.holding:
            self.holding, self.head = False, data
            return
        if self.head is not None:
            data, self.head = self.head + data, None
        self.transport.write(data)

    def release(self) -> None:
        if self.head is not None:
            head, self.head = self.head, None
            self.transport.write(head)

    def close(self) -> None:
        self.release()
        self.transport.close()

    def write_eof(self) -> None:
        self.release()
        self.transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _answer_in_one_write(cycle: RequestResponseCycle) -> None:
    held = _HeldHead(cycle.transport)
    cycle.transport = held  # type: ignore[assignment]
    send = cycle.send

    async def send_coalesced(message: Any) -> None:
        held.holding = message["type"] == "http.response.start"
        try:
            await send(message)
        finally:
            held.holding = False

    cycle.send = send_coalesced  # type: ignore[method-assign]
