"""Tell Flux at once (docs/reference.md sections 2, 6 and 8 "Notify"; issue 10): a destination's
notify URL, the POSTs after each push (against a real local HTTP receiver and a real server),
and the Receiver that `/flux` renders, checked against Flux's own schema.

No sleeps: every wait polls (tests.procs.wait_until); no assertion on timing. The retries of
a failing receiver are counted once the service has logged that it gave up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gitops import layout
from gitops.destination import Destination
from gitops.errors import CorruptState
from gitops.flux import flux_manifests
from gitops.index import decode_destination, encode_destination
from gitops.index.records import read_record
from gitops.notify import Notifier, TokenFile, changed_destinations, payload, signature
from gitops.tree import DictTree, Tree
from gitops.writer import Published
from tests.fixtures.eck import request_bundle
from tests.procs import Server, free_port, git, running_server, wait_until
from tests.test_deploy import docs_command, kubectl_dry_run

TOKEN = "receiver-token-0123456789abcdef"
WAIT = 30.0  # seconds any one wait may take before the test fails

Doc = dict[str, Any]


# -- a real HTTP receiver ------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Doc:
        loaded: Doc = json.loads(self.body)
        return loaded


@dataclass
class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records every request. By path: `/hook/fail-*`
    answers 500, `/hook/hang-*` holds the request until `release` is set, others 200."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    holding: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    def to(self, name: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == f"/hook/{name}"]

    def commits(self, name: str) -> list[str]:
        return [r.json["commit"] for r in self.to(name)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with state.lock:
                state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                               body))
            if self.path.startswith("/hook/hang-"):
                with state.lock:
                    state.holding += 1
                state.release.wait(WAIT)
                with state.lock:
                    state.holding -= 1
            status = 500 if self.path.startswith("/hook/fail-") else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


def signed_by(received: Received, token: str) -> bool:
    """What Flux's generic-hmac Receiver does (go-github ValidateSignature): split
    `X-Signature` at the first `=`, pick the hash, hex-decode, compare the HMAC of the raw body."""
    header = received.headers.get("x-signature", "")
    algorithm, _, digest = header.partition("=")
    hashes = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
    if algorithm not in hashes or not digest:
        return False
    try:
        given = bytes.fromhex(digest)
    except ValueError:
        return False
    return hmac.compare_digest(given, hmac.new(token.encode(), received.body, hashes[algorithm]).digest())


# -- the service ---------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "receiver-token").write_text(TOKEN + "\n")
    config = tmp_path / "statewriter.yaml"
    config.write_text("notify:\n  hmacTokenFile: receiver-token\n")
    # retries 0.05 s apart, then 0.1 and 0.2 (the service's: 0.5, 1 and 2 s): the same count
    with running_server(tmp_path / "data", config=config,
                        keywords={"gitops.notify.Notifier": {"backoff": 0.05}}) as server:
        yield server


def tip(server: Server) -> str:
    return git(f"--git-dir={server.data / 'state.git'}", "rev-parse", "refs/heads/main").strip()


def put(http: httpx.Client, name: str, body: Doc) -> httpx.Response:
    response = http.put(f"/v1/destinations/{name}", json=body)
    assert response.status_code == 200, response.text
    return response


def place(http: httpx.Client, request: str, env: str) -> str:
    """A bundle placed in the destination labelled `env`; its commit."""
    answer = http.post("/v1/bundles", json=request_bundle(request, destinationSelectors={"env": env}))
    assert answer.status_code == 200, answer.text
    assert answer.json()["destinations"] == [env] and answer.json()["changed"] is True
    commit: str = answer.json()["commit"]
    return commit


def logged(server: Server, needle: str) -> bool:
    return needle in server.log.read_text(errors="replace")


# -- end to end ------------------------------------------------------------------------------------


def test_a_push_notifies_the_changed_destination_once_signed_and_no_other(
    service: Server, receiver: Receiver
) -> None:
    assert not logged(service, "not acted on")  # notify is acted on now
    with service.client() as http:
        put(http, "a", {"labels": {"env": "a"}, "notify": {"url": receiver.url("a")}})
        registered_a = tip(service)
        put(http, "b", {"labels": {"env": "b"}, "path": "clusters/b",
                        "notify": {"url": receiver.url("b")}})
        registered_b = tip(service)
        # registering writes the destination's kustomization files: a change under its path
        wait_until(lambda: receiver.commits("a") and receiver.commits("b"), WAIT, "registrations")

        placed_a = place(http, "example", "a")
        wait_until(lambda: placed_a in receiver.commits("a"), WAIT, "the POST for a's bundle")
        placed_b = place(http, "second", "b")
        wait_until(lambda: placed_b in receiver.commits("b"), WAIT, "the POST for b's bundle")
        again_a = place(http, "third", "a")
        wait_until(lambda: again_a in receiver.commits("a"), WAIT, "the POST for a's next bundle")

    # one POST per push, in order; a's bundles never reached b's receiver, nor b's a's
    assert receiver.commits("a") == [registered_a, placed_a, again_a]
    assert receiver.commits("b") == [registered_b, placed_b]
    # what the service decided for each push, before sending anything
    assert logged(service, f"commit {placed_a} changed destination(s) a: notifying them")
    assert logged(service, f"commit {placed_b} changed destination(s) b: notifying them")
    for name in ("a", "b"):
        for received in receiver.to(name):
            assert received.body == payload(name, received.json["commit"])
            assert received.json == {"destination": name, "commit": received.json["commit"]}
            assert received.headers["content-type"] == "application/json"
            assert received.headers["user-agent"].startswith("statewriter/")
            assert received.headers["x-signature"] == signature(received.body, TOKEN)
            assert signed_by(received, TOKEN) and not signed_by(received, TOKEN + "x")
    assert TOKEN not in service.log.read_text(errors="replace")


def test_a_failing_receiver_never_fails_a_write_and_its_retries_are_bounded(
    service: Server, receiver: Receiver
) -> None:
    refused = f"http://127.0.0.1:{free_port()}/hook/nobody-listens"
    with service.client() as http:
        put(http, "hang", {"labels": {"env": "hang"}, "notify": {"url": receiver.url("hang-1")}})
        put(http, "fail", {"labels": {"env": "fail"}, "notify": {"url": receiver.url("fail-1")}})
        put(http, "gone", {"labels": {"env": "gone"}, "notify": {"url": refused}})
        wait_until(lambda: receiver.holding, WAIT, "the hanging receiver to hold a POST")

        # every write is answered as usual while one receiver holds a POST, one answers 500
        # and one refuses connections
        held = place(http, "example", "hang")
        assert receiver.holding  # still held: the write did not wait for it
        failed = place(http, "second", "fail")
        lost = place(http, "third", "gone")
        assert http.get("/readyz").status_code == 200

        for name, commit in (("fail", failed), ("gone", lost)):
            gave_up = f"gave up notifying destination {name} of commit {commit} after 4 attempt(s)"
            wait_until(lambda line=gave_up: logged(service, line), WAIT, f"{name}: the retries to end")
        # bounded: the first POST and three retries, then no more for that commit
        assert receiver.commits("fail-1").count(failed) == 4
        log = service.log.read_text(errors="replace")
        assert len(re.findall(rf"notifying destination gone of commit {lost} failed \(attempt \d of 4\): "
                              r"ConnectError", log)) == 3
        assert "nobody-listens" not in log  # a receiver's path is its secret: never logged

        receiver.release.set()
        wait_until(lambda: held in receiver.commits("hang-1"), WAIT, "the held destination's POST")
        # the write after the failures is as fine as the ones before
        assert place(http, "fourth", "fail")


def test_the_notify_url_is_strict_stored_shown_and_removable(service: Server, receiver: Receiver) -> None:
    url = receiver.url("w")
    with service.client() as http:
        saved = put(http, "w", {"labels": {}, "notify": {"url": url}})
        assert saved.json().items() >= {"name": "w", "labels": {}, "path": "w",
                                        "notify": {"url": url}}.items()
        assert saved.json()["commit"] == tip(service)
        assert http.get("/v1/destinations/w").json()["notify"] == {"url": url}
        assert http.get("/v1/destinations").json()["destinations"][0]["notify"] == {"url": url}
        record = json.loads(git(f"--git-dir={service.data / 'state.git'}", "show",
                                "main:.statewriter/destinations/w.json"))
        assert record["notify"] == {"url": url}

        first = tip(service)
        put(http, "w", {"labels": {}, "notify": {"url": url}})
        assert tip(service) == first  # the same: no commit

        other = receiver.url("w2")
        put(http, "w", {"labels": {}, "notify": {"url": other}})
        changed = tip(service)
        assert changed != first
        message = git(f"--git-dir={service.data / 'state.git'}", "log", "-1", "--format=%B", changed)
        assert message.startswith("update destination w") and "Statewriter-Action: destination" in message
        assert http.get("/v1/destinations/w").json()["notify"] == {"url": other}

        put(http, "w", {"labels": {}})  # omitted: removed
        removed = tip(service)
        assert "notify" not in http.get("/v1/destinations/w").json()
        assert "notify" not in json.loads(git(f"--git-dir={service.data / 'state.git'}", "show",
                                              "main:.statewriter/destinations/w.json"))

        refusals = {
            "ftp://host/hook/x": "must be an http:// or https:// URL with a host",
            "https:///hook/x": "must be an http:// or https:// URL with a host",
            "https://flux:hunter2-secret@host/hook/x": "must not carry credentials",
            "https://host/hook/x?token=hunter2-secret": "must not have a query or a fragment",
            "https://host/hook/x#frag": "must not have a query or a fragment",
            "https://host:99999/hook/x": "is not a valid URL",
            "https://host/hook/ x": "must not contain spaces",
            "https://host/" + "x" * 2048: "must be at most 2048 characters",
        }
        for bad, reason in refusals.items():
            answer = http.put("/v1/destinations/w", json={"labels": {}, "notify": {"url": bad}})
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.json()["field"] == "notify.url" and reason in answer.json()["message"], answer.text
            assert "hunter2" not in answer.text  # a refusal never repeats a credential
        shapes = {
            json.dumps({"notify": {"uri": url}}): "notify.uri",  # the misspelt key first
            json.dumps({"notify": {"url": url, "secret": "x"}}): "notify.secret",
            json.dumps({"notify": {}}): "notify.url",
            json.dumps({"notify": url}): "notify",
            json.dumps({"notify": {"url": 5}}): "notify.url",
        }
        for body, named in shapes.items():
            answer = http.put("/v1/destinations/w", content=body,
                              headers={"content-type": "application/json"})
            assert answer.status_code == 422 and answer.json()["field"] == named, (body, answer.text)
        assert tip(service) == removed  # refused: nothing written
        assert "hunter2" not in service.log.read_text(errors="replace")


# -- /flux: the Receiver ---------------------------------------------------------------------------

# `spec` of the Receiver CRD, version v1, from fluxcd/notification-controller
# config/crd/bases/notification.toolkit.fluxcd.io_receivers.yaml (descriptions and the
# generic-oidc-only `oidcProviders` items left out). CRDs drop fields they do not know
# without a word, so the check below refuses any field name not listed here.
RECEIVER_SPEC: Doc = {
    "type": "object",
    "required": ["resources", "type"],
    "properties": {
        "events": {"type": "array", "items": {"type": "string"}},
        "interval": {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"},
        "oidcProviders": {"type": "array"},
        "resourceFilter": {"type": "string"},
        "resources": {"type": "array", "items": {
            "type": "object",
            "required": ["kind", "name"],
            "properties": {
                "apiVersion": {"type": "string"},
                "filter": {"type": "string"},
                "kind": {"type": "string", "enum": [
                    "Bucket", "GitRepository", "Kustomization", "HelmRelease", "HelmChart",
                    "HelmRepository", "ImageRepository", "ImagePolicy", "ImageUpdateAutomation",
                    "OCIRepository", "ArtifactGenerator", "ExternalArtifact"]},
                "matchLabels": {"type": "object"},
                "name": {"type": "string", "minLength": 1, "maxLength": 253},
                "namespace": {"type": "string", "minLength": 1, "maxLength": 253},
            },
        }},
        "secretRef": {"type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string"}}},
        "suspend": {"type": "boolean"},
        "type": {"type": "string", "enum": [
            "generic", "generic-hmac", "generic-oidc", "github", "gitlab", "bitbucket", "harbor",
            "dockerhub", "quay", "gcr", "nexus", "acr", "cdevents"]},
    },
}
OBJECT_KEYS = {"apiVersion", "kind", "metadata", "spec"}


def schema_problems(value: Any, schema: Doc, where: str) -> list[str]:
    """The subset of OpenAPI v3 the schema above uses; unknown fields are problems."""
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if not isinstance(value, types[schema["type"]]):
        return [f"{where}: not a {schema['type']}"]
    problems = []
    if isinstance(value, dict) and "properties" in schema:
        problems += [f"{where}.{key}: required" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key not in schema["properties"]:
                problems.append(f"{where}.{key}: not a field of the Receiver's schema")
            else:
                problems += schema_problems(item, schema["properties"][key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{where}[{i}]")
    if isinstance(value, str):
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: does not match {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            problems.append(f"{where}: length out of range")
    return problems


def flux_docs(text: str) -> dict[str, Doc]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(text) if d}


def test_flux_renders_the_receiver_only_for_a_destination_with_notify(
    service: Server, receiver: Receiver
) -> None:
    with service.client() as http:
        put(http, "told", {"labels": {}, "notify": {"url": receiver.url("told")}})
        put(http, "polls", {"labels": {}})
        told = http.get("/v1/destinations/told/flux")
        polls = http.get("/v1/destinations/polls/flux")
        renamed = flux_docs(http.get("/v1/destinations/told/flux", params={"prefix": "w1"}).text)
    assert told.status_code == polls.status_code == 200

    docs = flux_docs(told.text)
    assert sorted(docs) == ["GitRepository/kratix-workload", "Kustomization/kratix-workload-dependencies",
                            "Kustomization/kratix-workload-resources", "Receiver/kratix-workload"]
    found = docs["Receiver/kratix-workload"]
    assert set(found) == OBJECT_KEYS and found["apiVersion"] == "notification.toolkit.fluxcd.io/v1"
    assert schema_problems(found["spec"], RECEIVER_SPEC, "spec") == []
    # the service signs (hmacTokenFile): generic-hmac, which checks X-Signature with the token
    assert found["spec"] == {
        "type": "generic-hmac",
        "secretRef": {"name": "kratix-workload-receiver-token"},
        "resources": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                       "name": "kratix-workload"}],
    }
    source = docs["GitRepository/kratix-workload"]
    assert found["metadata"]["namespace"] == source["metadata"]["namespace"] == "flux-system"
    # the Receiver reconciles the GitRepository at once: it polls only as a fallback
    assert source["spec"]["interval"] == "10m"
    assert {d["spec"]["interval"] for d in docs.values() if d["kind"] == "Kustomization"} == {"1m"}

    # without notify: exactly as before notify existed
    plain = flux_docs(polls.text)
    assert sorted(plain) == ["GitRepository/kratix-workload", "Kustomization/kratix-workload-dependencies",
                             "Kustomization/kratix-workload-resources"]
    assert plain["GitRepository/kratix-workload"]["spec"]["interval"] == "30s"

    assert renamed["Receiver/w1"]["spec"]["secretRef"] == {"name": "w1-receiver-token"}
    assert renamed["Receiver/w1"]["spec"]["resources"][0]["name"] == "w1"

    # docs/flux.md: the Secret the Receiver reads, with its `token` key
    command = docs_command("flux", "create secret generic kratix-workload-receiver-token")
    secret = kubectl_dry_run(command, {"RECEIVER_TOKEN": TOKEN})
    assert secret["metadata"] == {**secret["metadata"], "name": "kratix-workload-receiver-token",
                                  "namespace": "flux-system"}
    assert set(secret["data"]) == {"token"}


def test_the_flux_page_names_the_webhook_path_flux_computes(service: Server) -> None:
    """docs/flux.md: the notify URL's path is what notification-controller's
    Receiver.GetWebhookPath gives (`/hook/` + hex sha256(token + name + namespace)), and the
    page's PUT stores it as the destination's notify URL."""
    flux_path = "/hook/" + hashlib.sha256(f"{TOKEN}kratix-workloadflux-system".encode()).hexdigest()
    command = docs_command("flux", "WEBHOOK_PATH=")
    done = subprocess.run(["bash", "-c", f'{command}\nprintf %s "$WEBHOOK_PATH"'], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "RECEIVER_TOKEN": TOKEN}, check=True)
    assert done.stdout == flux_path
    put_command = docs_command("flux", '"notify"').replace(
        "https://statewriter.platform.example", service.url)
    done = subprocess.run(["bash", "-c", put_command], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "WEBHOOK_PATH": flux_path, "STATEWRITER_TOKEN": "x"})
    assert done.returncode == 0, done.stderr
    with service.client() as http:
        stored = http.get("/v1/destinations/worker-cluster-1").json()
    assert stored["notify"] == {"url": f"https://flux-webhook.worker-cluster-1.example{flux_path}"}


def test_without_a_signing_token_the_receiver_is_generic() -> None:
    destination = Destination("w", {}, "clusters/w", "https://flux.example/hook/0123")
    docs = flux_docs(flux_manifests(destination, "https://git.example/s.git", "main",
                                    receiver="generic"))
    assert docs["Receiver/kratix-workload"]["spec"]["type"] == "generic"
    assert schema_problems(docs["Receiver/kratix-workload"]["spec"], RECEIVER_SPEC, "spec") == []
    with pytest.raises(ValueError):
        flux_manifests(destination, "https://git.example/s.git", "main", receiver="github")


UNCHANGED_FLUX = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: kratix-workload
  namespace: flux-system
spec:
  interval: '30s'
  ref:
    branch: main
  secretRef:
    name: kratix-workload-credentials
  url: https://git.example/s.git
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: kratix-workload-dependencies
  namespace: flux-system
spec:
  interval: '1m'
  path: ./clusters/w/dependencies
  prune: true
  sourceRef:
    kind: GitRepository
    name: kratix-workload
  wait: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: kratix-workload-resources
  namespace: flux-system
spec:
  dependsOn:
  - name: kratix-workload-dependencies
  interval: '1m'
  path: ./clusters/w/resources
  prune: true
  sourceRef:
    kind: GitRepository
    name: kratix-workload
"""


def test_without_notify_the_flux_manifests_are_byte_for_byte_as_before() -> None:
    text = flux_manifests(Destination("w", {}, "clusters/w"), "https://git.example/s.git", "main",
                          secret="kratix-workload-credentials")
    assert text == UNCHANGED_FLUX


# -- the pieces, in process ------------------------------------------------------------------------


def test_the_signature_is_the_one_flux_documents() -> None:
    """receivers.md: `printf '<request-body>' | openssl dgst -sha256 -r -hmac "<token>"`."""
    body = payload("worker-1", "0" * 40)
    assert body == b'{"destination":"worker-1","commit":"' + b"0" * 40 + b'"}'
    done = subprocess.run(["openssl", "dgst", "-sha256", "-r", "-hmac", TOKEN], input=body,
                          capture_output=True, check=True)
    assert signature(body, TOKEN) == "sha256=" + done.stdout.split()[0].decode()


def test_only_destinations_with_a_changed_file_under_their_path() -> None:
    destinations = [Destination("a", {}, "a"), Destination("b", {}, "clusters/b"),
                    Destination("c", {}, "clusters/c"), Destination("d", {}, "d")]
    paths = sorted([
        ".statewriter/destinations/d.json", ".statewriter/owners/p/default/00/r/default.json",
        "a/resources/default/p/00/r/default/x.yaml",
        "a/dependencies/kustomization.yaml",
        "ab/resources/x.yaml",  # not under a/
        "clusters/bb/resources/x.yaml",  # not under clusters/b/
        "clusters/c",  # a file named like a destination's folder is not under it
        "clusters/b/resources/kustomization.yaml",
    ])
    assert changed_destinations(paths, destinations) == {"a", "b"}
    assert changed_destinations([], destinations) == set()
    assert changed_destinations(["a/x.yaml"], []) == set()


def test_old_destination_records_load_and_write_back_unchanged() -> None:
    old = b'{\n "labels": {\n  "env": "dev"\n },\n "name": "w",\n "path": "w"\n}\n'
    loaded = decode_destination(old)
    assert loaded == Destination("w", {"env": "dev"}, "w") and loaded.notify_url is None
    assert encode_destination(loaded) == old
    told = Destination("w", {"env": "dev"}, "w", "https://flux.example/hook/1")
    assert decode_destination(encode_destination(told)) == told
    for bad in ({"url": "https://user:pw@flux.example/hook/1"}, {"url": 1}, "https://x/y",
                {"url": "https://flux.example/hook/1", "extra": True}):
        raw = json.dumps({"name": "w", "labels": {}, "path": "w", "notify": bad}).encode()
        with pytest.raises(CorruptState) as refused:
            read_record(layout.destination_record_path("w"), raw, decode_destination)
        assert "pw@" not in str(refused.value)


def test_the_token_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    tokens = TokenFile(path, interval=0)
    assert tokens.read() == "first"
    path.write_text("second-and-longer\n")
    assert tokens.read() == "second-and-longer"
    path.unlink()
    assert tokens.read() is None
    path.write_text("third\n")
    assert tokens.read() == "third"


class Store:
    """Commits as DictTrees: what Notifier reads destination records from."""

    def __init__(self) -> None:
        self.commits: dict[str | None, DictTree] = {None: DictTree()}

    def commit(self, name: str, destinations: list[Destination]) -> None:
        self.commits[name] = DictTree({layout.destination_record_path(d.name): encode_destination(d)
                                       for d in destinations})

    def tree(self, commit: str | None) -> Tree:
        return self.commits[commit]


def test_pending_notifications_coalesce_and_retries_end(receiver: Receiver) -> None:
    store = Store()
    held = Destination("held", {}, "held", receiver.url("hang-2"))
    failing = Destination("failing", {}, "failing", receiver.url("fail-2"))
    for commit in ("c1", "c2", "c3", "c4"):
        store.commit(commit, [held, failing])
    notifier = Notifier(store.tree, None, attempts=3, backoff=0.01)
    try:
        record = layout.destination_record_path
        notifier(Published(None, "c1", tuple(sorted([record("held"), record("failing"),
                                                     "held/resources/kustomization.yaml"]))))
        wait_until(lambda: receiver.holding, WAIT, "the first POST to be held")
        # two more pushes while the first POST is held: one POST, of the newest, follows it
        notifier(Published("c1", "c2", ("held/resources/x.yaml",)))
        notifier(Published("c2", "c3", ("held/resources/y.yaml",)))
        receiver.release.set()
        wait_until(lambda: notifier.idle and len(receiver.to("hang-2")) == 2, WAIT, "the newest POST")
        assert receiver.commits("hang-2") == ["c1", "c3"]
        assert receiver.to("hang-2")[0].headers.get("x-signature") is None  # no token: unsigned

        notifier(Published("c3", "c4", ("failing/dependencies/x.yaml", "other/x.yaml")))
        wait_until(lambda: notifier.idle and receiver.to("fail-2"), WAIT, "the retries to end")
        # idle: nothing pending, nothing in flight, so no POST can follow
        assert receiver.commits("fail-2") == ["c4"] * 3
        assert receiver.commits("hang-2") == ["c1", "c3"]
    finally:
        notifier.close(timeout=0)


def test_a_notifier_signs_with_the_token_file_and_logs_neither_token_nor_path(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store()
    store.commit("c1", [Destination("w", {}, "w", receiver.url("secret-path-w"))])
    (tmp_path / "token").write_text(TOKEN)
    notifier = Notifier(store.tree, tmp_path / "token")
    try:
        with caplog.at_level("INFO", logger="statewriter.notify"):
            notifier(Published(None, "c1", (layout.destination_record_path("w"), "w/x.yaml")))
            wait_until(lambda: notifier.idle and receiver.to("secret-path-w"), WAIT, "the POST")
        (received,) = receiver.to("secret-path-w")
        assert signed_by(received, TOKEN)
        assert "notified destination w of commit c1" in caplog.text
        assert TOKEN not in caplog.text and "secret-path-w" not in caplog.text
    finally:
        notifier.close(timeout=0)
