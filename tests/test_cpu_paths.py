"""The shortcuts the CPU per bundle was cut with behave as the long ways did: a bundle
parsed on the event loop or in a thread is answered the same, a pack's small and stored
zlib streams read back in git, normalising copies only what it changes, an ordinary
document written directly has the emitter's bytes, one read directly has the values
PyYAML's constructors give, and an answer's head held back to go with its body still goes
out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.http.api import INLINE_PARSE_BYTES, parses_quickly
from gitops.bundle import SourceDocument
from gitops.normalize import normalize
from gitops.store import pack
from gitops.store.pack import SMALL, _deflate, object_id, write_pack
from gitops.yamldocs import (
    YamlError,
    _construct,
    _DeliveryLoader,
    _dump_with_pyyaml,
    _write_ordinary,
    load_documents,
)
from tests.conftest import Service
from tests.procs import running_server
from tests.support import payload
from tests.test_yaml_values import assert_dumped_as_pyyaml


def test_only_small_bodies_without_anchors_or_escapes_parse_on_the_event_loop() -> None:
    assert parses_quickly(b'{"files": {"a.yaml": "kind: ConfigMap"}}')
    assert not parses_quickly(b'{"files": {"a.yaml": "a: &x 1\\nb: *x"}}')  # an anchor
    assert not parses_quickly(b'{"files": {"a.yaml": "a: \\u0026x 1"}}')  # one hidden in \u
    assert not parses_quickly(b" " * (INLINE_PARSE_BYTES + 1))


def test_a_bundle_is_answered_the_same_parsed_inline_or_in_a_thread(in_process_service: Service) -> None:
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"
    anchored = config_map.replace("a: '1'", "a: &one '1'\n  b: *one")
    http = in_process_service.client
    assert http.put("/v1/destinations/worker-1",
                    json={"labels": {"env": "dev"}, "path": "worker-1"}).status_code == 200
    answers = []
    for name, text in (("inline", config_map), ("threaded", anchored)):
        body = json.dumps(payload("app", f"team-{name}/{name}", {"cm.yaml": text},
                                  selectors={"env": "dev"})).encode()
        assert parses_quickly(body) == (name == "inline")
        answer = http.post("/v1/bundles", content=body,
                           headers={"content-type": "application/json"})
        answers.append((answer.status_code, answer.json()["state"]))
        bad = body.replace(b"settings", b"Not_A_Name")
        refused = http.post("/v1/bundles", content=bad,
                            headers={"content-type": "application/json"})
        answers.append((refused.status_code, refused.json()["error"]))
    assert answers[:2] == answers[2:] == [(200, "Scheduled"), (422, "InvalidBundle")]


@pytest.mark.parametrize("kind,size", [("blob", 10), ("blob", SMALL), ("blob", SMALL + 1),
                                       ("tree", 2000), ("commit", 300)])
def test_every_zlib_stream_of_a_pack_reads_back_in_git(tmp_path: Path, kind: str, size: int) -> None:
    data = (b"statewriter " * size)[:size]
    assert zlib.decompress(_deflate(kind, data)) == data
    if kind != "blob":
        return  # git checks trees and commits for their own format; the stream is the same
    git_dir = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    sha = object_id(kind, data)
    write_pack(git_dir / "objects" / "pack", {sha: (kind, data)})
    shown = subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", kind, sha],
                           check=True, capture_output=True).stdout
    assert shown == data


def test_normalising_keeps_an_alias_of_the_metadata_as_the_pipeline_sent_it() -> None:
    [doc] = load_documents("apiVersion: apps/v1\nkind: Deployment\nmetadata: &meta\n"
                           "  name: web\n  annotations: {statewriter.dev/placement: dependency}\n"
                           "spec:\n  template:\n    metadata: *meta\n")
    source = SourceDocument("d.yaml", 0, doc)
    normalised = normalize(source.doc, "team-a", cluster_scoped=False)
    assert normalised["metadata"] == {"name": "web", "namespace": "team-a"}
    assert normalised["spec"]["template"]["metadata"] == {
        "name": "web", "annotations": {"statewriter.dev/placement": "dependency"}}
    assert doc["metadata"] == doc["spec"]["template"]["metadata"]  # the source is untouched


ORDINARY_WORDS = (st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_./-]{0,12}\Z")
                  | st.sampled_from(["yes", "No", "on", "true", "null", "8.9.0", "1e3", "0x1F",
                                     "1_000", "y", "n", "_", "a" * 119, "a" * 121, "a" * 130]))
ORDINARY_SCALARS = (ORDINARY_WORDS | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                    | st.booleans() | st.none())
ORDINARY = st.recursive(
    ORDINARY_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ORDINARY_WORDS, inner, max_size=4),
    max_leaves=16)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(ORDINARY_WORDS, ORDINARY, min_size=1, max_size=6), st.data())
def test_an_ordinary_document_is_written_as_the_emitter_writes_it(
    doc: dict[str, Any], data: st.DataObject,
) -> None:
    """Words, numbers, booleans and nulls in nested mappings and sequences: the direct
    writer's bytes are PyYAML's with the same dumper, a container met twice included."""
    assert_dumped_as_pyyaml(doc, data)


def test_a_request_object_is_written_directly() -> None:
    doc = {"apiVersion": "elasticsearch.k8s.elastic.co/v1", "kind": "Elasticsearch",
           "metadata": {"name": "r1", "namespace": "team-001"},
           "spec": {"version": "8.9.0", "nodeSets": [{"name": "default", "count": 1}]}}
    written = _write_ordinary(doc)
    assert written is not None and written.encode() == _dump_with_pyyaml(doc)
    assert _write_ordinary({"a": "two words"}) is None  # left to the emitter


def _exchange(url: str, request: bytes, first_wait: bytes | None = None,
              then: bytes = b"") -> bytes:
    """Send `request` on a raw connection (waiting for `first_wait` before sending `then`);
    everything answered until the server closes or 5 s pass."""
    host, _, port = url.removeprefix("http://").partition(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        interim = received = b""
        if first_wait is not None:
            while first_wait not in interim:
                chunk = conn.recv(65536)
                assert chunk, interim
                interim += chunk
            conn.sendall(then)
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    return interim + received


def _complete(received: bytes) -> bool:
    head, _, body = received.rpartition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def test_answers_keep_their_head_with_or_without_a_body(tmp_path: Path) -> None:
    """The head held back for the first body bytes still goes out: with the body, alone for
    a HEAD request, and after a `100 Continue` sent while the request body is awaited."""
    with running_server(tmp_path / "data", ready_path="/healthz") as server:
        url = server.url
        got = _exchange(url, b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"}")
        # /healthz is GET only: a HEAD request is answered 405, a head and no body
        head = _exchange(url, b"HEAD /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405 ") and head.endswith(b"\r\n\r\n")
        body = json.dumps({"labels": {"env": "dev"}, "path": "worker-1"}).encode()
        put = (b"PUT /v1/destinations/worker-1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
               b"content-type: application/json\r\nexpect: 100-continue\r\n"
               b"content-length: %d\r\n\r\n" % len(body))
        answer = _exchange(url, put, b"HTTP/1.1 100 Continue\r\n\r\n", body)
        assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
        assert b'"name":"worker-1"' in answer.replace(b" ", b"")


def _both_ways(text: str) -> tuple[Any, Any]:
    """`text`'s first document built directly (falling back as the service does) and by
    PyYAML's constructors alone, each from its own loader; a refusal as its message."""
    def read(build: Any) -> Any:
        loader = _DeliveryLoader(text)
        try:
            assert loader.check_node()  # libyaml starts the stream here
            return build(loader, loader.get_node())
        except Exception as error:  # the same refusal either way
            return (type(error).__name__, str(error))
        finally:
            loader.dispose()

    return (read(_construct),
            read(lambda loader, node: loader.construct_document(node)))


PLAIN_VALUES = st.recursive(
    ORDINARY_SCALARS | st.text(max_size=8) | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ORDINARY_WORDS, inner, max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(ORDINARY_WORDS, PLAIN_VALUES, min_size=1, max_size=5), st.data())
def test_plain_documents_are_read_as_pyyaml_reads_them(doc: dict[str, Any], data: st.DataObject) -> None:
    """Values, key order and shared containers (anchors and aliases) as PyYAML builds them."""
    containers = [v for v in doc.values() if isinstance(v, dict | list)]
    if containers:
        doc = {**doc, "again": data.draw(st.sampled_from(containers))}
    direct, pyyaml = _both_ways(yaml.safe_dump(doc, sort_keys=False))
    if isinstance(direct, tuple):  # refused: PyYAML builds nested containers last, so of
        # several problems it may name a later one; the direct way names the first
        assert isinstance(pyyaml, tuple) and direct[0] == pyyaml[0]
        return
    assert direct == pyyaml and list(direct) == list(pyyaml)
    if containers and isinstance(direct, dict):
        assert any(direct["again"] is v for k, v in direct.items() if k != "again")


@pytest.mark.parametrize("text", [
    "a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n",  # a merge key
    "=: 1\n",  # the value key
    "a: !!binary aGk=\n",  # another tag
    "a: &x [*x]\n",  # a node inside itself
    "? [1, 2]\n: complex key\n",
])
def test_unusual_documents_are_left_to_pyyaml(text: str) -> None:
    direct, pyyaml = _both_ways(text)
    assert repr(direct) == repr(pyyaml)


def test_keys_written_twice_are_refused_either_way() -> None:
    with pytest.raises(YamlError, match="duplicate key"):
        load_documents("a: 1\nb: {c: 1, c: 2}\n")
    with pytest.raises(YamlError, match="duplicate key"):
        load_documents("a: &x {c: 1}\nb: {<<: *x, d: 1, d: 2}\n")


def test_the_bundle_query_is_read_as_declared_parameters_were(in_process_service: Service) -> None:
    """Each refused parameter named in the contract's error body; a good query still works."""
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
    body = payload("app", "team-q/q1", {"cm.yaml": config_map})
    http = in_process_service.client
    for query, field in (("dryRun=maybe", "dryRun"), ("promiseGeneration=-1", "promiseGeneration"),
                         ("promiseGeneration=x", "promiseGeneration"), ("trailer=A%3D1", "trailer")):
        answer = http.post(f"/v1/bundles?{query}", json=body)
        assert (answer.status_code, answer.json()["field"]) == (422, field), query
    dry = http.post("/v1/bundles?dryRun=true&unknown=1", json=body)
    assert dry.status_code == 202 and dry.json()["dryRun"] is True


def test_a_pack_is_written_past_temporaries_a_killed_process_left(tmp_path: Path) -> None:
    """Temporary files are named by pid and a counter: one left by an earlier process that
    had the same pid is stepped over, not failed on."""
    folder = tmp_path / "pack"
    folder.mkdir()
    upcoming = next(pack._TEMPORARIES) + 1
    for n in range(upcoming, upcoming + 3):
        (folder / f"tmp_pack_{os.getpid()}_{n}").write_bytes(b"left behind")
    data = b"statewriter"
    assert write_pack(folder, {object_id("blob", data): ("blob", data)}) is not None
    assert len(list(folder.glob("pack-*.pack"))) == 1
