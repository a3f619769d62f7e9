"""The shortcuts the CPU per bundle was cut with behave as the long ways did: a bundle
parsed on the event loop or in a thread is answered the same, a pack's small and stored
zlib streams read back in git, and normalising copies only what it changes."""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest

from app.api import INLINE_PARSE_BYTES, parses_quickly
from gitops.bundle import SourceDocument
from gitops.normalize import normalize
from gitops.store.pack import SMALL, _deflate, object_id, write_pack
from gitops.yamldocs import load_documents
from tests.server import running_server
from tests.support import payload


def test_only_small_bodies_without_anchors_or_escapes_parse_on_the_event_loop() -> None:
    assert parses_quickly(b'{"files": {"a.yaml": "kind: ConfigMap"}}')
    assert not parses_quickly(b'{"files": {"a.yaml": "a: &x 1\\nb: *x"}}')  # an anchor
    assert not parses_quickly(b'{"files": {"a.yaml": "a: \\u0026x 1"}}')  # one hidden in \u
    assert not parses_quickly(b" " * (INLINE_PARSE_BYTES + 1))


def test_a_bundle_is_answered_the_same_parsed_inline_or_in_a_thread(tmp_path: Path) -> None:
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n"
    anchored = config_map.replace("a: '1'", "a: &one '1'\n  b: *one")
    with running_server(tmp_path) as url:
        assert httpx.put(f"{url}/v1/destinations/worker-1",
                         json={"labels": {"env": "dev"}, "path": "worker-1"}).status_code == 200
        answers = []
        for name, text in (("inline", config_map), ("threaded", anchored)):
            body = json.dumps(payload("app", f"team-{name}/{name}", {"cm.yaml": text},
                                      selectors={"env": "dev"})).encode()
            assert parses_quickly(body) == (name == "inline")
            answer = httpx.post(f"{url}/v1/bundles", content=body,
                                headers={"content-type": "application/json"})
            answers.append((answer.status_code, answer.json()["state"]))
            bad = body.replace(b"settings", b"Not_A_Name")
            refused = httpx.post(f"{url}/v1/bundles", content=bad,
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
