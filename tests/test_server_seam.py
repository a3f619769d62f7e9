"""The seam to uvicorn's internals (app/http/server.py): a test per internal it relies on, so a
uvicorn release that changes one fails here, naming it, rather than in production, quietly.
What the service does with them is tested against a real server in test_http_limits.py
(heads bounded in size, fields and time; connections past the limit) and test_cpu_paths.py
(an answer's head and body in one write)."""

from __future__ import annotations

import inspect

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from app.http.server import BoundedHttpToolsProtocol, bounded_protocol


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_protocol_is_built_as_uvicorn_builds_it() -> None:
    assert _parameters(HttpToolsProtocol.__init__)[:5] == [
        "self", "config", "server_state", "app_state", "_loop"]
    assert "http" in _parameters(uvicorn.Config.__init__)  # a protocol class is taken as given


def test_the_connection_callbacks_it_extends_exist() -> None:
    for name in ("connection_made", "connection_lost", "data_received", "on_header",
                 "on_headers_complete", "on_body", "on_message_complete", "on_response_complete",
                 "send_400_response", "_unset_keepalive_if_required"):
        assert callable(getattr(HttpToolsProtocol, name, None)), name
        assert getattr(BoundedHttpToolsProtocol, name) is not None


def test_what_it_reads_of_a_connection_is_set_up_by_uvicorn() -> None:
    source = inspect.getsource(HttpToolsProtocol)
    for attribute in ("self.connections", "self.limit_concurrency", "self.transport",
                      "self.parser", "self.cycle", "self.server_state", "self.loop",
                      "self.client", "self.logger"):
        assert attribute in source, attribute
    assert "default_headers" in inspect.getsource(uvicorn.server.ServerState)


def test_a_cycle_sends_through_its_transport_with_one_write_per_message() -> None:
    """`_answer_in_one_write` swaps the cycle's transport and wraps `send`: the head of an
    answer must be written with one `transport.write` when `http.response.start` is sent."""
    assert inspect.iscoroutinefunction(RequestResponseCycle.send)
    assert _parameters(RequestResponseCycle.send) == ["self", "message"]
    source = inspect.getsource(RequestResponseCycle.send)
    assert "self.transport.write(" in source and "response_complete" in source


def test_a_bounded_protocol_is_made_per_server() -> None:
    first, second = bounded_protocol(2048), bounded_protocol(4096)
    assert issubclass(first, HttpToolsProtocol)
    assert (first.max_header_bytes, second.max_header_bytes) == (2048, 4096)
    assert first.waiting is not second.waiting  # connections of one server only
