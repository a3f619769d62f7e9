"""Validation before commit (docs/reference.md section 11, issue 19) through the REAL service: what the
destination's API server would refuse is a 422 InvalidObject listing every finding (file,
document, object, field, reason) and writes nothing; what it would take is written, with
warnings for what could not be told; a change that takes a CRD away from objects that still
need it is a 409. Each class the audit found is tried, with variations."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.procs import Server, git, running_server
from tests.support import crd, manifest

ADMIN, PIPELINE = "admin-t0ken", "pipeline-t0ken"
CONFIG = f"""
auth:
  tokens:
    - {{name: admin, token: {ADMIN}, promises: ["*"], destinations: true}}
    - {{name: pipeline, token: {PIPELINE}, promises: [shop, certs, crds]}}
"""
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                   "ports": [{"containerPort": 80}]}]}}},
}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
CERTIFICATE = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
               "metadata": {"name": "web"},
               "spec": {"secretName": "web-tls", "dnsNames": ["web.example.com"],
                        "issuerRef": {"name": "letsencrypt"}}}


def dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("validation")
    config = root / "statewriter.yaml"
    config.write_text(CONFIG)
    with running_server(root / "data", config=config, ready_path="/healthz") as server, \
            server.client() as http:
        for name, body in (
            ("declared", {"labels": {"env": "declared"}, "kubernetesVersion": "1.33",
                          "namespaces": ["team-a"]}),
            ("open", {"labels": {"env": "open"}, "apis": ["cert-manager.io"]}),
        ):
            answer = http.put(f"/v1/destinations/{name}", json=body, headers=bearer(ADMIN))
            assert answer.status_code == 200, answer.text
            for key in ("kubernetesVersion", "namespaces", "apis"):
                if key in body:
                    assert answer.json()[key] == body[key]
        yield server


def tip(server: Server) -> str:
    return git(f"--git-dir={server.data / 'state.git'}", "rev-parse", "refs/heads/main").strip()


def post(server: Server, files: dict[str, str], request: str = "default/web",
         env: str = "declared", promise: str = "shop", dry_run: bool = False) -> httpx.Response:
    namespace, _, name = request.partition("/")
    with server.client() as http:
        return http.post("/v1/bundles", params={"dryRun": "true"} if dry_run else None,
                         headers=bearer(PIPELINE), json={
                             "promise": promise, "request": {"namespace": namespace, "name": name},
                             "destinationSelectors": {"env": env}, "files": files})


def refused(server: Server, files: dict[str, str], *fields: str, **where: Any) -> list[dict[str, Any]]:
    """The bundle is a 422 InvalidObject naming each of `fields`, and the branch is as it was."""
    before = tip(server)
    answer = post(server, files, **where)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "InvalidObject"
    findings: list[dict[str, Any]] = body["findings"]
    assert {f["field"] for f in findings} >= set(fields), findings
    for finding in findings:
        assert set(finding) == {"file", "document", "object", "field", "reason"}
    assert tip(server) == before
    return findings


def with_spec(doc: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {**doc, "spec": {**doc["spec"], **spec}}


# -- schemas of built-in kinds -------------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"replicas": "three"}, "spec.replicas"),
    ({"replicas": 3.5}, "spec.replicas"),
    ({"replica": 3}, "spec.replica"),  # misspelt: field not declared in schema
    ({"minReadySeconds": True}, "spec.minReadySeconds"),
    ({"selector": "app=web"}, "spec.selector"),
])
def test_a_deployment_the_api_server_would_refuse(service: Server, change: dict[str, Any],
                                                  field: str) -> None:
    (finding,) = refused(service, {"web.yaml": dump(with_spec(DEPLOYMENT, **change))}, field,
                         request="team-a/web")
    assert finding["object"] == "Deployment.apps team-a/web" and finding["file"] == "web.yaml"


def test_every_finding_of_a_bundle_at_once(service: Server) -> None:
    port = with_spec(SERVICE, ports=[{"port": "eighty"}])
    config_map = manifest("v1", "ConfigMap", "settings", data={"port": 8080})
    findings = refused(service, {
        "a.yaml": dump(with_spec(DEPLOYMENT, replicas="three"), port),
        "b.yaml": dump(with_spec(DEPLOYMENT | {"metadata": {"name": "api"}}, replica=2)),
    }, "spec.replicas", "spec.ports[0].port", "spec.replica", request="team-a/web")
    assert len(findings) == 3 and [f["document"] for f in findings] == [0, 1, 0]
    # the per-document rules refuse first, naming their document
    answer = post(service, {"c.yaml": config_map}, request="team-a/web")
    assert answer.status_code == 422 and answer.json()["file"] == "c.yaml"


def test_what_the_api_server_takes_is_written(service: Server) -> None:
    answer = post(service, {"web.yaml": dump(DEPLOYMENT, SERVICE)}, request="team-a/web")
    assert answer.status_code == 200, answer.text
    assert "warnings" not in answer.json()


# -- kinds and versions ------------------------------------------------------------------------


def test_kinds_the_destination_does_not_serve_are_refused(service: Server) -> None:
    (finding,) = refused(service, {"cert.yaml": dump(CERTIFICATE)}, "apiVersion",
                         request="team-a/certs", promise="certs")
    assert "cert-manager.io" in finding["reason"] and "apis" in finding["reason"]
    # removed from Kubernetes (apps/v1beta1), and core spelled as a group
    old = {**DEPLOYMENT, "apiVersion": "apps/v1beta1", "metadata": {"name": "old"}}
    (finding,) = refused(service, {"old.yaml": dump(old)}, "apiVersion", request="team-a/old")
    assert "1.33" in finding["reason"]


def test_a_destination_that_lists_the_group_serves_it(service: Server) -> None:
    answer = post(service, {"cert.yaml": dump(CERTIFICATE)}, request="default/certs",
                  env="open", promise="certs")
    assert answer.status_code == 200, answer.text


def test_a_crd_in_the_bundle_defines_its_kind_and_its_schema(service: Server) -> None:
    definition = crd("example.com", "Widget")
    good = manifest("example.com/v1", "Widget", "w1", spec={"size": 3})
    answer = post(service, {"crd.yaml": definition, "w.yaml": good}, request="team-a/widgets")
    assert answer.status_code == 200, answer.text
    wrong_version = manifest("example.com/v2", "Widget", "w2")
    (finding,) = refused(service, {"crd.yaml": definition, "w.yaml": wrong_version}, "apiVersion",
                         request="team-a/widgets")
    assert "served: v1" in finding["reason"]


def test_a_crd_the_api_server_would_refuse(service: Server) -> None:
    definition = yaml.safe_load(crd("example.com", "Gadget"))
    definition["spec"]["scope"] = "cluster"
    refused(service, {"crd.yaml": dump(definition)}, "spec.scope", request="team-a/gadgets")
    definition["spec"]["scope"] = "Namespaced"
    definition["spec"]["versions"][0]["storage"] = False
    refused(service, {"crd.yaml": dump(definition)}, "spec.versions", request="team-a/gadgets")


# -- namespaces --------------------------------------------------------------------------------


def test_a_namespace_nothing_creates_is_refused_where_namespaces_are_declared(service: Server) -> None:
    config_map = manifest("v1", "ConfigMap", "settings", "nowhere", data={"a": "b"})
    (finding,) = refused(service, {"cm.yaml": config_map}, "metadata.namespace",
                         request="team-a/nowhere")
    assert "nowhere" in finding["reason"]
    namespace = manifest("v1", "Namespace", "nowhere")
    answer = post(service, {"cm.yaml": config_map, "ns.yaml": namespace}, request="team-a/nowhere")
    assert answer.status_code == 200, answer.text


def test_without_declared_namespaces_it_is_a_warning_in_the_body_and_the_headers(
    service: Server,
) -> None:
    config_map = manifest("v1", "ConfigMap", "settings", "elsewhere", data={"a": "b"})
    for dry_run in (True, False):
        answer = post(service, {"cm.yaml": config_map}, request="default/elsewhere", env="open",
                      dry_run=dry_run)
        assert answer.status_code == 200, answer.text
        (warning,) = answer.json()["warnings"]
        assert "cm.yaml: document 0" in warning and "elsewhere" in warning
        (header,) = answer.headers.get_list("warning")
        assert header.startswith('299 - "') and "elsewhere" in header


# -- changes Kubernetes refuses --------------------------------------------------------------


def test_a_changed_selector_is_refused_unless_flux_may_recreate_it(service: Server) -> None:
    deployment = {**DEPLOYMENT, "metadata": {"name": "selected"}}
    first = post(service, {"web.yaml": dump(deployment)}, request="team-a/selector")
    assert first.status_code == 200, first.text
    changed = yaml.safe_load(dump(with_spec(deployment, selector={
        "matchLabels": {"app": "web", "tier": "front"}})))
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    refused(service, {"web.yaml": dump(changed)}, "spec.selector", request="team-a/selector")
    forced = {**changed, "metadata": {"name": "selected", "annotations": {
        "kustomize.toolkit.fluxcd.io/force": "enabled"}}}
    answer = post(service, {"web.yaml": dump(forced)}, request="team-a/selector")
    assert answer.status_code == 200, answer.text


def test_an_immutable_config_map_keeps_its_data(service: Server) -> None:
    frozen = {**yaml.safe_load(manifest("v1", "ConfigMap", "frozen", data={"a": "1"})),
              "immutable": True}
    assert post(service, {"cm.yaml": dump(frozen)}, request="team-a/frozen").status_code == 200
    refused(service, {"cm.yaml": dump({**frozen, "data": {"a": "2"}})}, "data",
            request="team-a/frozen")
    refused(service, {"cm.yaml": dump({**frozen, "immutable": False})}, "immutable",
            request="team-a/frozen")


# -- what kustomize owns -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["config.kubernetes.io/local-config", "config.kubernetes.io/index",
                                 "internal.config.kubernetes.io/path", "config.k8s.io/id"])
def test_annotations_kustomize_owns_are_refused(service: Server, key: str) -> None:
    config_map = {**yaml.safe_load(manifest("v1", "ConfigMap", "local", data={"a": "b"})),
                  "metadata": {"name": "local", "annotations": {key: "true"}}}
    answer = post(service, {"cm.yaml": dump(config_map)}, request="team-a/local")
    assert answer.status_code == 422 and key in answer.json()["message"], answer.text


# -- the CRD guard ---------------------------------------------------------------------------------


def test_a_crd_other_requests_still_need_cannot_leave(service: Server) -> None:
    definition = crd("guard.example.com", "Guarded")
    one = manifest("guard.example.com/v1", "Guarded", "one")
    two = manifest("guard.example.com/v1", "Guarded", "two")
    assert post(service, {"crd.yaml": definition, "one.yaml": one},
                request="team-a/first", promise="crds").status_code == 200
    assert post(service, {"two.yaml": two}, request="team-a/second",
                promise="crds").status_code == 200
    before = tip(service)
    with service.client() as http:
        deleted = http.delete("/v1/promises/crds/requests/team-a/first", headers=bearer(PIPELINE))
    assert deleted.status_code == 409, deleted.text
    assert "Guarded.guard.example.com team-a/two" in deleted.json()["message"]
    assert tip(service) == before
    without_crd = post(service, {"one.yaml": one}, request="team-a/first", promise="crds")
    assert without_crd.status_code == 409
    with service.client() as http:  # once nothing needs it, it goes
        assert http.delete("/v1/promises/crds/requests/team-a/second",
                           headers=bearer(PIPELINE)).status_code == 200
        assert http.delete("/v1/promises/crds/requests/team-a/first",
                           headers=bearer(PIPELINE)).status_code == 200


# -- statewriter validate -------------------------------------------------------------------------


def _validate(*args: str, token: str | None = PIPELINE) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "STATEWRITER_TOKEN": token or ""}
    return subprocess.run([sys.executable, "-m", "app.cli", "validate", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def _pipeline_dir(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / "output" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "output" / name).write_text(text)
    return root


def test_statewriter_validate_against_a_destination(service: Server, tmp_path: Path) -> None:
    deployment = {**DEPLOYMENT, "metadata": {"name": "checked"}}
    good = _pipeline_dir(tmp_path / "good", {"web.yaml": dump(deployment)})
    bad = _pipeline_dir(tmp_path / "bad", {"web.yaml": dump(with_spec(deployment, replica=2))})
    before = tip(service)
    ok = _validate(str(good), "--url", service.url, "--destination", "declared",
                   "--promise", "shop", "--request", "team-a/checked")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    no = _validate(str(bad), "--url", service.url, "--destination", "declared",
                   "--promise", "shop", "--request", "team-a/checked")
    assert no.returncode == 1
    assert "web.yaml: document 0: Deployment.apps team-a/checked: spec.replica:" in no.stdout
    assert tip(service) == before


def test_statewriter_validate_offline(tmp_path: Path) -> None:
    definition = tmp_path / "crd.yaml"
    definition.write_text(crd("example.com", "Widget"))
    good = _pipeline_dir(tmp_path / "good", {"w.yaml": manifest("example.com/v1", "Widget", "w"),
                                             "web.yaml": dump(DEPLOYMENT)})
    ok = _validate(str(good), "--kubernetes-version", "1.30", "--crds", str(definition), token=None)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    without = _validate(str(good), "--kubernetes-version", "1.30", token=None)
    assert without.returncode == 1 and "Widget.example.com default/w: apiVersion" in without.stdout
    bad = _pipeline_dir(tmp_path / "bad", {"web.yaml": dump(with_spec(DEPLOYMENT, replicas="x"))})
    refused_offline = _validate(str(bad), token=None)
    assert refused_offline.returncode == 1 and "spec.replicas" in refused_offline.stdout
