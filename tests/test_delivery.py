"""Delivery integrity (issue 8): whatever statewriter acknowledges reaches every cluster intact.

One test per finding of the issue, each through the HTTP API of a real `statewriter serve`
on 127.0.0.1, each checked with the real tools: a `git clone` of the embedded store over
HTTP that checks out, `kubectl kustomize` of both sections of the destination, `statewriter
verify` on the clone, and, where values matter, the values Go's YAML readers see: the API
server's reader (`kubectl label --local -f FILE`) and what Flux applies (`kubectl kustomize
<section> | kubectl label --local -f -`).

The tests share one server; each uses its own destination (and labels) and promises, so
they do not see each other's bundles. Every test verifies the whole clone, so a commit that
broke any destination fails the test that follows it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gitops.verify import verify_path
from tests.procs import Server, git, owned_requests, running_server

MAX_SEGMENT_BYTES = 255  # docs/reference.md section 3, invariant 7
MAX_FOLDER_ENTRIES = 1000  # docs/reference.md section 2, fan-out
CLIENT_THREADS = 8

# Strings YAML 1.1, YAML 1.2 or Go's readers take for another type when written plainly.
AMBIGUOUS = ["08544", "1e3", "0o17", "12e7", "+.5", "y", "yes", "on", "null", "~",
             "2024-01-01", "1_000", "0x1F"]

Key = tuple[str, str, str]  # kind, namespace ("" for cluster-scoped), name


# -- the server and the wire ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("delivery") / "data") as started:
        yield started


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=CLIENT_THREADS, max_keepalive_connections=CLIENT_THREADS)
    with httpx.Client(base_url=server.url, timeout=120, limits=limits) as client:
        yield client


def put_destination(http: httpx.Client, name: str, labels: Mapping[str, str],
                    apis: list[str] | None = None) -> httpx.Response:
    body: dict[str, object] = {"labels": dict(labels)}
    if apis:
        body["apis"] = apis
    answer = http.put(f"/v1/destinations/{name}", json=body)
    assert answer.status_code == 200, answer.text
    return answer


def bundle(
    promise: str,
    files: Mapping[str, str],
    selectors: Mapping[str, str],
    request: tuple[str, str] | None = None,
    pipeline: str | None = None,
) -> dict[str, Any]:
    """The JSON form of POST /v1/bundles; without `request`, a promise-level bundle."""
    body: dict[str, Any] = {"promise": promise, "destinationSelectors": dict(selectors),
                            "files": dict(files)}
    if request is not None:
        body["request"] = {"namespace": request[0], "name": request[1]}
    if pipeline is not None:
        body["pipeline"] = pipeline
    return body


def as_yaml(*documents: Mapping[str, Any]) -> str:
    """Documents as JSON-style YAML: every string quoted, so what is sent is unambiguous."""
    return "---\n".join(json.dumps(document, indent=2) + "\n" for document in documents)


def config_map(name: str, data: Mapping[str, str], namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}


def crd(group: str, plural: str, kind: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }}],
        },
    }


def branch_tip(server: Server) -> str:
    return git(f"--git-dir={server.data / 'state.git'}", "rev-parse", "--verify", "-q",
               "refs/heads/main").strip()


def request_state(http: httpx.Client, promise: str, namespace: str, name: str) -> dict[str, Any]:
    answer = http.get(f"/v1/promises/{promise}/requests/{namespace}/{name}")
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def post_all(http: httpx.Client, bodies: Sequence[Mapping[str, Any]]) -> list[httpx.Response]:
    """POST every body from CLIENT_THREADS client threads at once; answers in order."""
    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        return list(pool.map(lambda body: http.post("/v1/bundles", json=body), bodies))


# -- what the real tools see -----------------------------------------------------------------


def run(args: Sequence[str], input: str | None = None) -> str:
    done = subprocess.run(list(args), input=input, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
    return done.stdout


def clone(server: Server, workdir: Path) -> Path:
    """A real checkout of the branch over HTTP; fails when any file cannot be checked out."""
    checkout = workdir / f"clone-{time.monotonic_ns()}"
    git("clone", "-q", f"{server.url}/git/state.git", str(checkout))
    assert git("-C", str(checkout), "status", "--porcelain") == "", "the checkout is incomplete"
    return checkout


def assert_sound(checkout: Path) -> None:
    """Every path segment fits a Linux file system, and `statewriter verify` (kustomize
    builds of every destination included) finds nothing."""
    paths = git("-C", str(checkout), "ls-files", "-z").split("\0")
    too_long = [p for p in paths if any(len(s.encode()) > MAX_SEGMENT_BYTES for s in p.split("/"))]
    assert too_long == []
    assert verify_path(checkout) == []


def json_objects(text: str) -> list[dict[str, Any]]:
    """The concatenated JSON objects `kubectl ... -o json` prints."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return found
        value, at = decoder.raw_decode(text, at)
        found.extend(value["items"] if value.get("kind") == "List" and "items" in value else [value])


def keyed(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}


def api_server_reads(*files: Path) -> dict[Key, dict[str, Any]]:
    """The objects in `files` as the API server's YAML reader decodes them."""
    args = ["kubectl", "label", "--local", "probe-", "-o", "json"]
    for file in files:
        args += ["-f", str(file)]
    return keyed(json_objects(run(args)))


def flux_applies(section: Path) -> dict[Key, dict[str, Any]]:
    """The objects Flux applies from one section: its kustomize build, read as the API
    server reads it. Building is itself the check that the section builds."""
    built = run(["kubectl", "kustomize", str(section)])
    if not built.strip():
        return {}
    return keyed(json_objects(run(["kubectl", "label", "--local", "-f", "-", "probe-", "-o", "json"],
                                  input=built)))


def both_sections(checkout: Path, destination: str) -> dict[Key, dict[str, Any]]:
    """What Flux applies from both sections of `destination` (both must build)."""
    dependencies = flux_applies(checkout / destination / "dependencies")
    resources = flux_applies(checkout / destination / "resources")
    assert dependencies.keys().isdisjoint(resources.keys())
    return {**dependencies, **resources}


def object_files(http: httpx.Client, promise: str, namespace: str = "", name: str = "") -> dict[str, str]:
    """Object -> its path, as GET of the request's state (or, without a request, of the
    promise's promise-level bundles) names them, for every pipeline."""
    if name:
        state = request_state(http, promise, namespace, name)
    else:
        answer = http.get(f"/v1/promises/{promise}")
        assert answer.status_code == 200, answer.text
        state = answer.json()
    return {o["object"]: o["path"] for p in state["pipelines"] for o in p["objects"]}


# -- 1. names YAML reads as non-strings ------------------------------------------------------


def test_names_that_yaml_reads_as_other_types_stay_names(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "names"}
    put_destination(http, "names", labels)
    values = {"year": "2024", "flag": "true", "ratio": "1.5", "sci": "1e3", "none": "null"}
    requests = [  # promise, namespace, request name, pipeline, ConfigMap name
        ("names", "2024", "plain", None, "in-namespace-2024"),
        ("names", "team", "true", None, "of-request-true"),
        ("names", "team", "1.5", None, "of-request-1-5"),
        ("names", "team", "piped", "1e3", "of-pipeline-1e3"),
        ("null", "team", "of-null", None, "of-promise-null"),
    ]
    sent: dict[Key, dict[str, str]] = {}
    for promise, namespace, name, pipeline, object_name in requests:
        files = {"cm.yaml": as_yaml(config_map(object_name, values))}
        answer = http.post("/v1/bundles", json=bundle(promise, files, labels, (namespace, name),
                                                      pipeline))
        assert answer.status_code == 200, answer.text
        assert answer.json()["destinations"] == ["names"]
        sent[("ConfigMap", namespace, object_name)] = values
    level = config_map("promise-level-in-1234", values, namespace="1234")
    answer = http.post("/v1/bundles", json=bundle("levels", {"cm.yaml": as_yaml(level)}, labels))
    assert answer.status_code == 200, answer.text
    assert answer.json()["destinations"] == ["names"]
    sent[("ConfigMap", "1234", "promise-level-in-1234")] = values

    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    applied = both_sections(checkout, "names")
    assert {key: applied[key]["data"] for key in sent} == sent
    paths = [path for promise, namespace, name, _, _ in requests
             for path in object_files(http, promise, namespace, name).values()]
    paths += object_files(http, "levels").values()
    read = api_server_reads(*(checkout / path for path in paths))
    assert {key: read[key]["data"] for key in sent} == sent


# -- 2. legal long names ----------------------------------------------------------------------


def test_legal_long_names_are_shortened_in_paths_only(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "long-names"}
    put_destination(http, "long-names", labels)
    long_name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    plural = "widgets" + "x" * 53
    group = ".".join(["g" * 63, "h" * 63, "i" * 61, "io"])
    assert (len(long_name), len(plural), len(f"{plural}.{group}")) == (253, 60, 253)
    definition = crd(group, plural, "Widget", "Namespaced")
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": long_name},
              "spec": {"size": "large"}}
    data = {"k": "v"}
    files = {"crd.yaml": as_yaml(definition),
             "objects.yaml": as_yaml(widget, config_map(long_name, data))}
    answer = http.post("/v1/bundles", json=bundle("long", files, labels, ("team", "long")))
    assert answer.status_code == 200, answer.text

    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    paths = object_files(http, "long", "team", "long")
    assert len(paths) == 3
    for path in paths.values():  # each file name would be over 255 bytes: all shortened
        segment = path.rpartition("/")[2]
        assert len(segment.encode()) <= MAX_SEGMENT_BYTES and (checkout / path).is_file()
        assert re.fullmatch(r".+-[0-9a-f]{12}\.yaml", segment), segment
    read = api_server_reads(*(checkout / path for path in paths.values()))
    applied = both_sections(checkout, "long-names")
    crd_key = ("CustomResourceDefinition", "", f"{plural}.{group}")
    for key, sent in ((crd_key, definition["spec"]), (("Widget", "team", long_name), widget["spec"]),
                      (("ConfigMap", "team", long_name), data)):
        field = "data" if key[0] == "ConfigMap" else "spec"
        assert read[key][field] == sent
        assert applied[key][field] == sent


# -- 3. request names the layout cannot hold ------------------------------------------------


def test_request_named_like_a_kustomization_is_refused_alone(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "kustomization-names"}
    put_destination(http, "kustomization-names", labels)
    files = {"cm.yaml": as_yaml(config_map("settings", {"k": "v"}))}
    reserved = ["kustomization.yaml", "kustomization.yml"]
    for name in reserved:
        before = branch_tip(server)
        answer = http.post("/v1/bundles", json=bundle("kust", files, labels, ("team", name)))
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "request.name"
        assert branch_tip(server) == before

    innocent = [("team", f"innocent-{i}") for i in range(40)]
    bodies: list[dict[str, Any]] = []
    for i, request in enumerate(innocent):
        bodies.append(bundle("kust", files, labels, request))
        if i % 5 == 0:  # 8 bad ones among the 40
            bodies.append(bundle("kust", files, labels, ("team", reserved[i % 2])))
    answers = post_all(http, bodies)
    for body, answer in zip(bodies, answers, strict=True):
        if body["request"]["name"] in reserved:
            assert answer.status_code == 422, answer.text
            assert answer.json()["field"] == "request.name"
        else:
            assert answer.status_code == 200, answer.text
    assert set(innocent) <= owned_requests(server.data / "state.git")
    assert not {("team", name) for name in reserved} & owned_requests(server.data / "state.git")
    assert_sound(clone(server, tmp_path))


# -- 4. values change -------------------------------------------------------------------------


def test_ambiguous_strings_arrive_as_strings(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "values"}
    # the Probe's group is served by that cluster without statewriter (no CRD: any spec goes)
    put_destination(http, "values", labels, apis=["values.example.com"])
    config_key = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
    data = {f"value-{i}": text for i, text in enumerate(AMBIGUOUS)}
    data.update({text: text for text in AMBIGUOUS if set(text) <= config_key})  # also as keys
    spec = {
        "list": list(AMBIGUOUS),
        "map": {text: text for text in AMBIGUOUS},
        "nested": [{"name": text, "values": [text, {text: [text]}]} for text in AMBIGUOUS],
        "deep": {"a": {"b": [{"c": dict.fromkeys(AMBIGUOUS, "y")}]}},
    }
    probe = {"apiVersion": "values.example.com/v1", "kind": "Probe", "metadata": {"name": "probe"},
             "spec": spec}
    files = {
        # the ConfigMap as block YAML with every scalar double-quoted, the object as JSON
        "cm.yaml": yaml.safe_dump(config_map("ambiguous", data), default_style='"'),
        "probe.yaml": as_yaml(probe),
    }
    answer = http.post("/v1/bundles", json=bundle("values", files, labels, ("team", "values")))
    assert answer.status_code == 200, answer.text

    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    paths = object_files(http, "values", "team", "values")
    read = api_server_reads(*(checkout / path for path in paths.values()))
    applied = both_sections(checkout, "values")
    for seen in (read, applied):
        assert seen[("ConfigMap", "team", "ambiguous")]["data"] == data
        assert seen[("Probe", "team", "probe")]["spec"] == spec


# -- 5. documents kustomize cannot build or the API server refuses ------------------------


REFUSED_DOCUMENTS = {
    "list-kind-with-a-map-of-items": "apiVersion: example.com/v1\nkind: FooList\n"
                                     "metadata:\n  name: foos\nitems:\n  a: {b: c}\n",
    "kind-list": "apiVersion: v1\nkind: List\nmetadata:\n  name: all\n"
                 "items:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: inner}\n",
    "nan": "apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: nan\nspec:\n  ratio: .nan\n",
    "inf": "apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: inf\nspec:\n  limit: .inf\n",
    "duplicate-keys": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: twice\n"
                      "data:\n  key: \"first\"\n  key: \"second\"\n",
    "uppercase-configmap": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Settings\n"
                           "data:\n  k: v\n",
    "flux-kustomization": "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
                          "metadata:\n  name: kratix-workload-resources\n  namespace: flux-system\n"
                          "spec:\n  interval: 1m\n  path: ./elsewhere\n  prune: true\n"
                          "  sourceRef: {kind: GitRepository, name: kratix-workload}\n",
}


def test_documents_that_cannot_be_delivered_are_refused(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "refused-documents"}
    put_destination(http, "refused-documents", labels)
    good = as_yaml(config_map("good", {"k": "v"}))
    for case, document in REFUSED_DOCUMENTS.items():
        before = branch_tip(server)
        files = {"a-good.yaml": good, "bad.yaml": good + "---\n" + document}
        answer = http.post("/v1/bundles", json=bundle("refusals", files, labels, ("team", case)))
        assert answer.status_code == 422, f"{case}: {answer.text}"
        assert (answer.json()["file"], answer.json()["document"]) == ("bad.yaml", 1), case
        assert branch_tip(server) == before, case
    assert "refusals" not in _promises_with_owners(server)
    assert_sound(clone(server, tmp_path))


def _promises_with_owners(server: Server) -> set[str]:
    """Every promise with an owner record on the branch."""
    out = git(f"--git-dir={server.data / 'state.git'}", "ls-tree", "--name-only", "main",
              "--", ".statewriter/owners/")
    return {line.rpartition("/")[2] for line in out.splitlines()}


# -- 6. a CRD scope flip ------------------------------------------------------------------------


def test_crd_scope_flip_is_refused_while_objects_of_its_kind_are_stored(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "scope-flip"}
    put_destination(http, "scope-flip", labels)
    group = "flip.example.com"
    gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "global"},
              "spec": {"size": "1"}}
    first = {"crd.yaml": as_yaml(crd(group, "gadgets", "Gadget", "Cluster")),
             "gadget.yaml": as_yaml(gadget)}
    answer = http.post("/v1/bundles", json=bundle("flip", first, labels, ("team", "a")))
    assert answer.status_code == 200, answer.text

    before = branch_tip(server)
    flipped = {"crd.yaml": as_yaml(crd(group, "gadgets", "Gadget", "Namespaced"))}
    answer = http.post("/v1/bundles", json=bundle("flip", flipped, labels, ("team", "b")))
    assert answer.status_code == 409, answer.text
    assert branch_tip(server) == before

    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    applied = both_sections(checkout, "scope-flip")
    assert applied[("CustomResourceDefinition", "", f"gadgets.{group}")]["spec"]["scope"] == "Cluster"
    assert applied[("Gadget", "", "global")]["spec"] == gadget["spec"]


# -- 7. stuck Pending ------------------------------------------------------------------------


def test_pending_pipeline_joins_its_request_when_a_sibling_is_placed(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    put_destination(http, "siblings", {"finding": "siblings"})
    first = {"cm.yaml": as_yaml(config_map("from-p1", {"k": "1"}))}
    answer = http.post("/v1/bundles", json=bundle(
        "siblings", first, {"finding": "nowhere"}, ("team", "r"), "p1"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["state"] == "Pending"

    second = {"cm.yaml": as_yaml(config_map("from-p2", {"k": "2"}))}
    answer = http.post("/v1/bundles", json=bundle(
        "siblings", second, {"finding": "siblings"}, ("team", "r"), "p2"))
    assert answer.status_code == 200, answer.text
    commit = answer.json()["commit"]

    state = request_state(http, "siblings", "team", "r")
    assert state["state"] == "Scheduled" and state["destinations"] == ["siblings"]
    assert {(p["pipeline"], p["state"], tuple(p["destinations"])) for p in state["pipelines"]} == {
        ("p1", "Scheduled", ("siblings",)), ("p2", "Scheduled", ("siblings",))}
    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    paths = object_files(http, "siblings", "team", "r")
    for path in paths.values():  # both pipelines' objects arrived in the one commit
        assert git("-C", str(checkout), "log", "--format=%H", "--", path).split() == [commit]
    applied = both_sections(checkout, "siblings")
    assert applied[("ConfigMap", "team", "from-p1")]["data"] == {"k": "1"}
    assert applied[("ConfigMap", "team", "from-p2")]["data"] == {"k": "2"}


def test_promise_bundle_refused_by_a_conflict_is_placed_when_it_goes(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "promise-conflict"}
    group = "shared.example.com"
    first = crd(group, "things", "Thing", "Namespaced")
    second = crd(group, "things", "Thing", "Namespaced")
    second["spec"]["names"]["shortNames"] = ["th"]  # the same CRD, other content
    for promise, definition in (("first", first), ("second", second)):
        files = {"crd.yaml": as_yaml(definition)}
        answer = http.post("/v1/bundles", json=bundle(promise, files, labels))
        assert answer.status_code == 202, answer.text

    registered = put_destination(http, "promise-conflict", labels).json()
    assert [(item["promise"], item["destination"]) for item in registered["notPlaced"]] == [
        ("second", "promise-conflict")]
    assert http.get("/v1/promises/second").json()["destinations"] == []
    assert http.get("/v1/promises/first").json()["destinations"] == ["promise-conflict"]

    answer = http.delete("/v1/promises/first")
    assert answer.status_code == 200, answer.text
    assert http.get("/v1/promises/second").json()["destinations"] == ["promise-conflict"]
    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    applied = both_sections(checkout, "promise-conflict")
    assert applied[("CustomResourceDefinition", "", f"things.{group}")]["spec"]["names"] == \
        second["spec"]["names"]


def test_reposting_a_pending_bundle_answers_the_current_truth(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    """A request kept out by a conflict when a destination registration placed it. Every
    change that can remove a conflict in a destination touches that destination, and so
    retries what waits there: the re-post is checked while the conflict stands (refused,
    not "unchanged 202") and after it went (200, placed)."""
    labels = {"finding": "repost"}
    group = "held.example.com"
    holder = crd(group, "locks", "Lock", "Namespaced")
    waiter = crd(group, "locks", "Lock", "Namespaced")
    waiter["spec"]["names"]["shortNames"] = ["lk"]
    answer = http.post("/v1/bundles", json=bundle("holder", {"crd.yaml": as_yaml(holder)}, labels))
    assert answer.status_code == 202, answer.text
    pending = bundle("waiter", {"crd.yaml": as_yaml(waiter),
                                "cm.yaml": as_yaml(config_map("waiting", {"k": "v"}))},
                     labels, ("team", "r"))
    answer = http.post("/v1/bundles", json=pending)
    assert answer.status_code == 202, answer.text

    registered = put_destination(http, "repost", labels).json()
    assert [(item["promise"], item["request"]) for item in registered["notPlaced"]] == [
        ("waiter", "team/r")]
    state = request_state(http, "waiter", "team", "r")
    assert state["state"] == "Pending" and state["pipelines"][0]["reason"]

    before = branch_tip(server)
    answer = http.post("/v1/bundles", json=pending)  # the conflict stands
    assert answer.status_code == 409, answer.text
    assert branch_tip(server) == before

    answer = http.delete("/v1/promises/holder")
    assert answer.status_code == 200, answer.text
    state = request_state(http, "waiter", "team", "r")  # placed by the delete's follow-up
    assert (state["state"], state["destinations"]) == ("Scheduled", ["repost"])
    answer = http.post("/v1/bundles", json=pending)  # the conflict went
    assert answer.status_code == 200, answer.text
    assert (answer.json()["state"], answer.json()["destinations"]) == ("Scheduled", ["repost"])
    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    applied = both_sections(checkout, "repost")
    assert applied[("ConfigMap", "team", "waiting")]["data"] == {"k": "v"}
    assert applied[("CustomResourceDefinition", "", f"locks.{group}")]["spec"]["names"] == \
        waiter["spec"]["names"]


# -- 8. crowded folders ------------------------------------------------------------------------


def test_requests_of_one_promise_in_one_namespace_fan_out(
    server: Server, http: httpx.Client, tmp_path: Path
) -> None:
    labels = {"finding": "crowded"}
    put_destination(http, "crowded", labels)
    names = [f"request-{i:03d}" for i in range(300)]
    bodies = [bundle("crowd", {"cm.yaml": as_yaml(config_map(f"cm-{name}", {"k": name}))}, labels,
                     ("team", name)) for name in names]
    answers = post_all(http, bodies)
    assert [a.status_code for a in answers if a.status_code != 200] == []

    checkout = clone(server, tmp_path)
    assert_sound(checkout)
    widest = max(_folder_sizes(checkout / "crowded").values())
    widest = max(widest, *_folder_sizes(checkout / ".statewriter/owners").values())
    assert widest <= MAX_FOLDER_ENTRIES
    assert widest < len(names)  # no folder holds them all
    for base, leaf in ((checkout / "crowded/resources/team/crowd", "default"),
                       (checkout / ".statewriter/owners/crowd/team", "default.json")):
        shards = {entry.name for entry in base.iterdir() if entry.is_dir()}
        assert all(len(shard) == 2 and set(shard) <= set("0123456789abcdef") for shard in shards)
        for name in names:
            assert (base / _shard(name) / name / leaf).exists(), name
        assert shards == {_shard(name) for name in names}
        assert len(shards) > 100  # spread over the shard folders, not piled in a few


def _shard(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:2]


def _folder_sizes(root: Path) -> dict[str, int]:
    return {folder: len(folders) + len(files) for folder, folders, files in os.walk(root)}
