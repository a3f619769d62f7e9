"""The seed scenario end to end: real uvicorn server, real git over HTTP, real kustomize."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gitops import layout
from gitops.owner import Owner
from gitops.verify import verify_path
from tests.fixtures.eck import CRD_NAMES, request_bundle
from tests.procs import ROOT, running_server


def _statewriter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def test_seed_scenario_over_http(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", ready_path="/healthz") as server, server.client(30) as http:
        put = http.put("/v1/destinations/worker-cluster-1", json={"labels": {"env": "dev"}})
        assert put.status_code == 200, put.text
        for name in ("example", "second-request"):
            answer = http.post("/v1/bundles", json=request_bundle(name))
            assert answer.status_code == 200, answer.text
            assert answer.json()["destinations"] == ["worker-cluster-1"]
            assert answer.json()["changed"] is True
        again = http.post("/v1/bundles", json=request_bundle("example"),
                          headers={"X-Request-ID": "pipeline-run-42"})
        assert again.status_code == 200 and again.json()["changed"] is False
        assert again.headers["X-Request-ID"] == "pipeline-run-42"  # the client's own
        generated = http.get("/v1/destinations").headers["X-Request-ID"]
        assert generated and generated != "pipeline-run-42"
        state = http.get("/v1/promises/elastic-cloud/requests/default/second-request").json()
        assert state["state"] == "Scheduled" and state["commit"] == again.json()["commit"]

        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", f"{server.url}/git/state.git", str(clone)], check=True)
        deps = clone / "worker-cluster-1" / "dependencies"
        crd_files = sorted(p.name for p in (deps / "_cluster").glob("*/CustomResourceDefinition*"))
        assert len(crd_files) == len(CRD_NAMES)
        assert (deps / "elastic-system" / "apps" / "StatefulSet.apps_elastic-operator.yaml").is_file()
        for name in ("example", "second-request"):
            folder = clone / "worker-cluster-1/resources" / layout.owner_folder(
                Owner("elastic-cloud", "default", name, "default"))
            assert {p.name.split("_")[1] for p in folder.glob("default_*.yaml")} == {
                "Beat.beat.k8s.elastic.co", "Elasticsearch.elasticsearch.k8s.elastic.co",
                "Kibana.kibana.k8s.elastic.co",
            }
        assert verify_path(clone) == []
        verified = _statewriter("verify", f"{server.url}/git/state.git")
        assert verified.returncode == 0, verified.stdout + verified.stderr

        history = http.get("/v1/promises/elastic-cloud/requests/default/example/history").json()
        assert [c["action"] for c in history["commits"]] == ["apply"]
        assert any("Elasticsearch" in f for f in history["commits"][0]["files"]["added"])

        deleted = http.delete("/v1/promises/elastic-cloud/requests/default/example")
        assert deleted.status_code == 200, deleted.text
        subprocess.run(["git", "-C", str(clone), "pull", "-q"], check=True)
        assert len(list((deps / "_cluster").glob("*/CustomResourceDefinition*"))) == len(CRD_NAMES)
        assert verify_path(clone) == []
        assert http.delete("/v1/promises/elastic-cloud/requests/default/example").status_code == 404

    log = _statewriter("history", "elastic-cloud", "default/example", "--repo",
                       str(tmp_path / "data" / "state.git"))
    assert log.returncode == 0 and "delete" in log.stdout and "apply" in log.stdout


def test_flux_manifests_name_both_kustomizations(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", ready_path="/healthz") as server, server.client(30) as http:
        http.put("/v1/destinations/worker-1", json={"labels": {}, "path": "clusters/worker-1"})
        text = http.get("/v1/destinations/worker-1/flux").text
        assert "name: kratix-workload-dependencies" in text
        assert "name: kratix-workload-resources" in text
        assert "path: ./clusters/worker-1/resources" in text and "wait: true" in text
        assert f"url: {server.url}/git/state.git" in text
        # never a URL taken from the request: a client cannot make workers fetch elsewhere
        spoofed = http.get("/v1/destinations/worker-1/flux", headers={"Host": "evil.example"})
        assert "evil.example" not in spoofed.text and f"url: {server.url}/git/state.git" in spoofed.text
