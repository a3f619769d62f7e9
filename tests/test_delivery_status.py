"""Delivery status (docs/reference.md section 12; issue 21) through the REAL service: Flux's events,
shaped as notification-controller's generic-hmac Provider sends them (tests/flux.py),
signed with the destination's key from `/flux` and forged, in and out of order, for both
isolation modes; a request's delivery in its GET, in the listing, across a restart; the
Provider and Alert validated against Flux's own CRDs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.validate.crds import custom_kind
from gitops.validate.objects import Target, check_object
from tests.flux import Flux
from tests.procs import Server, git, running_server, statewriter_command
from tests.support import CORPUS, config_map, deployment, payload

KEY = "delivery-s3cret-for-tests"
CONFIG = "delivery:\n  hmacTokenFile: {key}\n"
FAST = {"gitops.writer.Writer": {"max_staleness": 0.2},
        "gitops.delivery.book.DeliveryBook": {"max_staleness": 0.2}}
WIDE, ISO = "wide", "iso"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("delivery")
    (root / "key").write_text(KEY + "\n")
    with running_server(root / "data", config_yaml=CONFIG.format(key=root / "key"),
                        keywords=FAST) as server, server.client() as http:
        for name, fields in ((WIDE, {}), (ISO, {"isolation": "namespace"})):
            answer = http.put(f"/v1/destinations/{name}", json={"labels": {"env": name}, **fields})
            assert answer.status_code == 200, answer.text
        yield server


# -- what Flux sends ----------------------------------------------------------------------------


def post(server: Server, env: str, ref: str, files: dict[str, str]) -> str:
    with server.client() as http:
        answer = http.post("/v1/bundles", json=payload("shop", ref, files, selectors={"env": env}))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["commit"] or server.tip())


def delivery(server: Server, ref: str) -> dict[str, Any]:
    namespace, _, name = ref.partition("/")
    with server.client() as http:
        answer = http.get(f"/v1/promises/shop/requests/{namespace}/{name}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["delivery"]
    return found


def state(server: Server, ref: str) -> str:
    return str(delivery(server, ref)["state"])


# -- the Flux objects ---------------------------------------------------------------------------


def test_flux_renders_a_provider_its_secret_and_an_alert_that_flux_takes(service: Server) -> None:
    flux = Flux(service, WIDE)
    assert flux.address.endswith(f"/v1/destinations/{WIDE}/events")
    alert = flux.docs[("Alert", "kratix-workload-delivery")]
    assert alert["spec"]["eventSeverity"] == "info"
    assert alert["spec"]["eventSources"] == [{
        "kind": "Kustomization", "name": "*", "namespace": "flux-system",
        "matchLabels": {"statewriter.dev/destination": WIDE}}]
    for section in ("dependencies", "resources"):  # what the Alert selects
        labels = flux.docs[("Kustomization", f"kratix-workload-{section}")]["metadata"]["labels"]
        assert labels == {"statewriter.dev/destination": WIDE}
    crds = {d["spec"]["names"]["kind"]: d for d in yaml.safe_load_all(
        (CORPUS / "flux-install.yaml").read_text()) if d and d["kind"] == "CustomResourceDefinition"}
    kinds = {kind: custom_kind(crd, "1.33") for kind, crd in crds.items()}
    target = Target(WIDE, "1.33", frozenset(), None, "flux-system",
                    lambda g, k: kinds.get(k), lambda _: True)
    for doc in flux.docs.values():
        assert [f for f in check_object(doc, target) if not f.warning] == [], doc["kind"]
    assert Flux(service, ISO).token != flux.token  # each destination its own key


# -- signatures ---------------------------------------------------------------------------------


def test_a_forged_or_foreign_signature_is_401_and_changes_nothing(service: Server) -> None:
    commit = post(service, WIDE, "team-f/forged", {"a.yaml": config_map("forged", "team-f")})
    wide, iso = Flux(service, WIDE), Flux(service, ISO)
    delivery_tip = service.tip("statewriter-delivery")
    event = wide.event("kratix-workload-resources", commit)
    for answer in (wide.send(event, token="not-the-key"),   # a guess
                   wide.send(event, token=iso.token),       # another worker's key
                   wide.send(event, signature=""),          # none
                   wide.send(event, signature="md5=00"),    # not a hash Flux uses
                   wide.send(event, signature="sha256=zz")):
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "Unauthorized"
    assert service.tip("statewriter-delivery") == delivery_tip
    assert state(service, "team-f/forged") == "Pending"
    with service.client() as http:
        assert http.post("/v1/destinations/nowhere/events", content=b"{}").status_code == 404
        assert http.post(f"/v1/destinations/{WIDE}/events", content=b"x" * (300 << 10),
                         headers={"X-Signature": "sha256=00"}).status_code == 413


def test_a_signed_event_that_is_not_one_is_422(service: Server) -> None:
    flux = Flux(service, WIDE)
    bodies: tuple[Any, ...] = ({"involvedObject": "x"}, {"nothing": 1}, [])
    for body in bodies:
        answer = flux.send(body)
        assert answer.status_code == 422, answer.text
    # a GitRepository's event is not a Kustomization's: nothing to record
    event = flux.event("kratix-workload", "0" * 40)
    event["involvedObject"]["kind"] = "GitRepository"
    assert flux.send(event).json() == {"recorded": False, "reason": "not a Kustomization's event"}


# -- states -------------------------------------------------------------------------------------


def test_pending_then_applied_when_every_kustomization_applied_its_commit(service: Server) -> None:
    flux = Flux(service, WIDE)
    main_tip = service.tip()
    commit = post(service, WIDE, "team-a/one", {"a.yaml": config_map("one", "team-a")})
    found = delivery(service, "team-a/one")
    assert found["state"] == "Pending"
    (wide,) = found["destinations"]
    assert (wide["destination"], wide["commit"], wide["state"]) == (WIDE, commit, "Pending")
    assert wide["kustomization"] == "kratix-workload-resources" and not wide["overdue"]
    flux.applied("kratix-workload-resources", commit, old_style=True)  # Flux before 2.0
    assert state(service, "team-a/one") == "Applied"
    assert service.tip() != main_tip  # the request's commit; events never commit on main
    tip = service.tip()
    flux.applied("kratix-workload-resources", commit)  # again: a replay changes nothing
    assert service.tip() == tip


def test_a_failure_names_its_object_and_a_later_success_applies(service: Server) -> None:
    flux = Flux(service, WIDE)
    first = post(service, WIDE, "team-b/web", {"d.yaml": deployment("web", "team-b")})
    flux.applied("kratix-workload-resources", first)
    assert state(service, "team-b/web") == "Applied"
    second = post(service, WIDE, "team-b/web", {"d.yaml": deployment("web", "team-b", "nginx:1.28")})
    message = ('Deployment/team-b/web dry-run failed (Invalid): Deployment.apps "web" is '
               "invalid: spec.template.spec.containers[0].image: Required value\n")
    flux.failed("kratix-workload-resources", second, message)
    found = delivery(service, "team-b/web")["destinations"][0]
    assert (found["state"], found["reason"], found["object"]) == (
        "Failed", "ReconciliationFailed", "Deployment/team-b/web")
    assert found["message"] == message and found["commit"] == second
    # an older revision's success, sent late, does not move it back
    flux.applied("kratix-workload-resources", first, at=datetime.now(UTC) + timedelta(seconds=5))
    assert state(service, "team-b/web") == "Failed"
    flux.applied("kratix-workload-resources", second)
    assert state(service, "team-b/web") == "Applied"
    # ... nor does the failure of the revision it replaced, replayed
    flux.failed("kratix-workload-resources", second, message,
                at=datetime.now(UTC) - timedelta(minutes=5))
    assert state(service, "team-b/web") == "Applied"


def test_a_request_stays_applied_when_a_later_revision_that_did_not_change_it_fails(
        service: Server) -> None:
    flux = Flux(service, WIDE)
    mine = post(service, WIDE, "team-c/mine", {"a.yaml": config_map("mine", "team-c")})
    flux.applied("kratix-workload-resources", mine)
    other = post(service, WIDE, "team-c/other", {"a.yaml": config_map("other", "team-c")})
    flux.failed("kratix-workload-resources", other, "ConfigMap/team-c/other dry-run failed")
    assert state(service, "team-c/mine") == "Applied"
    assert state(service, "team-c/other") == "Failed"


def test_isolated_namespaces_are_reported_by_their_own_kustomizations(service: Server) -> None:
    flux = Flux(service, ISO)
    a = post(service, ISO, "team-a/iso", {"a.yaml": config_map("iso", "team-a")})
    b = post(service, ISO, "team-b/iso", {"a.yaml": config_map("iso", "team-b")})
    assert delivery(service, "team-a/iso")["destinations"][0]["kustomization"] == \
        "kratix-workload-ns-team-a"
    flux.failed("kratix-workload-ns-team-b", b, "ConfigMap/team-b/iso: admission webhook denied")
    assert state(service, "team-b/iso") == "Failed"
    assert state(service, "team-a/iso") == "Pending"  # another namespace's failure is not its own
    flux.applied("kratix-workload-ns-team-a", b)  # a newer revision holds its commit too
    assert a != b and state(service, "team-a/iso") == "Applied"


def test_a_request_holding_dependencies_waits_for_the_dependencies_kustomization(
        service: Server) -> None:
    flux = Flux(service, WIDE)
    files = {"ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-system\n",
             "a.yaml": config_map("app", "team-d")}
    commit = post(service, WIDE, "team-d/deps", files)
    flux.applied("kratix-workload-resources", commit)
    found = delivery(service, "team-d/deps")["destinations"][0]
    assert (found["state"], found["kustomization"]) == ("Pending", "kratix-workload-dependencies")
    flux.applied("kratix-workload-dependencies", commit)
    assert state(service, "team-d/deps") == "Applied"


def test_the_state_is_on_its_own_branch_and_survives_a_restart(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(KEY)
    config = CONFIG.format(key=key)
    with running_server(tmp_path / "data", config_yaml=config, keywords=FAST) as server, \
            server.client() as http:
        http.put(f"/v1/destinations/{WIDE}", json={"labels": {"env": WIDE}})
        flux = Flux(server, WIDE)
        commit = post(server, WIDE, "team-e/kept", {"a.yaml": config_map("kept", "team-e")})
        main_tip = server.tip()
        flux.applied("kratix-workload-resources", commit)
        assert server.tip() == main_tip  # Flux follows main: reports never commit there
        repo = server.data / "state.git"
        record = json.loads(git(f"--git-dir={repo}", "show", f"statewriter-delivery:{WIDE}.json"))
        (reported,) = record["kustomizations"]
        assert (reported["name"], reported["applied"]["revision"]) == (
            "kratix-workload-resources", commit)
    # a fresh service on the same data folder reads it back (git is the only database)
    with running_server(tmp_path / "data", config_yaml=config, keywords=FAST) as again:
        assert state(again, "team-e/kept") == "Applied"


# -- the listing --------------------------------------------------------------------------------


def test_the_listing_pages_and_filters_by_delivery(service: Server) -> None:
    flux = Flux(service, WIDE)
    commits = {name: post(service, WIDE, f"team-l/{name}", {"a.yaml": config_map(name, "team-l")})
               for name in ("l1", "l2", "l3")}
    flux.applied("kratix-workload-resources", commits["l2"])  # holds l1 and l2
    flux.failed("kratix-workload-resources", commits["l3"], "ConfigMap/team-l/l3 refused")
    with service.client() as http:
        everything = http.get("/v1/promises/shop/requests", params={"namespace": "team-l"}).json()
        assert [(r["request"], r["delivery"]["state"]) for r in everything["requests"]] == [
            ("team-l/l1", "Applied"), ("team-l/l2", "Applied"), ("team-l/l3", "Failed")]
        assert everything["next"] is None
        failed = http.get("/v1/promises/shop/requests",
                          params={"namespace": "team-l", "state": "Failed"}).json()
        assert [r["request"] for r in failed["requests"]] == ["team-l/l3"]
        seen, cursor = [], None
        while True:
            page = http.get("/v1/promises/shop/requests", params={
                "namespace": "team-l", "limit": "1", **({"cursor": cursor} if cursor else {})}).json()
            seen += [r["request"] for r in page["requests"]]
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == ["team-l/l1", "team-l/l2", "team-l/l3"]
        for params, field in (({"state": "Done"}, "state"), ({"limit": "0"}, "limit"),
                              ({"cursor": "!!"}, "cursor"), ({"namespace": "Team"}, "namespace")):
            refused = http.get("/v1/promises/shop/requests", params=params)
            assert refused.status_code == 422 and refused.json()["field"] == field, params
        assert http.get("/v1/promises/none/requests").json()["requests"] == []


def test_without_delivery_configured_every_request_is_unknown(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server, server.client() as http:
        http.put("/v1/destinations/w", json={"labels": {"env": "w"}})
        post(server, "w", "team-a/x", {"a.yaml": config_map("x", "team-a")})
        assert state(server, "team-a/x") == "Unknown"
        assert http.post("/v1/destinations/w/events", content=b"{}").status_code == 404
        kinds = {d["kind"] for d in yaml.safe_load_all(http.get("/v1/destinations/w/flux").text)}
        assert "Provider" not in kinds and "Alert" not in kinds


# -- statewriter push --wait ----------------------------------------------------------------------

QUICK_POLLS = {"app.cli.wait.POLL_FIRST": 0.05, "app.cli.wait.POLL_MAX": 0.2}


def pipeline_dir(root: Path, name: str, namespace: str, image: str) -> Path:
    folder = root / name
    (folder / "output").mkdir(parents=True)
    (folder / "output" / "web.yaml").write_text(deployment(name, namespace, image))
    (folder / "metadata").mkdir()
    (folder / "metadata" / "destination-selectors.yaml").write_text(
        yaml.safe_dump([{"matchLabels": {"env": WIDE}}]))
    return folder


def push_waiting(server: Server, folder: Path, ref: str, timeout: float = 60) -> subprocess.Popen[str]:
    command = [*statewriter_command(settings=QUICK_POLLS), "push", str(folder), "--url",
               server.url, "--promise", "shop", "--request", ref, "--wait", "--timeout",
               str(timeout)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pushed_commit(proc: subprocess.Popen[str]) -> str:
    """The commit the push's answer names (read from its output as it prints it)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().startswith("commit:"):
            return line.split(":", 1)[1].strip()
    errors = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"no commit in the push's answer (exit {proc.wait()}): {errors}")


def test_push_wait_returns_when_flux_applied_the_commit(service: Server, tmp_path: Path) -> None:
    flux = Flux(service, WIDE)
    proc = push_waiting(service, pipeline_dir(tmp_path, "waited", "team-w", "nginx:1.27"), "team-w/waited")
    commit = pushed_commit(proc)
    assert proc.poll() is None  # still waiting: nothing was applied yet
    flux.applied("kratix-workload-resources", commit)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"applied: {WIDE}" in out


def test_push_wait_fails_with_fluxs_message(service: Server, tmp_path: Path) -> None:
    flux = Flux(service, WIDE)
    proc = push_waiting(service, pipeline_dir(tmp_path, "refused", "team-w", "nginx:1.27"), "team-w/refused")
    commit = pushed_commit(proc)
    flux.failed("kratix-workload-resources", commit,
                "Deployment/team-w/refused dry-run failed: admission webhook denied the request")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"not applied on {WIDE}" in err and "admission webhook denied" in err


def test_push_wait_gives_up_after_its_timeout_saying_what_it_waits_for(
        service: Server, tmp_path: Path) -> None:
    proc = push_waiting(service, pipeline_dir(tmp_path, "slow", "team-w", "nginx:1.27"),
                        "team-w/slow", timeout=0.5)
    pushed_commit(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "not applied after 0.5s" in err and "waits for kratix-workload-resources" in err


def test_push_wait_needs_a_request(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    (folder / "output").mkdir(parents=True)
    proc = subprocess.run([*statewriter_command(), "push", str(folder), "--url",
                           "http://127.0.0.1:9", "--promise", "shop", "--wait"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--wait needs --request" in proc.stderr


def test_metrics_count_requests_by_delivery_and_time_to_applied(service: Server) -> None:
    flux = Flux(service, WIDE)
    commit = post(service, WIDE, "team-m/metered", {"a.yaml": config_map("metered", "team-m")})
    flux.applied("kratix-workload-resources", commit)
    with service.client() as http:
        text = http.get("/metrics").text
    samples = {line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
               for line in text.splitlines() if line and not line.startswith("#")}
    assert samples[f'statewriter_requests{{destination="{WIDE}",state="Applied"}}'] >= 1
    assert samples[f'statewriter_delivery_seconds_count{{destination="{WIDE}"}}'] >= 1
    applied = samples[f'statewriter_requests{{destination="{WIDE}",state="Applied"}}']
    assert applied == len([r for r in _all_requests(service)
                           if any(d["destination"] == WIDE and d["state"] == "Applied"
                                  for d in r["delivery"]["destinations"])])


def _all_requests(server: Server) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    with server.client() as http:
        while True:
            page = http.get("/v1/promises/shop/requests", params={
                "limit": "1000", **({"cursor": cursor} if cursor else {})}).json()
            found += page["requests"]
            cursor = page["next"]
            if cursor is None:
                return found
