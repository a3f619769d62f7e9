"""Hostile input against the service (the real app, in this process: tests/conftest.py; and
a real `statewriter serve` for a smoke test): every class gets a 4xx within a second, the
branch is unchanged, and the service keeps serving. Auth: 401 / 401 / 403, health open."""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Service
from tests.fixtures.eck import request_bundle, request_files
from tests.procs import running_server
from tests.test_tarbundle import alias_bomb, configmap_of, member, tar_bytes, tgz

PIPELINE = "s3cret"
ADMIN = "adm1n"
CONFIG = """
auth:
  tokens:
    - {name: pipeline, token: s3cret, promises: [elastic-cloud]}
    - {name: admin, token: adm1n, promises: ["*"], destinations: true}
limits: {maxBundleBytes: 1048576, maxDocuments: 50, maxFiles: 20, maxDocumentBytes: 65536}
"""
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: v}\n"
GZIP = {"content-type": "application/gzip"}
IDENTITY = {"promise": "elastic-cloud", "namespace": "default", "name": "example"}


@pytest.fixture(scope="module")
def service_config() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def service_token() -> str:
    return PIPELINE


@pytest.fixture(scope="module")
def service(module_in_process_service: Service) -> Service:
    """The service in this process (tests/conftest.py), with one destination: worker-1."""
    service = module_in_process_service
    response = service.call("PUT", "/v1/destinations/worker-1", ADMIN, json={"labels": {"env": "dev"}})
    assert response.status_code == 200, response.text
    assert service.tip() is not None
    return service


def bundle(files: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"promise": "elastic-cloud", "request": {"namespace": "default", "name": "example"},
            "files": files, **extra}


def post_json(service: Service, status: int, payload: Any) -> httpx.Response:
    return service.refused(status, "POST", "/v1/bundles", json=payload)


def post_raw(service: Service, status: int, body: bytes, content_type: str = "application/json",
             **kwargs: Any) -> httpx.Response:
    return service.refused(status, "POST", "/v1/bundles", content=body,
                           headers={"content-type": content_type}, **kwargs)


# -- positive controls: the right token writes, both forms -------------------------------


def test_pipeline_token_writes_json_and_tar(service: Service) -> None:
    response = service.call("POST", "/v1/bundles", json=request_bundle("good"))
    assert response.status_code == 200, response.text
    assert response.json()["destinations"] == ["worker-1"]
    files = {f"output/{k}": v for k, v in request_files("good").items()}
    response = service.call("POST", "/v1/bundles", content=tgz(files), headers=GZIP,
                            params={**IDENTITY, "name": "good"})
    assert response.status_code == 200, response.text
    assert response.json()["changed"] is False  # the same bundle as tar: nothing to do


# -- JSON bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"{not json", b"", b"\xff\xfe{}", b'{"promise": "elastic-cloud", "files": {}',
    b'{"a": 1e99999999999}x', b"[" * 100_000 + b"]" * 100_000, b'{"a": ' + b"1" * 5000 + b"}",
], ids=lambda body: repr(body[:20]))
def test_invalid_json_is_422(service: Service, body: bytes) -> None:
    post_raw(service, 422, body)


@pytest.mark.parametrize("payload", [[1, 2], "bundle", None, 42, True])
def test_json_that_is_not_an_object_is_422(service: Service, payload: Any) -> None:
    post_json(service, 422, payload)


def test_deep_json_nesting_is_422(service: Service) -> None:
    status: Any = {}
    for _ in range(500):  # under Python's recursion limit, over the depth limit
        status = {"a": status}
    post_json(service, 422, bundle({"cm.yaml": CM}, status=status))
    text = '{"promise": "elastic-cloud", "files": {}, "status": ' + "[" * 50_000 + "]" * 50_000 + "}"
    post_raw(service, 422, text.encode())


@pytest.mark.parametrize(("text", "why"), [
    (alias_bomb(), "too many"),
    ("a: " + "[" * 100 + "]" * 100 + "\n" + CM, "deep"),  # over limits.maxDepth
    ("a: " + "[" * 5000 + "]" * 5000 + "\n" + CM, ""),  # the parser's own limit, or ours
    ("a: &a [*a]\n" + CM, ""),
    ("a: [\n" + CM, "invalid YAML"),
    ("a: b: c\n", "invalid YAML"),
    ("\t- tabs\n", "invalid YAML"),
    ("- a\n- b\n", "not a mapping"),
    ("just a string\n", "not a mapping"),
    ("42\n", "not a mapping"),
    ("a: !!python/object/apply:os.system [id]\n" + CM, "invalid YAML"),
    ("a: !!binary aGVsbG8=\n" + CM, "unsupported YAML value"),
    ("a: !!int x\n" + CM, ""),
    ("a: 0x_\n" + CM, ""),
    ("a: " + "9" * 5000 + "\n" + CM, ""),
    ("? [a, b]\n: c\n" + CM, ""),
    ("apiVersion: v1\nmetadata: {name: cm}\n", "kind"),
    ("apiVersion: v1\nkind: ConfigMap\n", "metadata"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: default}\n", "metadata.name"),
    ("kind: ConfigMap\nmetadata: {name: cm}\n", "apiVersion"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ''}\n", "metadata.name"),
], ids=lambda value: repr(value[:24]) if isinstance(value, str) else None)
def test_bad_yaml_is_422(service: Service, text: str, why: str) -> None:
    message = post_json(service, 422, bundle({"cm.yaml": CM, "x.yaml": text})).json()["message"]
    assert why in message


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "..", "a/../../b", ".", "-x", "x" * 300,
                                  "a\x00b", "/abs", "../../.git/config", "a\\..\\b"],
                         ids=lambda value: repr(value[:24]))
def test_path_traversal_through_object_names_is_422(service: Service, name: str) -> None:
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {json.dumps(name)}}}\n"
    post_json(service, 422, bundle({"cm.yaml": doc}))


@pytest.mark.parametrize("namespace", ["../x", "a/b", "..", "Default", ".statewriter", "x" * 64],
                         ids=lambda value: repr(value[:24]))
def test_path_traversal_through_object_namespaces_is_422(service: Service, namespace: str) -> None:
    doc = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm, namespace: {json.dumps(namespace)}}}\n"
    post_json(service, 422, bundle({"cm.yaml": doc}))


@pytest.mark.parametrize("doc", [
    "apiVersion: v1\nkind: ../Secret\nmetadata: {name: x}\n",
    "apiVersion: v1\nkind: Config/Map\nmetadata: {name: x}\n",
    "apiVersion: ../../v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    "apiVersion: a/b/c\nkind: ConfigMap\nmetadata: {name: x}\n",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, annotations: {statewriter.dev/placement: x}}\n",
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nmetadata: {name: k}\n",
])
def test_malformed_kinds_groups_and_control_annotations_are_422(service: Service, doc: str) -> None:
    post_json(service, 422, bundle({"cm.yaml": doc}))


@pytest.mark.parametrize("file", ["../x.yaml", "/etc/x.yaml", "a/../../x.yaml", "./x.yaml", "a//b.yaml",
                                  "a\\..\\x.yaml", "", "x\x00.yaml", "a/./b.yaml", "x" * 1100],
                         ids=lambda value: repr(value[:24]))
def test_path_traversal_through_file_names_is_422(service: Service, file: str) -> None:
    post_json(service, 422, bundle({file: CM}))


@pytest.mark.parametrize(("where", "value"), [
    ("promise", "../etc"), ("promise", "Elastic-Cloud"), ("promise", ".git"), ("promise", ""),
    ("pipeline", "../../.git"), ("pipeline", "a/b"), ("pipeline", "x" * 64),
    ("namespace", "../x"), ("namespace", ".statewriter"), ("namespace", ""),
    ("name", "../../worker-2"), ("name", "a/b"), ("name", "a..b"), ("name", ".."),
], ids=lambda value: repr(value[:24]))
def test_path_traversal_through_identity_is_422(service: Service, where: str, value: str) -> None:
    payload = bundle({"cm.yaml": CM})
    if where in ("namespace", "name"):
        payload["request"] = {**payload["request"], where: value}
    else:
        payload[where] = value
    post_json(service, 422, payload)
    # the same through the tarball form's query parameters
    params = {**IDENTITY, where: value}
    post_raw(service, 422, tgz({"output/cm.yaml": CM}), "application/gzip", params=params)


@pytest.mark.parametrize("field", [
    {"files": []}, {"files": {"cm.yaml": 1}}, {"request": "default/example"},
    {"request": {"namespace": "default"}}, {"destinationSelectors": {"a": 1}},
    {"destinationSelectors": ["a"]}, {"status": []}, {"promiseGeneration": -1},
    {"promiseGeneration": "1"}, {"promiseGeneration": True},
])
def test_malformed_fields_are_422(service: Service, field: dict[str, Any]) -> None:
    post_json(service, 422, {**bundle({"cm.yaml": CM}), **field})


@pytest.mark.parametrize(("extra", "field"), [
    ({"destinationSelector": {"env": "prod"}}, "destinationSelector"),  # a typo, not ignored
    ({"request": {"namespace": "default", "name": "example", "nmae": "x"}}, "request.nmae"),
    ({"promiseGeneration": 1.0}, "promiseGeneration"),
    ({"trailers": {"change-request": "CHG-1"}}, "trailers.change-request"),
    ({"trailers": {"Statewriter-Actor": "me"}}, "trailers.Statewriter-Actor"),
    ({"trailers": {"Change-Request": "two\nlines"}}, "trailers.Change-Request"),
    ({"trailers": {f"K{i}": "v" for i in range(17)}}, "trailers"),
])
def test_unknown_or_mistyped_fields_are_422_naming_them(
    service: Service, extra: dict[str, Any], field: str
) -> None:
    refusal = post_json(service, 422, {**bundle({"cm.yaml": CM}), **extra}).json()
    assert refusal["field"] == field and field.rpartition(".")[2] in refusal["message"]


@pytest.mark.parametrize("body", [
    b'{"promise": "elastic-cloud", "files": {}, "status": {"ratio": NaN}}',
    b'{"promise": "elastic-cloud", "files": {}, "status": {"ratio": Infinity}}',
    b'{"promise": "elastic-cloud", "promise": "other", "files": {}}',
], ids=["NaN", "Infinity", "duplicate-key"])
def test_json_beyond_rfc_8259_is_422(service: Service, body: bytes) -> None:
    post_raw(service, 422, body)


def test_a_destination_with_an_unknown_field_is_422_and_keeps_its_labels(service: Service) -> None:
    refusal = service.refused(422, "PUT", "/v1/destinations/worker-1", ADMIN,
                              json={"label": {"env": "prod"}}).json()
    assert refusal["field"] == "label"
    assert service.call("GET", "/v1/destinations/worker-1").json()["labels"] == {"env": "dev"}


def test_oversized_body_is_413(service: Service) -> None:
    big = "# " + "x" * (1 << 20) + "\n" + CM
    post_json(service, 413, bundle({"cm.yaml": big}))


def test_oversized_chunked_body_is_413(service: Service) -> None:
    """No Content-Length to check up front: the stream is counted as it arrives."""

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    service.refused(413, "POST", "/v1/bundles", content=chunks(),
                    headers={"content-type": "application/json"})


def test_too_many_documents_is_413(service: Service) -> None:
    files = {f"cm{i}.yaml": "---\n".join(CM.replace("name: cm", f"name: cm-{i}-{j}") for j in range(10))
             for i in range(6)}
    post_json(service, 413, bundle(files))


def test_too_many_documents_in_one_file_is_413(service: Service) -> None:
    many = "---\n".join(CM.replace("name: cm", f"name: cm-{i}") for i in range(51))
    for response in (
        post_json(service, 413, bundle({"a.yaml": CM, "many.yaml": many})),
        post_raw(service, 413, tgz({"output/a.yaml": CM, "output/many.yaml": many}), "application/gzip",
                 params=IDENTITY),
    ):
        body = response.json()
        assert body["file"] == "many.yaml" and "more than 50 documents" in body["message"]


def test_oversized_document_is_413(service: Service) -> None:
    """One document over maxDocumentBytes, the bundle well under maxBundleBytes."""
    big = configmap_of(65537, "big")
    files = {"a.yaml": CM, "big.yaml": configmap_of(65536, "fits") + "---\n" + big}
    for response in (
        post_json(service, 413, bundle(files)),
        post_raw(service, 413, tgz({f"output/{k}": v for k, v in files.items()}), "application/gzip",
                 params=IDENTITY),
    ):
        body = response.json()
        assert (body["error"], body["file"], body["document"]) == ("LimitExceeded", "big.yaml", 1)
        assert body["message"] == (
            "big.yaml: document 1: document is 65537 bytes, more than the limit of 65536")


def test_too_many_files_is_413(service: Service) -> None:
    files = {f"cm{i}.yaml": CM.replace("name: cm", f"name: cm-{i}") for i in range(21)}
    post_json(service, 413, bundle(files))
    post_raw(service, 413, tgz({f"output/{k}": v for k, v in files.items()}), "application/gzip",
             params=IDENTITY)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/zip",
                                          "application/x-tar"])
def test_unsupported_content_type_is_415(service: Service, content_type: str) -> None:
    response = post_raw(service, 415, json.dumps(bundle({"cm.yaml": CM})).encode(), content_type)
    assert "application/gzip" in response.json()["message"]


# -- tarballs --------------------------------------------------------------------------------


def tar_with(info: tarfile.TarInfo) -> bytes:
    return gzip.compress(tar_bytes([(member("output/cm.yaml", CM.encode()), CM.encode()), (info, b"")],
                                   fmt=tarfile.GNU_FORMAT))


@pytest.mark.parametrize("info", [
    member("output/evil.yaml", kind=tarfile.SYMTYPE, link="/etc/passwd"),
    member("output/evil.yaml", kind=tarfile.SYMTYPE, link="../../../.git/config"),
    member("output/evil.yaml", kind=tarfile.LNKTYPE, link="output/cm.yaml"),
    member("output/dev", kind=tarfile.CHRTYPE),
    member("output/fifo", kind=tarfile.FIFOTYPE),
    member("../../evil.yaml", kind=tarfile.DIRTYPE),
    member("../evil.yaml"),
    member("output/../../evil.yaml"),
    member("/etc/cron.d/evil"),
    member("/output/evil.yaml"),
    member(".git/hooks/post-update"),
    member("worker-1/dependencies/evil.yaml"),
], ids=lambda info: f"{info.type!r}:{info.name}")
def test_hostile_tar_members_are_422(service: Service, info: tarfile.TarInfo) -> None:
    post_raw(service, 422, tar_with(info), "application/gzip", params=IDENTITY)


@pytest.mark.parametrize("body", [b"", b"plain text", b"\x1f\x8bnot really gzip",
                                  gzip.compress(b"gzip but not a tar" * 100), b"PK\x03\x04zip"],
                         ids=lambda value: repr(value[:12]))
def test_gzip_that_is_not_gzip_is_422(service: Service, body: bytes) -> None:
    for content_type in ("application/gzip", "application/x-gzip", "application/x-tar+gzip"):
        post_raw(service, 422, body, content_type, params=IDENTITY)


def test_gzip_bomb_is_413(service: Service) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(compressor.compress(bytes(1 << 20)) for _ in range(100)) + compressor.flush()
    assert len(bomb) < 200_000  # 100 MiB of zeros, well under the body limit
    post_raw(service, 413, bomb, "application/gzip", params=IDENTITY)


def test_tar_bad_yaml_and_missing_identity_are_422(service: Service) -> None:
    post_raw(service, 422, tgz({"output/cm.yaml": alias_bomb()}), "application/gzip", params=IDENTITY)
    post_raw(service, 422, tgz({"output/cm.yaml": "- a\n"}), "application/gzip", params=IDENTITY)
    post_raw(service, 422, tgz({"output/cm.yaml": CM}), "application/gzip")  # no promise
    post_raw(service, 422, tgz({"output/cm.yaml": CM}), "application/gzip",
             params={"promise": "elastic-cloud", "namespace": "default"})  # no name
    post_raw(service, 422, tgz({"output/cm.yaml": CM}), "application/gzip",
             params={**IDENTITY, "promiseGeneration": "-1"})
    post_raw(service, 422, tgz({"output/cm.yaml": CM, "metadata/destination-selectors.yaml":
                                "- matchLabels: {env: dev}\n- matchLabels: {env: prod}\n"}),
             "application/gzip", params=IDENTITY)


# -- authentication and authorisation --------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer"}, {"authorization": "Basic czNjcmV0"},
                                     {"authorization": "s3cret"}])
def test_missing_token_is_401(service: Service, headers: dict[str, str]) -> None:
    service.refused(401, "POST", "/v1/bundles", token=None, headers=headers,
                    json=request_bundle("example"))
    service.refused(401, "POST", "/v1/bundles", token=None, content=tgz({"output/cm.yaml": CM}),
                    params=IDENTITY, headers={**headers, **GZIP})
    service.refused(401, "GET", "/v1/destinations", token=None, headers=headers)


@pytest.mark.parametrize("token", ["wrong", "s3cretX", "S3CRET", "s3cre", "s3cret" + "x" * 1000],
                         ids=lambda value: repr(value[:24]))
def test_wrong_token_is_401(service: Service, token: str) -> None:
    service.refused(401, "POST", "/v1/bundles", token=token, json=request_bundle("example"))
    service.refused(401, "GET", "/v1/promises/elastic-cloud/requests/default/good", token=token)


def test_token_out_of_scope_is_403(service: Service) -> None:
    other = {**request_bundle("example"), "promise": "postgres"}
    service.refused(403, "POST", "/v1/bundles", json=other)
    service.refused(403, "POST", "/v1/bundles", content=tgz({"output/cm.yaml": CM}), headers=GZIP,
                    params={**IDENTITY, "promise": "postgres"})
    service.refused(403, "DELETE", "/v1/promises/postgres/requests/default/example")
    service.refused(403, "DELETE", "/v1/promises/postgres")


def test_destination_management_needs_destinations_true(service: Service) -> None:
    service.refused(403, "PUT", "/v1/destinations/worker-2", json={"labels": {}})
    service.refused(403, "DELETE", "/v1/destinations/worker-1")
    assert service.call("GET", "/v1/destinations").status_code == 200  # reading is any token


OPEN = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
        "/redoc",
        # signed by Flux with the destination's own key instead (test_delivery_status: a bad
        # or missing signature is 401 and changes nothing)
        "/v1/destinations/{name}/events"}


def test_every_route_but_the_open_ones_needs_a_token(service: Service) -> None:
    """Walk every operation the service documents: without a token, each is a 401 before
    anything else is looked at (path parameters filled with names that do exist)."""
    schema = service.client.get("/openapi.json").json()
    walked = 0
    for path, operations in schema["paths"].items():
        if path in OPEN:
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            response = service.client.request(method.upper(), concrete)
            assert response.status_code == 401, (method, path, response.text)
            walked += 1
    assert walked >= 11  # every /v1 operation of docs/reference.md section 6 so far
    git = service.client.get("/git/state.git/info/refs", params={"service": "git-upload-pack"})
    assert git.status_code == 401


def test_api_docs_need_no_internet(service: Service) -> None:
    """/docs and /redoc load their scripts and styles from the service itself."""
    for page in ("/docs", "/redoc"):
        html = service.client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and all(a.startswith("/") for a in assets), (page, assets)
        for asset in assets:
            assert service.client.get(asset).status_code == 200, asset
    assert "https://" not in service.client.get("/docs").text


def test_health_endpoints_are_open_without_a_token(service: Service) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert service.client.get(path).status_code == 200, path


def test_bad_destination_names_are_refused(service: Service) -> None:
    for name in ("..", ".git", "Worker", "a.b", "-x", "x" * 64):
        before = service.tip()
        response = service.call("PUT", f"/v1/destinations/{name}", ADMIN, json={"labels": {}})
        assert 400 <= response.status_code < 500, (name, response.status_code)
        assert service.tip() == before
    for path in ("../x", "/abs", ".statewriter", ".git", "a/../../b", "worker-1/resources"):
        before = service.tip()
        response = service.call("PUT", "/v1/destinations/worker-9", ADMIN, json={"path": path})
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert service.tip() == before


def test_the_service_still_writes_after_everything(service: Service) -> None:
    payload = request_bundle("after", destinationSelectors={"env": "dev"})
    response = service.call("POST", "/v1/bundles", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["changed"] is True


def test_a_real_server_refuses_and_writes_as_the_app_in_process_does(tmp_path: Path) -> None:
    """A smoke test over a real socket (uvicorn and its bounded protocol in front of the
    app): a chunked body over the limit, bad JSON, no token and a foreign promise are
    refused without a write, and the pipeline's token still writes."""
    with running_server(tmp_path / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        service = Service.of(server, PIPELINE)
        try:
            response = service.call("PUT", "/v1/destinations/worker-1", ADMIN,
                                    json={"labels": {"env": "dev"}})
            assert response.status_code == 200, response.text
            post_raw(service, 422, b"{not json")
            service.refused(413, "POST", "/v1/bundles", content=(b" " * 65536 for _ in range(40)),
                            headers={"content-type": "application/json"})
            service.refused(401, "POST", "/v1/bundles", token=None, json=request_bundle("example"))
            service.refused(403, "POST", "/v1/bundles",
                            json={**request_bundle("example"), "promise": "postgres"})
            written = service.call("POST", "/v1/bundles", json=request_bundle("good"))
            assert written.status_code == 200, written.text
            assert written.json()["destinations"] == ["worker-1"]
            assert written.json()["commit"] == service.tip()
        finally:
            service.close()
