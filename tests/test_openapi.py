"""The API's own description, /openapi.json, and the pages that show it, /docs and /redoc,
against the real app in this process (tests/conftest.py; auth on), and a real server for
what uvicorn answers before the app: the document validates; each operation has a summary, a
description and the error answers its route can give, with the `Error` body the service
really sends; a client generated from it with openapi-python-client posts the ECK bundle
and reads it back; the pages load nothing from another origin. (That they render with the
network closed is checked in a browser, tests/test_ui.py.)"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urljoin, urlsplit

import jsonschema
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from openapi_spec_validator import validate

from app.http import api, audit, delivery, ops
from app.http.auth import authenticated
from app.web import pages
from tests.conftest import Service
from tests.procs import running_server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "elastic-cloud" / "example"
PIPELINE = "s3cret"
ADMIN = "adm1n"
LIMIT = 65536  # maxBundleBytes and maxHeaderBytes: the ECK bundle is 4 KB
CONFIG = f"""
limits: {{maxBundleBytes: {LIMIT}, maxHeaderBytes: {LIMIT}}}
auth:
  tokens:
    - {{name: pipeline, token: {PIPELINE}, promises: [elastic-cloud]}}
    - {{name: admin, token: {ADMIN}, promises: ["*"], destinations: true}}
"""
PACKAGE = "statewriter_client"
# What openapi-python-client cannot read, told as what it can: a tarball is bytes, YAML text
GENERATOR_CONFIG = {
    "package_name_override": PACKAGE,
    "project_name_override": "statewriter-client",
    "post_hooks": [],
    "content_type_overrides": {"application/gzip": "application/octet-stream",
                               "application/yaml": "text/plain"},
}
ERRORS = {401, 403, 404, 409, 413, 415, 422, 500, 503}
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# Refusals the planner decides (gitops.planner), which the routes cannot show
PLANNED = {
    "post_bundle": {409},  # an object another owner holds differently
    # as post_bundle, against one destination: unknown, objects refused, conflicts
    "validate_bundle": {404, 409, 422},
    "put_destination": {409},  # a path overlapping another destination's
    "delete_destination": {404, 409},  # unknown; requests still scheduled there
    "delete_request": {404},  # the request owns nothing
    "delete_promise": {404},
    # the request had no output at the commit; refused as a post of its output would be
    "rollback_request": {404, 409, 422},
    "get_commits": {422},  # its filters and cursor, parsed by gitops.audit
    "get_requests": {422},  # its filters and cursor, parsed by gitops.reads.listing
    # signed by the destination's key (not a token); unknown destination, events not set up
    "post_events": {401, 404},
}
# Query parameters no value can make invalid
PLAIN = (str, str | None, list[str])


@pytest.fixture(scope="module")
def service_config() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def service_token() -> str:
    return ADMIN


@pytest.fixture(scope="module")
def service(module_in_process_service: Service) -> Service:
    """The service, in this process (tests/conftest.py)."""
    return module_in_process_service


@pytest.fixture(scope="module")
def spec(service: Service) -> dict[str, Any]:
    response = service.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


# -- the document ---------------------------------------------------------------------------


def test_the_document_validates(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_every_operation_has_a_summary_a_description_and_a_tag(spec: dict[str, Any]) -> None:
    for path, method, operation in operations(spec):
        assert operation.get("summary", "").strip(), (method, path)
        assert operation.get("description", "").strip(), (method, path)
        assert operation.get("tags", []) in [[tag["name"]] for tag in spec["tags"]], (method, path)


def routes() -> dict[str, Any]:
    """Every route of the service's routers, in the document or not, by its name (the
    operation id), as included: its router's dependencies in its `dependant`."""
    app = FastAPI()
    for module in (ops, api, audit, pages, delivery):
        app.include_router(module.router)
    app.include_router(delivery.events_router)
    found = {route.name: route for route in iter_route_contexts(app.routes)
             if isinstance(route.original_route, APIRoute)}
    assert len(found) >= 20, sorted(found)
    return found


def expected_errors(route: Any) -> set[int]:
    """The error answers a route can give, read from the route itself: its dependencies, its
    parameters and what its function calls; PLANNED adds what the planner decides."""
    code = inspect.unwrap(route.endpoint).__code__.co_names
    calls = [dependency.call for dependency in route.dependant.dependencies]
    errors = set(PLANNED.get(route.name, set()))
    if authenticated in calls:
        errors.add(401)
    if any(d.call is authenticated and d.name for d in route.dependant.dependencies):
        errors.add(403)  # the function takes the caller: it checks what the token may do
    if "read_body" in code:
        errors |= {413, 422}
    if "require_json" in code:
        errors.add(415)
    if "_read_bundle" in code:  # a bundle's body: read_body and require_json in one
        errors |= {413, 415, 422}
    if "snapshot" in code or "_run" in code:
        errors.add(503)  # it reads the store, or writes through the writer lane
    if "_run" in code:
        errors.add(500)  # the lane's answer to an unexpected error of this request alone
    if "NotFound" in code or "_destination" in code:
        errors.add(404)
    if any(f.field_info.annotation not in PLAIN or f.field_info.metadata
           for f in route.dependant.query_params):
        errors.add(422)
    return errors


def test_each_operation_lists_the_errors_its_route_can_answer(spec: dict[str, Any]) -> None:
    known = routes()
    documented = {operation["operationId"]: (path, method, operation)
                  for path, method, operation in operations(spec)}
    in_schema = {name for name, route in known.items() if route.include_in_schema}
    assert set(documented) == in_schema
    for name, (path, method, operation) in documented.items():
        answers = {int(code): answer for code, answer in operation["responses"].items()}
        refusals = {code for code, answer in answers.items() if answer.get("content") == ERROR}
        assert refusals == expected_errors(known[name]), (method, path)
        for code in set(answers) - refusals:  # /readyz: 503 is an answer with its own body
            assert 200 <= code < 300 or "$ref" in answers[code]["content"]["application/json"][
                "schema"], (method, path, code)
        if name == "post_events":  # Flux signs it with the destination's key: no token
            assert operation.get("security") == [{"fluxHmac": []}]
            continue
        needs_token = 401 in answers
        assert operation.get("security") == ([{"bearer": []}] if needs_token else None), name


def test_bearer_and_basic_schemes(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == schemes["basic"]["type"] == "http"
    assert (schemes["bearer"]["scheme"], schemes["basic"]["scheme"]) == ("bearer", "basic")


def test_what_is_not_an_api_is_left_out(spec: dict[str, Any]) -> None:
    assert not [path for path in spec["paths"] if path.startswith(("/git", "/ui"))]
    assert all(not route.include_in_schema for route in routes().values()
               if route.path_format.startswith("/ui"))


def test_the_eck_bundle_is_the_request_example(spec: dict[str, Any]) -> None:
    """The example is the walkthrough's `statewriter push examples/elastic-cloud/example`."""
    content = spec["paths"]["/v1/bundles"]["post"]["requestBody"]["content"]
    example = content["application/json"]["examples"]["eck"]["value"]
    files = {path.name: path.read_text() for path in (EXAMPLE / "output").iterdir()}
    assert example["files"] == files
    selectors = yaml.safe_load((EXAMPLE / "metadata" / "destination-selectors.yaml").read_text())
    assert example["destinationSelectors"] == selectors[0]["matchLabels"]
    jsonschema.validate(example, content["application/json"]["schema"])
    assert set(content) == {"application/json", "application/gzip"}


# -- what the service really answers ----------------------------------------------------------


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A schema of the document, its references resolved within the document."""
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def error_validator(spec: dict[str, Any]) -> jsonschema.protocols.Validator:
    return validator(spec, ERROR["application/json"]["schema"])


def clashing(promise: str, name: str) -> dict[str, Any]:
    """A bundle whose ConfigMap differs from the other promise's of the same name."""
    config_map = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shared}\n"
                  f"data: {{owner: {promise}}}\n")
    return {"promise": promise, "request": {"namespace": "default", "name": name},
            "destinationSelectors": {"env": "qa"}, "files": {"settings.yaml": config_map}}


def test_refusals_have_the_documented_body_and_status(service: Service, spec: dict[str, Any]) -> None:
    alpha = {"path": "shared", "labels": {"env": "qa"}}
    assert service.call("PUT", "/v1/destinations/alpha", json=alpha).status_code == 200
    first = service.call("POST", "/v1/bundles", ADMIN, json=clashing("observability", "first"))
    assert first.status_code == 200, first.text
    oversized = {"promise": "elastic-cloud", "files": {"big.yaml": "x" * LIMIT}}
    refusals = [  # (operation, method, path, token, request)
        ("list_destinations", "GET", "/v1/destinations", None, {}),
        ("list_destinations", "GET", "/v1/destinations", "wrong", {}),
        ("put_destination", "PUT", "/v1/destinations/beta", PIPELINE, {"json": {}}),
        ("get_destination", "GET", "/v1/destinations/nowhere", PIPELINE, {}),
        ("get_request", "GET", "/v1/promises/elastic-cloud/requests/default/none", PIPELINE, {}),
        ("put_destination", "PUT", "/v1/destinations/beta", ADMIN, {"json": {"path": "shared"}}),
        ("post_bundle", "POST", "/v1/bundles", PIPELINE, {"json": clashing("elastic-cloud", "second")}),
        ("put_destination", "PUT", "/v1/destinations/beta", ADMIN, {"json": {"colour": "red"}}),
        ("post_bundle", "POST", "/v1/bundles", PIPELINE, {"json": oversized}),
        ("post_bundle", "POST", "/v1/bundles", PIPELINE,
         {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        ("post_bundle", "POST", "/v1/bundles", PIPELINE,
         {"json": {"promise": "elastic-cloud", "files": {"a.yaml": "kind: [\n"}}}),
        ("post_bundle", "POST", "/v1/bundles?dryRun=maybe", PIPELINE, {"json": {}}),
        ("post_bundle", "POST", "/v1/bundles", PIPELINE, {"json": {"promise": "other", "files": {}}}),
        ("get_flux", "GET", "/v1/destinations/alpha/flux?prefix=Not_A_Name", PIPELINE, {}),
        ("get_commits", "GET", "/v1/history?limit=0", PIPELINE, {}),
        ("delete_destination", "DELETE", "/v1/destinations/nowhere", ADMIN, {}),
    ]
    documented = {operation["operationId"]: operation for _, _, operation in operations(spec)}
    validator = error_validator(spec)
    seen, fields = set(), set()
    for name, method, path, token, request in refusals:
        response = service.call(method, path, token, **request)
        where = (method, path, response.status_code, response.text[:300])
        assert str(response.status_code) in documented[name]["responses"], where
        assert response.headers["content-type"] == "application/json", where
        validator.validate(response.json())
        seen.add(response.status_code)
        fields |= set(response.json())
    assert seen == ERRORS - {500, 503}  # neither can be caused from outside on purpose
    assert {"file", "document", "field", "object", "owners"} <= fields  # the typed details


def test_answers_have_the_documented_bodies(service: Service, spec: dict[str, Any]) -> None:
    """A request's life, each answer checked against what its operation documents."""
    request = "/v1/promises/elastic-cloud/requests/default/walk"
    bundle = {"promise": "elastic-cloud", "request": {"namespace": "default", "name": "walk"},
              "destinationSelectors": {"env": "stage"},
              "files": {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: walk}\n"}}
    steps = [  # (path as documented, method, concrete path, token, request, status)
        ("/v1/bundles", "post", "/v1/bundles", PIPELINE, {"json": bundle}, 202),
        ("/v1/destinations/{name}", "put", "/v1/destinations/delta", ADMIN,
         {"json": {"labels": {"env": "stage"}}}, 200),
        ("/v1/bundles", "post", "/v1/bundles?dryRun=true", PIPELINE, {"json": bundle}, 200),
        ("/v1/destinations", "get", "/v1/destinations", PIPELINE, {}, 200),
        ("/v1/destinations/{name}", "get", "/v1/destinations/delta", PIPELINE, {}, 200),
        ("/v1/promises/{promise}/requests/{namespace}/{name}", "get", request, PIPELINE, {}, 200),
        ("/v1/promises/{promise}/requests/{namespace}/{name}/history", "get", f"{request}/history",
         PIPELINE, {}, 200),
        ("/v1/history", "get", "/v1/history?destination=delta&limit=1", PIPELINE, {}, 200),
        ("/v1/promises/{promise}/requests/{namespace}/{name}", "delete", request, PIPELINE, {}, 200),
        ("/v1/destinations/{name}", "delete", "/v1/destinations/delta", ADMIN, {}, 200),
        ("/healthz", "get", "/healthz", None, {}, 200),
        ("/readyz", "get", "/readyz", None, {}, 200),
    ]
    for path, method, concrete, token, kwargs, status in steps:
        response = service.call(method.upper(), concrete, token, **kwargs)
        assert response.status_code == status, (method, concrete, response.text)
        answer = spec["paths"][path][method]["responses"][str(status)]
        validator(spec, answer["content"]["application/json"]["schema"]).validate(response.json())


def test_a_rollback_answers_its_documented_body(service: Service, spec: dict[str, Any]) -> None:
    """Written, then unchanged, then a dry run; and its refusals with the `Error` body."""
    assert service.call("PUT", "/v1/destinations/epsilon", ADMIN,
                        json={"labels": {"env": "rollback"}}).status_code == 200

    def bundle(value: str) -> dict[str, Any]:
        text = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: back}}\ndata: {{v: '{value}'}}\n"
        return {"promise": "elastic-cloud", "request": {"namespace": "default", "name": "back"},
                "destinationSelectors": {"env": "rollback"}, "files": {"cm.yaml": text}}

    first = service.call("POST", "/v1/bundles", PIPELINE, json=bundle("1"))
    assert first.status_code == 200, first.text
    assert service.call("POST", "/v1/bundles", PIPELINE, json=bundle("2")).status_code == 200
    path = "/v1/promises/{promise}/requests/{namespace}/{name}/rollback"
    concrete = "/v1/promises/elastic-cloud/requests/default/back/rollback"
    answers = spec["paths"][path]["post"]["responses"]
    body = {"commit": first.json()["commit"][:10]}
    for query, changed in (("?dryRun=true", True), ("", True), ("", False)):
        response = service.call("POST", concrete + query, PIPELINE, json=body)
        assert response.status_code == 200, response.text
        validator(spec, answers["200"]["content"]["application/json"]["schema"]).validate(
            response.json())
        assert response.json()["changed"] is changed
        assert response.json()["rolledBackTo"] == first.json()["commit"]
    for token, request, status in (
            ("wrong", body, 401),
            (PIPELINE, body, 403),  # a promise the token may not write
            (PIPELINE, {"commit": "zz"}, 422),
            (PIPELINE, {"commit": "abc", "extra": 1}, 422)):
        where = concrete if status != 403 else concrete.replace("elastic-cloud", "postgres")
        response = service.call("POST", where, token, json=request)
        assert response.status_code == status, response.text
        assert str(status) in answers
        error_validator(spec).validate(response.json())


def test_a_head_over_the_limit_has_the_error_body(tmp_path: Path, spec: dict[str, Any]) -> None:
    """Refused before any operation (the document's description says so), with the same body:
    by the real server's protocol (app.http.server), in front of the app."""
    with running_server(tmp_path / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        service = Service.of(server, ADMIN)
        try:
            response = service.call("GET", "/v1/destinations", headers={"x-padding": "x" * 2 * LIMIT})
        finally:
            service.close()
    assert response.status_code == 413
    error_validator(spec).validate(response.json())
    assert "413" in spec["info"]["description"]


def test_media_types_are_the_documented_ones(service: Service, spec: dict[str, Any]) -> None:
    assert service.call("PUT", "/v1/destinations/gamma", json={}).status_code == 200
    for path, token in (("/metrics", None), ("/v1/destinations/{name}/flux", PIPELINE)):
        response = service.call("GET", path.format(name="gamma"), token)
        assert response.status_code == 200, response.text
        documented = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert list(documented) == [response.headers["content-type"]]
    flux = spec["paths"]["/v1/destinations/{name}/flux"]["get"]["responses"]["200"]["content"]
    assert list(flux) == ["application/yaml"]
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert next(iter(metrics)).startswith("text/plain; version=")


# -- a generated client -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_package(spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package openapi-python-client generates from the served document, importable."""
    folder = tmp_path_factory.mktemp("generated")
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "config.json").write_text(json.dumps(GENERATOR_CONFIG))
    generator = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run([str(generator), "generate", "--path", "spec.json", "--output-path", "client",
                           "--config", "config.json"], cwd=folder, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder / "client"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder / "client"))
        for module in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[module]


def generated(operation: str) -> Any:
    """The generated module of an operation (`api/<its tag>/<its id>.py`)."""
    package = Path(importlib.import_module(PACKAGE).__file__ or "").parent
    [module] = (package / "api").glob(f"*/{operation}.py")
    return importlib.import_module(f"{PACKAGE}.api.{module.parent.name}.{operation}")


def test_a_generated_client_posts_the_eck_bundle_and_reads_it_back(
        client_package: ModuleType, service: Service, spec: dict[str, Any]) -> None:
    reach = {"transport": service.transport}  # the service in this process
    admin = client_package.AuthenticatedClient(base_url=service.url, token=ADMIN, httpx_args=reach)
    pipeline = client_package.AuthenticatedClient(base_url=service.url, token=PIPELINE,
                                                  httpx_args=reach)
    put_destination = generated("put_destination")
    models = client_package.models
    body = models.PutDestinationBody.from_dict({"labels": {"environment": "dev"}})
    saved = put_destination.sync_detailed("worker-1", client=admin, body=body)
    assert saved.status_code == 200, saved.content
    assert saved.parsed.name == "worker-1"

    example = spec["paths"]["/v1/bundles"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]["eck"]["value"]
    bundle = models.PostBundleJsonBody.from_dict(example)  # JSON, one of the bodies it takes
    posted = generated("post_bundle").sync_detailed(client=pipeline, body=bundle)
    assert posted.status_code == 200, posted.content
    answer = posted.parsed
    assert (answer.state, answer.destinations, answer.changed) == ("Scheduled", ["worker-1"], True)
    assert answer.commit

    state = generated("get_request").sync(
        "elastic-cloud", "default", "example", client=pipeline)
    assert (state.commit, state.destinations) == (answer.commit, ["worker-1"])
    placed = {held.object_: held.placement for pipe in state.pipelines for held in pipe.objects}
    assert placed["Kibana.kibana.k8s.elastic.co default/example"] == "resources", placed
    crd = "CustomResourceDefinition.apiextensions.k8s.io kibanas.kibana.k8s.elastic.co"
    assert placed[crd] == "dependencies", placed

    history = generated("get_history").sync(
        "elastic-cloud", "default", "example", client=pipeline)
    assert [commit.sha for commit in history.commits] == [answer.commit]
    flux = generated("get_flux").sync("worker-1", client=pipeline)
    assert "worker-1" in flux

    missing = generated("get_destination").sync_detailed("nowhere", client=pipeline)
    assert missing.status_code == 404
    assert missing.parsed.error == "NotFound"
    anonymous = client_package.Client(base_url=service.url, httpx_args=reach)
    refused = generated("list_destinations").sync_detailed(client=anonymous)
    assert (refused.status_code, refused.parsed.error) == (401, "Unauthorized")


# -- the pages ----------------------------------------------------------------------------------


class References(HTMLParser):
    """Every URL a page's HTML names: src, href, and ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs
                      if name in {"src", "href", "spec-url"} and value is not None]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_name_only_assets_of_the_service(service: Service, page: str) -> None:
    response = service.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = References()
    parser.feed(response.text)
    assert len(parser.urls) >= 2, parser.urls  # a script, and a style or the document
    origin = urlsplit(service.url)
    inline = re.findall(r"""\b(?:https?:)?//[^\s'"<>)]+""", response.text)  # in scripts too
    for url in parser.urls + inline:
        absolute = urlsplit(urljoin(service.url + page, url))
        assert (absolute.scheme, absolute.netloc) == (origin.scheme, origin.netloc), url
        assert service.client.get(absolute.geturl()).status_code == 200, url
