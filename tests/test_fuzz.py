"""Fuzzing, bounded so the suite stays fast:

- schemathesis generates requests from the live service's own /openapi.json (JSON and
  gzip bodies, query and path parameters; schema-valid and schema-violating) and checks
  that none gets a 5xx, and that the service is still healthy afterwards;
- hypothesis throws random input at the bundle parser and the tar reader: only
  InvalidBundle or LimitExceeded may come out, never another exception.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from gitops.bundle import Limits, parse_bundle
from gitops.errors import InvalidBundle, LimitExceeded
from gitops.owner import make_owner
from gitops.tarbundle import read_tar_bundle
from tests.fixtures.eck import request_files
from tests.procs import branch_tip, running_server

EXAMPLES = 30
SMALL = Limits(max_bundle_bytes=256 * 1024, max_documents=200, max_files=50, max_depth=32,
               max_nodes=20_000)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


# -- schemathesis against the live service -------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    with running_server(root / "data", config_yaml="limits: {maxBundleBytes: 262144}\n",
                        ready_path="/healthz") as server:
        url = server.url
        assert httpx.put(f"{url}/v1/destinations/worker-1", json={"labels": {}}).status_code == 200
        yield url, root


def operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 10, [op.label for op in found]
    return found


def test_no_operation_answers_a_server_error(live: tuple[str, Path]) -> None:
    url, root = live
    tested: list[str] = []
    for operation in operations(url):
        media_types: list[str | None] = list(operation.get_request_payload_content_types()) or [None]
        for media_type in media_types:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(generation_mode=mode, media_type=media_type)

                @FUZZ
                @given(case=strategy)
                def fuzz(case: Any) -> None:
                    response = case.call(base_url=url, timeout=10)
                    assert response.status_code < 500, (case.method, case.path, response.text[:300])
                    case.validate_response(response, checks=[not_a_server_error])

                try:
                    fuzz()
                except Unsatisfiable:
                    # nothing schema-violating to send (e.g. GET /healthz has no parameters)
                    assert mode is GenerationMode.NEGATIVE, operation.label
                    continue
                tested.append(f"{operation.label} {media_type or '-'} {mode.value}")
    for media_type in ("application/json", "application/gzip"):
        assert f"POST /v1/bundles {media_type} positive" in tested, tested
        assert f"POST /v1/bundles {media_type} negative" in tested, tested
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 200
    assert branch_tip(root / "data") is not None


def test_gzip_bodies_reach_the_tar_reader(live: tuple[str, Path]) -> None:
    """Random bytes as application/gzip with a valid identity: 4xx, never a write."""
    url, root = live
    before = branch_tip(root / "data")
    params = {"promise": "fuzz", "namespace": "default", "name": "x"}

    @FUZZ
    @given(body=st.binary(max_size=2048) | st.binary(max_size=2048).map(gzip.compress))
    def fuzz(body: bytes) -> None:
        response = httpx.post(f"{url}/v1/bundles", content=body, params=params,
                              headers={"content-type": "application/gzip"}, timeout=10)
        assert 400 <= response.status_code < 500, response.text

    fuzz()
    assert branch_tip(root / "data") == before


# -- hypothesis: the bundle parser ------------------------------------------------------------

YAML_BITS = ["a", "b", ":", " ", "\n", "- ", "---\n", "&a ", "*a", "!!int ", "!!str ", "!!binary ",
             "!!python/name:os.system ", "[", "]", "{", "}", ",", "'", '"', "#", "|", ">", "0x", "1",
             "9" * 20, ".inf", "~", "null", "? ", "<<: ", "%YAML 1.1\n", "\t", "\\", "\x00", "é",
             "kind: ConfigMap\n", "apiVersion: v1\n", "metadata:\n  name: cm\n", "  namespace: ..\n",
             "metadata: {name: ../x}\n", "  annotations: {statewriter.dev/placement: x}\n"]
yaml_texts = st.lists(st.sampled_from(YAML_BITS), max_size=40).map("".join) | st.text(max_size=200)
names = st.sampled_from(["elastic-cloud", "default", "..", "a/b", "", "x" * 70, "A", "ok-1"]) | st.text(
    max_size=10)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
payloads = st.fixed_dictionaries(
    {"promise": names, "files": st.dictionaries(st.text(max_size=20) | st.sampled_from(
        ["a.yaml", "../x.yaml", "/abs", "a//b"]), yaml_texts, max_size=4)},
    optional={"request": st.fixed_dictionaries({"namespace": names, "name": names}) | json_values,
              "pipeline": names, "destinationSelectors": st.dictionaries(st.text(max_size=5),
                                                                         st.text(max_size=5)) | json_values,
              "status": json_values, "promiseGeneration": json_values},
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(payload=payloads | json_values)
def test_parse_bundle_raises_only_refusals(payload: Any) -> None:
    with contextlib.suppress(InvalidBundle, LimitExceeded):
        parse_bundle(payload, SMALL)


text_values = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), max_size=300)
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n"


@FUZZ
@given(value=text_values, margin=st.integers(min_value=-4, max_value=4))
def test_document_size_limit_counts_utf8_bytes(value: str, margin: int) -> None:
    """A document over maxDocumentBytes (UTF-8 bytes, not characters) is a 413 naming it."""
    quoted = json.dumps(value, ensure_ascii=False)
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata: {{k: {quoted}}}\n"
    size = len(doc.encode())
    payload = {"promise": "p", "files": {"a.yaml": f"{NAMESPACE}---\n{doc}"}}
    limits = Limits(max_document_bytes=size + margin)
    if margin >= 0:
        assert parse_bundle(payload, limits).documents[1].doc["data"] == {"k": value}
        return
    with pytest.raises(LimitExceeded) as refused:
        parse_bundle(payload, limits)
    assert (refused.value.detail["file"], refused.value.detail["document"]) == ("a.yaml", 1)
    assert f"a.yaml: document 1: document is {size} bytes" in refused.value.message


@pytest.mark.parametrize("scalar", ["!!int x", "!!timestamp x", "!!bool x", "!!float x"],
                         ids=lambda value: value[:10])
def test_parse_bundle_on_malformed_scalars(scalar: str) -> None:
    text = f"a: {scalar}\nkind: ConfigMap\napiVersion: v1\nmetadata: {{name: a}}\n"
    with pytest.raises(InvalidBundle):
        parse_bundle({"promise": "p", "files": {"a.yaml": text}}, SMALL)


# -- hypothesis: the tar reader ------------------------------------------------------------------

OWNER = make_owner("elastic-cloud", "default", "example", "default")
TYPES = [tarfile.REGTYPE, tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
         tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"Z"]
PARTS = ["output", "metadata", "..", ".", "", "a.yaml", "destination-selectors.yaml",
         "cluster-selectors.yaml", "status.yaml", "/", ".git", "x"]
member_names = st.lists(st.sampled_from(PARTS), min_size=1, max_size=4).map("/".join) | st.text(max_size=30)
members = st.lists(st.tuples(member_names, st.sampled_from(TYPES), yaml_texts | st.binary(max_size=100)),
                   max_size=6)


def build(entries: list[tuple[str, bytes, str | bytes]], fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for name, kind, content in entries:
            data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "output/a.yaml" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            regular = kind in (tarfile.REGTYPE, tarfile.CONTTYPE, b"Z")
            info.size = len(data) if regular else 0
            try:
                archive.addfile(info, io.BytesIO(data) if regular else None)
            except (ValueError, UnicodeError):
                continue  # a name tarfile itself cannot write
    return buffer.getvalue()


def valid_tar() -> bytes:
    files = [(f"output/{name}", tarfile.REGTYPE, text) for name, text in request_files("x").items()]
    return build([*files, ("metadata/destination-selectors.yaml", tarfile.REGTYPE,  # type: ignore[list-item]
                           "- matchLabels: {a: b}\n")], tarfile.PAX_FORMAT)


VALID = valid_tar()


def read(data: bytes) -> None:
    with contextlib.suppress(InvalidBundle, LimitExceeded):
        read_tar_bundle(data, OWNER, SMALL)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(entries=members, fmt=st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
def test_tar_reader_on_random_archives(entries: list[tuple[str, bytes, str | bytes]], fmt: int) -> None:
    read(gzip.compress(build(entries, fmt)))


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1,
                      max_size=12),
       cut=st.none() | st.integers(0, len(VALID)))
def test_tar_reader_on_corrupted_archives(flips: list[tuple[int, int]], cut: int | None) -> None:
    raw = bytearray(VALID)
    for position, value in flips:
        raw[position] = value
    read(gzip.compress(bytes(raw[:cut])))


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=4096), compress=st.booleans())
def test_tar_reader_on_random_bytes(data: bytes, compress: bool) -> None:
    read(gzip.compress(data) if compress else data)
