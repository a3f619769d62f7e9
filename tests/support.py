"""Helpers for planner tests: an in-memory world that applies plans, tree checks, kustomize."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from app.http.answers import answer
from gitops import layout
from gitops.bundle import Bundle, parse_bundle
from gitops.identity import BUILTIN_CLUSTER_SCOPED, crd_defines
from gitops.index import Index
from gitops.normalize import PRUNE_ANNOTATION
from gitops.planner import (
    Plan,
    Policy,
    plan_apply,
    plan_delete,
    plan_delete_destination,
    plan_put_destination,
)
from gitops.planner.destinations import Cluster
from gitops.tree import DictTree, Tree, blob_id
from gitops.validate import builtin
from gitops.verify import verify_tree
from gitops.writer import Operation, Writer
from gitops.yamldocs import dump_document

KUBECTL = shutil.which("kubectl")
# Real-world manifests kept in the repository, with provenance (tests/fixtures/corpus/README.md)
CORPUS_ROOT = Path(__file__).resolve().parent / "fixtures" / "corpus"
CORPUS = CORPUS_ROOT / "kratix"  # syntasso/kratix's manifests, the first source


# What the tests' destinations serve besides the built-in kinds: the Deployments of
# apps/v1beta2 some tests write to show that an identity has no version (no Kubernetes the
# service supports serves that version: a destination must declare it)
TEST_CLUSTER = Cluster(apis=["apps/v1beta2/Deployment"])


class World:
    """An index and a tree that plans are applied to, as the service does after a commit."""

    def __init__(self, policy: Policy = Policy()) -> None:
        self.tree = DictTree()
        self.index = Index()
        self.policy = policy
        self.followed: Plan | None = None  # the last follow-up plan run

    def run(self, plan: Plan) -> Plan:
        files = dict(self.tree.files(""))
        for path, content in plan.changes.items():
            if content is None:
                files.pop(path)
            else:
                files[path] = content
        self.tree = DictTree(files)
        plan.index.merge_down()
        if plan.changed and plan.follow_up is not None:  # as the writer lane does
            self.followed = self.run(plan.follow_up(self.index, self.tree))
        return plan

    # -- operations ------------------------------------------------------------------------

    def destination(
        self, name: str, labels: dict[str, str] | None = None, path: str | None = None,
        cluster: Cluster | None = None,
    ) -> Plan:
        """Register a destination; `cluster` says what its cluster serves and holds besides
        the built-in kinds and what statewriter writes (TEST_CLUSTER: apps/v1beta2)."""
        return self.run(
            plan_put_destination(self.index, self.tree, name, labels or {}, path, "tester",
                                 self.policy, cluster=cluster)
        )

    def apply(self, payload: dict[str, Any], actor: str = "tester") -> Plan:
        return self.run(plan_apply(self.index, self.tree, parse_bundle(payload), actor, self.policy))

    def delete(
        self, promise: str, request: str | None = None, pipeline: str | None = None
    ) -> Plan:
        namespace, _, name = (request or "/").partition("/")
        return self.run(
            plan_delete(self.index, self.tree, promise, namespace, name, pipeline, "tester",
                        self.policy)
        )

    def delete_destination(self, name: str) -> Plan:
        return self.run(plan_delete_destination(self.index, self.tree, name, "tester", self.policy))

    def restart(self) -> None:
        """What a restarted service does: rebuild the index from the tree alone."""
        self.index = Index.load(self.tree)

    # -- reading ---------------------------------------------------------------------------

    def files(self, prefix: str = "") -> dict[str, bytes]:
        return dict(self.tree.files(prefix))

    def read(self, path: str) -> bytes:
        data = self.tree.read(path)
        assert data is not None, f"{path} missing"
        return data

    def doc(self, path: str) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.read(path))
        return loaded

    def objects(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Every object file below `prefix` (kustomizations left out), parsed."""
        return {
            path: yaml.safe_load(data)
            for path, data in self.tree.files(prefix)
            if not path.endswith("/" + layout.KUSTOMIZATION)
        }


# -- bundles --------------------------------------------------------------------------------


def manifest(
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    annotations: dict[str, str] | None = None,
    **fields: Any,
) -> str:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = annotations
    # statewriter's own writer: plain only where every reader agrees (PyYAML's would write a
    # name `1e3` plain, which the Go readers, and statewriter, read as a number)
    return dump_document({"apiVersion": api_version, "kind": kind, "metadata": metadata,
                          **fields}).decode()


def deployment(name: str, namespace: str | None = None, image: str = "nginx:1.27") -> str:
    """The smallest Deployment the API server takes."""
    return manifest("apps/v1", "Deployment", name, namespace, spec={
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": name, "image": image}]}}})


def crd(group: str, kind: str, scope: str = "Namespaced", version: str = "1") -> str:
    plural = kind.lower() + "s"
    return manifest(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", f"{plural}.{group}",
        spec={
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                      "listKind": f"{kind}List"},
            "scope": scope,
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object",
                                                         "x-kubernetes-preserve-unknown-fields": True,
                                                         "description": f"version {version}"}}}],
        },
    )


def config_map(name: str, namespace: str | None = None, value: str = "1",
               annotations: dict[str, str] | None = None) -> str:
    return manifest("v1", "ConfigMap", name, namespace, annotations, data={"value": value})


def payload(
    promise: str,
    request: str | None = None,
    files: dict[str, str] | None = None,
    pipeline: str | None = None,
    selectors: dict[str, str] | None = None,
    generation: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"promise": promise, "files": files or {}}
    if request is not None:
        namespace, _, name = request.partition("/")
        body["request"] = {"namespace": namespace, "name": name}
    if pipeline is not None:
        body["pipeline"] = pipeline
    if selectors is not None:
        body["destinationSelectors"] = selectors
    if generation is not None:
        body["promiseGeneration"] = generation
    return body


# -- comparing indexes ----------------------------------------------------------------------


def index_state(index: Index) -> dict[str, dict[Any, Any]]:
    """Everything an index knows, as plain dicts (for equality)."""
    return {
        "destinations": dict(index.destinations.items()),
        "owners": dict(index.owners.items()),
        "objects": {key: dict(holders) for key, holders in index.objects.items()},
        "requests": dict(index.requests.items()),
        "cluster_kinds": dict(index.cluster_kinds.items()),
        "kept": dict(index.kept.items()),
        "blocked": dict(index.blocked.items()),
    }


def assert_reloads(world: World) -> None:
    """`Index.load(tree)` rebuilds what the in-memory index holds."""
    assert index_state(Index.load(world.tree)) == index_state(world.index)


# -- kustomize ------------------------------------------------------------------------------


def materialise(tree: Tree, root: Path) -> Path:
    for path, data in tree.files(""):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize folder`, parsed; fails the test with kustomize's error."""
    assert KUBECTL, "kubectl is needed for these tests"
    proc = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"kubectl kustomize {folder}: {proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def build_all(tree: Tree, root: Path) -> dict[str, list[dict[str, Any]]]:
    """Materialise `tree` and build both sections of every destination."""
    materialise(tree, root)
    built = {}
    for destination in Index.load(tree).destinations.values():
        for section in layout.SECTIONS:
            folder = destination.section(section)
            built[folder] = kustomize(root / folder)
    return built


# -- invariants (docs/reference.md section 3), checked from the tree alone ----------------------------


def _identity(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = doc.get("metadata") or {}
    group = str(doc.get("apiVersion", "")).rpartition("/")[0]
    return (group, str(doc.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name")))


def tree_findings(tree: Tree, protected: frozenset[str] = frozenset(
        {"CustomResourceDefinition", "Namespace"}), exact_blobs: bool = False) -> list[str]:
    """Invariants 2-6 plus the kustomization listings that make invariant 1 hold.

    `exact_blobs`: also require each file to be exactly what every owner output (true when
    no shared dependency was replaced or kept at a newer generation)."""
    findings: list[str] = []
    index = Index.load(tree)
    paths = [d.path for d in index.destinations.values()]
    for path, _ in tree.files(""):
        if not path.startswith(layout.STATE + "/") and not any(
            path.startswith(p + "/") for p in paths
        ):
            findings.append(f"{path}: outside every destination and {layout.STATE}/")
    for destination in index.destinations.values():
        expected: dict[str, tuple[tuple[str, str, str, str], set[str]]] = {}
        for (name, identity), holders in index.objects.items():
            if name != destination.name:
                continue
            placements = {h.section for h in holders.values()}
            if len(placements) != 1:
                findings.append(f"{identity}: placed in {placements} at once")
            placement = next(iter(placements))
            file = layout.object_path(destination, placement, identity, frozenset(holders))
            key = (identity.group, identity.kind, identity.namespace, identity.name)
            expected[file] = (key, {h.blob for h in holders.values()})
        seen: dict[tuple[str, str, str, str], str] = {}
        docs: dict[str, dict[str, Any]] = {}
        cluster_kinds = set(BUILTIN_CLUSTER_SCOPED)
        for path, data in tree.files(destination.path):
            if not path.endswith(".yaml"):
                findings.append(f"{path}: not a .yaml file")
            if not any(path.startswith(destination.section(s) + "/") for s in layout.SECTIONS):
                findings.append(f"{path}: outside dependencies/ and resources/")
            if path.endswith("/" + layout.KUSTOMIZATION):
                continue
            doc = yaml.safe_load(data)
            docs[path] = doc
            defined = crd_defines(doc)
            if defined and defined[1]:
                cluster_kinds.add(defined[0])
            if path not in expected:
                findings.append(f"{path}: no owner in the index")
            else:
                key, blobs = expected[path]
                if _identity(doc) != key:
                    findings.append(f"{path}: holds {_identity(doc)}, index says {key}")
                if exact_blobs and blobs != {blob_id(data)}:
                    findings.append(f"{path}: content differs from its owners' output")
        for path in sorted(set(expected) - set(docs)):
            findings.append(f"{path}: owned ({expected[path][0]}) but missing")
        for path, doc in docs.items():
            key = _identity(doc)
            if key in seen:
                findings.append(f"{path}: {key} also at {seen[key]}")
            seen[key] = path
            if (key[0], key[1]) not in cluster_kinds and not key[2]:
                findings.append(f"{path}: namespaced object without metadata.namespace")
            annotations = (doc.get("metadata") or {}).get("annotations") or {}
            if key[1] in protected and annotations.get(PRUNE_ANNOTATION) != "disabled":
                findings.append(f"{path}: {key[1]} without {PRUNE_ANNOTATION}: disabled")
            if any(k.startswith("statewriter.dev/") for k in annotations):
                findings.append(f"{path}: statewriter annotation left in")
        findings.extend(_kustomization_findings(tree, destination.section(layout.DEPENDENCIES)))
        findings.extend(_kustomization_findings(tree, destination.section(layout.RESOURCES)))
    return findings


def _kustomization_findings(tree: Tree, folder: str) -> list[str]:
    """Each folder's kustomization lists exactly its other entries."""
    findings = []
    entries = tree.listdir(folder)
    data = tree.read(f"{folder}/{layout.KUSTOMIZATION}")
    if data is None:
        return [f"{folder}: no {layout.KUSTOMIZATION}"]
    listed = yaml.safe_load(data).get("resources")
    actual = sorted(e for e in entries if e != layout.KUSTOMIZATION)
    if listed != actual:
        findings.append(f"{folder}/{layout.KUSTOMIZATION} lists {listed}, folder has {actual}")
    for entry, is_folder in entries.items():
        if is_folder:
            findings.extend(_kustomization_findings(tree, f"{folder}/{entry}"))
    return findings


def check_tree(tree: Tree, exact_blobs: bool = False) -> None:
    """The invariants, by the checks above and by gitops.verify (the oracle is both: a verify
    that cannot be imported fails the tests, never drops out of them)."""
    findings = tree_findings(tree, exact_blobs=exact_blobs)
    findings += [f"verify: {line}" for line in verify_tree(tree, kustomize=False)]
    assert not findings, "\n".join(findings)


def rendezvous_order(names: list[str], request: str) -> list[str]:
    """Destination names, best first, by sha256(name + "/" + promise/ns/name)."""
    return sorted(names, key=lambda n: hashlib.sha256(f"{n}/{request}".encode()).digest(),
                  reverse=True)


# -- through a writer's lane ------------------------------------------------------------------


def a_conflict_freed_by_a_delete(writer: Writer, destination: str,
                                 labels: dict[str, str]) -> tuple[str, str]:
    """Through `writer`'s lane: `destination` registered, a request of p1 written there, one
    of p2 outputting the same ConfigMap kept out (202) until the destination also matches it
    and p1's request is deleted, which frees it: a follow-up commit places it. Returns the
    delete's commit and the tip after it."""
    def submit(operation: Operation) -> tuple[int, dict[str, Any]]:
        return answer(writer.submit(operation).result(timeout=60))

    def put(labels: dict[str, str]) -> Operation:
        return functools.partial(plan_put_destination, name=destination, labels=labels,
                                 path=None, actor="tester")

    def config_map_of(promise: str, name: str, value: str,
                      selectors: dict[str, str]) -> Operation:
        body = payload(promise, f"team-0/{name}", {"cm.yaml": config_map("same", value=value)},
                       selectors=selectors)
        return functools.partial(_apply, bundle=parse_bundle(body))

    assert submit(put(labels))[0] == 200
    assert submit(config_map_of("p1", "one", "mine", labels))[0] == 200
    assert submit(config_map_of("p2", "two", "theirs", {"tier": "x"}))[0] == 202
    assert submit(put({**labels, "tier": "x"}))[0] == 200
    status, gone = submit(functools.partial(plan_delete, promise="p1", namespace="team-0",
                                            name="one", pipeline=None, actor="tester"))
    assert status == 200, gone
    tip, index, _ = writer.snapshot()
    assert tip is not None and tip != gone["commit"]  # the follow-up commit placing p2
    (record,) = index.request_owners("p2", "team-0", "two")
    assert record.state == "Scheduled"
    return gone["commit"], tip


def _apply(index: Index, tree: Tree, *, bundle: Bundle) -> Plan:
    return plan_apply(index, tree, bundle, "tester")


def without_invariant_9(findings: list[str]) -> list[str]:
    """Findings but those of invariant 9, which the fixture stores written by earlier layouts
    hold since their makers predate validation: every Beat is of beat.k8s.elastic.co/v1beta1
    while their ECK CRD served only v1, and one Deployment has neither selector nor template."""
    served = [f for f in findings if f.endswith(f"(Kubernetes {builtin.NEWEST})")]
    for finding in served:
        assert ("_Beat.beat.k8s.elastic.co_" in finding and "v1beta1" in finding) or (
            "Deployment.apps_platform-operator.yaml: spec." in finding), finding
    return [f for f in findings if f not in served]
