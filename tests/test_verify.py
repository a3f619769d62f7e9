"""`gitops.verify` against trees the real planner writes, then against corrupted copies.

Everything runs for real: the planner builds the trees, `kubectl kustomize` builds them,
`git` makes the repositories `verify_target` clones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops import layout
from gitops.index import Index
from gitops.owner import Owner
from gitops.planner import plan_delete, plan_migrate
from gitops.store.objects import Repository
from gitops.tree import DictTree
from gitops.validate import builtin
from gitops.verify import builds, verify_path, verify_target, verify_tree
from tests.fixtures.eck import request_bundle
from tests.procs import layout_1_store, layout_store
from tests.support import CORPUS, World, without_invariant_9

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_AUTHOR_NAME": "Tess Ter", "GIT_AUTHOR_EMAIL": "tess@example.org",
       "GIT_COMMITTER_NAME": "Tess Ter", "GIT_COMMITTER_EMAIL": "tess@example.org"}
HAS_KUBECTL = shutil.which("kubectl") is not None
W1 = "worker-1"
EXAMPLE_OWNER = Owner("elastic-cloud", "default", "example", "default")
OTHER_OWNER = Owner("elastic-cloud", "default", "other", "default")
EXAMPLE = f"{W1}/resources/{layout.owner_folder(EXAMPLE_OWNER)}"
DEPS = f"{W1}/dependencies"


def corpus_files(*names: str) -> dict[str, str]:
    files = {}
    for name in names:
        path = CORPUS / name
        for file in sorted(path.rglob("*.yaml")) if path.is_dir() else [path]:
            files[file.name] = file.read_text()
    return files


def eck_store() -> World:
    store = World()
    store.destination(W1, {"env": "dev"})
    store.apply(request_bundle("example", files={
        **request_bundle("example")["files"],  # type: ignore[dict-item]
        "settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
                         "data: {a: b}\n",
    }))
    store.apply(request_bundle("other"))
    # A second pipeline of the same request outputs settings too: it moves to _shared/.
    store.apply({"promise": "elastic-cloud", "request": {"namespace": "default", "name": "example"},
                 "pipeline": "extra",
                 "files": {"settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                            "  name: settings\ndata: {a: b}\n"}})
    return store


@pytest.fixture(scope="module")
def eck() -> dict[str, bytes]:
    return eck_store().files()


def relist(files: dict[str, bytes], section: str) -> None:
    """Rewrite every kustomization below `section` to list exactly its entries."""
    folders: dict[str, set[str]] = {section: set()}
    for path in files:
        if not path.startswith(section + "/"):
            continue
        folder, _, name = path.rpartition("/")
        if name == layout.KUSTOMIZATION:
            continue
        folders.setdefault(folder, set()).add(name)
        while folder != section:
            parent, _, child = folder.rpartition("/")
            folders.setdefault(parent, set()).add(child)
            folder = parent
    for path in [p for p in files if p.startswith(section + "/") and p.endswith("/kustomization.yaml")]:
        del files[path]
    for folder, entries in folders.items():
        files[f"{folder}/{layout.KUSTOMIZATION}"] = layout.kustomization(sorted(entries))


def edit(files: dict[str, bytes], path: str, change: Callable[[dict[str, Any]], None]) -> None:
    doc = yaml.safe_load(files[path])
    change(doc)
    files[path] = yaml.safe_dump(doc).encode()


def verify(files: dict[str, bytes], kustomize: bool = False) -> list[str]:
    return verify_tree(DictTree(files), kustomize=kustomize)


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, env=ENV, cwd=cwd)
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout


def write_checkout(root: Path, files: dict[str, bytes]) -> Path:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def bare_repository(
    tmp: Path, files: dict[str, bytes], name: str = "state.git",
    symlinks: dict[str, str] | None = None,
) -> Path:
    """A bare repository whose main branch holds `files` and `symlinks` (path -> target),
    written with git plumbing alone: no name in it ever touches the disk."""
    repo = tmp / name
    git("init", "--quiet", "--bare", "--initial-branch=main", str(repo))

    def plumbing(*args: str, stdin: bytes = b"") -> str:
        return subprocess.run(["git", f"--git-dir={repo}", *args], input=stdin, check=True,
                              capture_output=True, env=ENV).stdout.decode().strip()

    root: dict[str, Any] = {}  # name -> a folder (dict) or (mode, blob id)
    entries = {**{path: ("100644", content) for path, content in files.items()},
               **{path: ("120000", target.encode()) for path, target in (symlinks or {}).items()}}
    for path, (mode, content) in entries.items():
        *folders, file = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[file] = (mode, plumbing("hash-object", "-w", "--stdin", stdin=content))

    def write_tree(node: dict[str, Any]) -> str:
        lines = [f"040000 tree {write_tree(value)}\t{entry}\n" if isinstance(value, dict)
                 else f"{value[0]} blob {value[1]}\t{entry}\n" for entry, value in node.items()]
        return plumbing("mktree", stdin="".join(lines).encode())

    commit = plumbing("commit-tree", write_tree(root), "-m", "state")
    plumbing("update-ref", "refs/heads/main", commit)
    return repo


def v1_store(tmp: Path) -> Path:
    """The fixture store layout 1 wrote, as a bare repository (branch main)."""
    return layout_1_store(tmp / "v1.git")


def main_branch_files(repo: Path) -> dict[str, bytes]:
    """The files of `repo`'s main branch, read with git plumbing (no checkout)."""
    with Repository(repo, "main") as store:
        tip = store.read_ref("refs/heads/main")
        assert tip is not None
        return dict(store.tree(tip).files(""))


# -- clean trees -------------------------------------------------------------------------------


def test_every_step_of_the_planner_verifies_clean() -> None:
    store = World()
    assert verify(store.files()) == []
    store.destination(W1, {"env": "dev"})
    assert verify(store.files(), kustomize=True) == []
    store.apply(request_bundle("example"))
    assert verify(store.files(), kustomize=True) == []
    store.apply(request_bundle("other"))
    assert verify(store.files()) == []
    store.run(plan_delete(store.index, store.tree, "elastic-cloud", "default", "example", None, "t"))
    assert verify(store.files(), kustomize=True) == []
    store.run(plan_delete(store.index, store.tree, "elastic-cloud", "default", "other", None, "t"))
    assert verify(store.files(), kustomize=True) == []


def test_eck_tree_with_shared_objects_is_clean(eck: dict[str, bytes]) -> None:
    assert f"{W1}/resources/_shared/default/ConfigMap_settings.yaml" in eck
    assert verify(eck, kustomize=True) == []


def test_real_corpus_manifests_verify_clean() -> None:
    store = World()
    store.destination(W1, {"env": "dev"})
    store.destination("worker-2", {"env": "dev"}, "clusters/worker-2")
    store.apply({"promise": "flux", "files": corpus_files("flux-install.yaml")})
    store.apply({"promise": "nginx-ingress", "files": corpus_files("nginx-ingress-operator")})
    store.apply({"promise": "redis", "files": corpus_files("redis-operator.yaml")})
    # The destination's own Flux objects are statewriter's to render: a team's copy of the
    # sources Kratix installs goes in under other names.
    sources = {name: text.replace("kratix-workload-", "team-workload-")
               for name, text in corpus_files("kratix-worker-flux-sources.yaml").items()}
    store.apply({"promise": "gitops", "request": {"namespace": "flux-system", "name": "sources"},
                 "files": sources})
    files = store.files()
    assert any(p.startswith("clusters/worker-2/dependencies/flux-system/") for p in files)
    assert verify(files, kustomize=True) == []
    store.run(plan_delete(store.index, store.tree, "nginx-ingress", "", "", None, "t"))
    assert verify(store.files(), kustomize=True) == []


# -- corruptions: each names its path --------------------------------------------------------


ES = f"{EXAMPLE}/default_Elasticsearch.elasticsearch.k8s.elastic.co_example.yaml"
KIBANA = f"{EXAMPLE}/default_Kibana.kibana.k8s.elastic.co_example.yaml"
NAMESPACE = f"{DEPS}/_cluster/_core/Namespace_elastic-system.yaml"
CONFIGMAP = f"{DEPS}/elastic-system/_core/ConfigMap_elastic-operator.yaml"


def test_duplicate_identity_under_another_api_version(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    copy = f"{W1}/resources/default/copies/Elasticsearch_example.yaml"
    files[copy] = files[ES].replace(b"elasticsearch.k8s.elastic.co/v1\n",
                                    b"elasticsearch.k8s.elastic.co/v1beta1\n")
    assert files[copy] != files[ES]
    relist(files, f"{W1}/resources")
    findings = verify(files, kustomize=True)  # kustomize alone accepts this
    # invariant 9 too: the copy's version is not one its CRD serves
    served = [f for f in findings if "is not a version its CRD" in f]
    assert served == [f"{copy}: apiVersion: elasticsearch.k8s.elastic.co/v1beta1 is not a "
                      "version its CRD elasticsearches.elasticsearch.k8s.elastic.co serves "
                      f"(served: v1) (Kubernetes {builtin.NEWEST})"]
    findings = [f for f in findings if f not in served]
    assert findings == [
        f"{copy}: Elasticsearch.elasticsearch.k8s.elastic.co default/example "
        f"(elasticsearch.k8s.elastic.co/v1beta1) is already at {ES} "
        "(elasticsearch.k8s.elastic.co/v1); an identity may appear only once per "
        "destination, whatever its version"
    ] or findings == [
        f"{ES}: Elasticsearch.elasticsearch.k8s.elastic.co default/example "
        f"(elasticsearch.k8s.elastic.co/v1) is already at {copy} "
        "(elasticsearch.k8s.elastic.co/v1beta1); an identity may appear only once per "
        "destination, whatever its version"
    ]


def test_duplicate_identity_across_sections(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    copy = f"{W1}/resources/elastic-system/ConfigMap_elastic-operator.yaml"
    files[copy] = files[CONFIGMAP]
    relist(files, f"{W1}/resources")
    assert [f for f in verify(files) if "already at" in f] == [
        f"{copy}: ConfigMap elastic-system/elastic-operator (v1) is already at {CONFIGMAP} (v1); "
        "an identity may appear only once per destination, whatever its version"
    ]


def test_missing_namespace(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    edit(files, KIBANA, lambda doc: doc["metadata"].pop("namespace"))
    assert verify(files) == [
        f"{KIBANA}: namespaced Kibana.kibana.k8s.elastic.co example has no metadata.namespace"
    ]


def test_missing_namespace_of_a_custom_kind_made_cluster_scoped_is_fine() -> None:
    store = World()
    store.destination(W1, {})
    crd = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Cluster
  versions: [{name: v1, served: true, storage: true,
              schema: {openAPIV3Schema: {type: object}}}]
"""
    store.apply({"promise": "widgets", "files": {"crd.yaml": crd}})
    store.apply({"promise": "widgets", "request": {"namespace": "team-a", "name": "w"},
                 "files": {"w.yaml": "apiVersion: example.com/v1\nkind: Widget\n"
                                     "metadata: {name: w}\n"}})
    files = store.files()
    assert f"{W1}/dependencies/_cluster/example.com/Widget.example.com_w.yaml" in files
    assert verify(files, kustomize=True) == []


def test_missing_prune_annotation(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    edit(files, NAMESPACE, lambda doc: doc["metadata"].pop("annotations"))
    assert verify(files) == [
        f"{NAMESPACE}: Namespace elastic-system lacks the annotation "
        "kustomize.toolkit.fluxcd.io/prune: disabled"
    ]
    # The protected kinds are configurable.
    assert verify_tree(DictTree(files), kustomize=False,
                       protect_from_prune=frozenset({"CustomResourceDefinition"})) == []
    crd = (f"{DEPS}/_cluster/beat.k8s.elastic.co/"
           "CustomResourceDefinition.apiextensions.k8s.io_beats.beat.k8s.elastic.co.yaml")
    edit(files, crd, lambda doc: doc["metadata"]["annotations"].update(
        {"kustomize.toolkit.fluxcd.io/prune": "enabled"}))
    assert f"{crd}: CustomResourceDefinition.apiextensions.k8s.io beats.beat.k8s.elastic.co " \
           "lacks the annotation kustomize.toolkit.fluxcd.io/prune: disabled" in verify(files)


def test_file_not_listed_in_its_kustomization(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    kustomization = f"{EXAMPLE}/kustomization.yaml"
    files[kustomization] = files[kustomization].replace(
        b'- "default_Kibana.kibana.k8s.elastic.co_example.yaml"\n', b"")
    assert verify(files, kustomize=True) == [
        f"{kustomization}: does not list file default_Kibana.kibana.k8s.elastic.co_example.yaml"
    ]


def test_sub_folder_not_listed(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    kustomization = f"{W1}/resources/kustomization.yaml"
    files[kustomization] = layout.kustomization(["default"])
    assert verify(files) == [f"{kustomization}: does not list sub-folder _shared"]


def test_extra_kustomization_entry(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    kustomization = f"{EXAMPLE}/kustomization.yaml"
    files[kustomization] += b"- ghost.yaml\n"
    findings = verify(files, kustomize=HAS_KUBECTL)
    assert findings[0] == (
        f"{kustomization}: lists ghost.yaml, which is not a .yaml file or sub-folder of {EXAMPLE}"
    )
    if HAS_KUBECTL:  # kubectl's own error line, with repository paths
        assert len(findings) == 2
        assert findings[1].startswith(f"{W1}/resources: kubectl kustomize failed: ")
        assert "ghost.yaml" in findings[1]
        assert "statewriter-kustomize" not in findings[1]


def test_kustomization_with_a_transformer_and_a_missing_folder_kustomization(
    eck: dict[str, bytes],
) -> None:
    files = dict(eck)
    kustomization = f"{EXAMPLE}/kustomization.yaml"
    files[kustomization] += b"namespace: elsewhere\n"
    del files[f"{DEPS}/elastic-system/kustomization.yaml"]
    findings = verify(files)
    assert f"{kustomization}: unexpected field(s) namespace (statewriter writes only " \
           "apiVersion, kind and resources)" in findings
    assert f"{DEPS}/elastic-system/kustomization.yaml: missing (every folder below a " \
           "section needs one)" in findings


def test_unowned_object_file(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    stray = f"{EXAMPLE}/default_ConfigMap_stray.yaml"
    files[stray] = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n  namespace: default\n"
    relist(files, f"{W1}/resources")
    assert verify(files, kustomize=True) == [
        f"{stray}: ConfigMap default/stray is not owned by any owner in the index"
    ]


def test_owners_object_missing(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    del files[KIBANA]
    relist(files, f"{W1}/resources")
    assert verify(files, kustomize=True) == [
        f"{KIBANA}: missing; Kibana.kibana.k8s.elastic.co default/example is held by "
        "elastic-cloud default/example pipeline default"
    ]


def test_shared_object_left_in_the_owners_folder(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    shared = f"{W1}/resources/_shared/default/ConfigMap_settings.yaml"
    wrong = f"{EXAMPLE}/default_ConfigMap_settings.yaml"
    files[wrong] = files.pop(shared)
    relist(files, f"{W1}/resources")
    assert verify(files) == [
        f"{wrong}: ConfigMap default/settings belongs at {shared} (owners: elastic-cloud "
        "default/example pipeline default, elastic-cloud default/example pipeline extra)"
    ]


def test_object_moved_from_dependencies_to_resources(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    moved = f"{W1}/resources/_shared/elastic-system/ConfigMap_elastic-operator.yaml"
    files[moved] = files.pop(CONFIGMAP)
    relist(files, f"{W1}/resources")
    relist(files, f"{W1}/dependencies")
    assert verify(files, kustomize=True) == [
        f"{moved}: ConfigMap elastic-system/elastic-operator is in resources but its owners "
        f"placed it in dependencies (expected at {CONFIGMAP})"
    ]


def test_sourceignore_anywhere(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    files[f"{W1}/resources/.sourceignore"] = b"*.yaml\n"
    files[".sourceignore"] = b"worker-1/\n"
    assert verify(files) == [
        ".sourceignore: .sourceignore files are not allowed (Flux would leave out the files "
        "it lists)",
        f"{W1}/resources/.sourceignore: .sourceignore files are not allowed (Flux would leave "
        "out the files it lists)",
    ]


def test_json_file_under_a_destination(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    files[f"{EXAMPLE}/extra.json"] = b"{}"
    files[f"{W1}/notes.yaml"] = b"a: b\n"
    assert sorted(verify(files)) == [
        f"{W1}/notes.yaml: outside {W1}/dependencies and {W1}/resources",
        f"{EXAMPLE}/extra.json: not a .yaml file (only .yaml files may be under a "
        "destination path)",
    ]


def test_object_file_with_two_documents(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    files[KIBANA] += b"---\n" + files[ES]
    findings = verify(files)
    assert f"{KIBANA}: holds 2 documents (an object file holds exactly one)" in findings


def test_missing_section_kustomization_and_missing_destination_path(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    del files[f"{W1}/dependencies/kustomization.yaml"]
    files[".statewriter/destinations/worker-9.json"] = \
        b'{"labels": {}, "name": "worker-9", "path": "worker-9"}\n'
    findings = verify(files, kustomize=True)
    assert f"{W1}/dependencies/kustomization.yaml: missing (both section kustomizations " \
           "must exist)" in findings
    assert "worker-9: the path of destination worker-9 is missing" in findings


def test_files_no_destination_record_owns(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    files["old-worker/resources/kustomization.yaml"] = layout.kustomization([])
    files["README.md"] = b"# state\n"  # documentation at the root is no one's business
    files[".statewriter/destinations/broken.json"] = b"{not json"
    unreadable, *others = verify(files)
    assert unreadable.startswith(".statewriter/destinations/broken.json: unreadable destination "
                                 "record: invalid JSON: ")  # then the json module's own words
    assert unreadable.endswith(" (line 1)")
    assert others == ["old-worker/resources/kustomization.yaml: no destination record owns this path"]


def test_owner_record_in_the_wrong_place(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    record = layout.owner_record_path(OTHER_OWNER)
    copy = record.replace("/default.json", "/copy.json")
    broken = ".statewriter/owners/elastic-cloud/default/broken.json"
    files[copy] = files[record]
    files[broken] = b"[]"
    findings = verify(files)
    (unreadable,) = [f for f in findings if f.startswith(broken)]
    assert unreadable.startswith(f"{broken}: unreadable state record (a value of the wrong type)")
    assert f"{copy}: owner record at the wrong path (or a second record of the same owner)" \
        in findings


def test_resource_edited_outside_statewriter(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    edit(files, KIBANA, lambda doc: doc["spec"].update(count=3))
    assert verify(files, kustomize=True) == [
        f"{KIBANA}: content differs from what its owners wrote (edited outside statewriter?): "
        "elastic-cloud default/example pipeline default"
    ]
    # Shared dependencies may hold another owner's rendering (promise upgrades): not compared.
    files = dict(eck)
    edit(files, CONFIGMAP, lambda doc: doc["data"].update(extra="1"))
    assert verify(files) == []


def test_stored_bundle_documents() -> None:
    store = World()
    store.apply(request_bundle("waiting"))  # no destination yet: kept under .statewriter/
    files = store.files()
    waiting = Owner("elastic-cloud", "default", "waiting", "default")
    folder = layout.stored_bundle_folder(waiting)
    assert f"{folder}/00007.yaml" in files
    assert verify(files) == []
    del files[f"{folder}/00007.yaml"]
    files[f"{folder}/00099.yaml"] = b"{}\n"
    assert verify(files) == [
        f"{folder}/00007.yaml: missing; {layout.owner_record_path(waiting)} keeps 13 "
        "documents of its bundle",
        f"{folder}/00099.yaml: no owner record keeps this stored document",
    ]


def test_symlink_on_disk(eck: dict[str, bytes], tmp_path: Path) -> None:
    root = write_checkout(tmp_path / "checkout", eck)
    assert verify_path(root) == []
    os.symlink("default_Kibana.kibana.k8s.elastic.co_example.yaml", root / EXAMPLE / "link.yaml")
    os.symlink("../../..", root / W1 / "resources" / "up")
    findings = verify_path(root, kustomize=False)
    assert f"{EXAMPLE}/link.yaml: is a symbolic link (no symlinks are allowed)" in findings
    assert f"{W1}/resources/up: is a symbolic link (no symlinks are allowed)" in findings


# -- verify_path and verify_target on real repositories ------------------------------------


def test_verify_path_skips_git(eck: dict[str, bytes], tmp_path: Path) -> None:
    root = write_checkout(tmp_path / "work", eck)
    git("init", "--quiet", "--initial-branch=main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "--quiet", "-m", "state", cwd=root)
    assert verify_path(root) == []
    assert verify_target(str(root)) == []


def test_verify_target_clones_a_bare_repository(eck: dict[str, bytes], tmp_path: Path) -> None:
    repo = bare_repository(tmp_path, eck)
    assert verify_target(str(repo)) == []
    assert verify_target(repo.as_uri()) == []
    broken = dict(eck)
    del broken[KIBANA]
    broken[f"{W1}/resources/extra.json"] = b"{}"
    bad = bare_repository(tmp_path, broken, "broken.git")
    findings = verify_target(str(bad))
    assert f"{W1}/resources/extra.json: not a .yaml file (only .yaml files may be under a " \
           "destination path)" in findings
    assert any(f.startswith(f"{KIBANA}: missing;") for f in findings)
    assert any(f.startswith(f"{EXAMPLE}/kustomization.yaml: lists ") for f in findings)
    if HAS_KUBECTL:  # built in place in the clone; named by repository paths
        (failure,) = [f for f in findings if "kubectl kustomize failed" in f]
        assert failure.startswith(f"{W1}/resources: kubectl kustomize failed: ")
        assert "checkout" not in failure and "statewriter-" not in failure


def test_verify_target_reports_symlinks_committed_to_git(eck: dict[str, bytes],
                                                         tmp_path: Path) -> None:
    root = write_checkout(tmp_path / "work", eck)
    os.symlink("/etc/passwd", root / EXAMPLE / "passwd.yaml")
    git("init", "--quiet", "--initial-branch=main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "--quiet", "-m", "state", cwd=root)
    git("clone", "--quiet", "--bare", str(root), str(tmp_path / "linked.git"))
    findings = verify_target(str(tmp_path / "linked.git"), kustomize=False)
    assert findings[0] == f"{EXAMPLE}/passwd.yaml: is a symbolic link (no symlinks are allowed)"


def test_verify_target_failures_are_findings(tmp_path: Path) -> None:
    assert verify_target(str(tmp_path / "nowhere")) == [f"{tmp_path / 'nowhere'}: no such "
                                                        "directory or repository"]
    findings = verify_target("file:///nonexistent/state.git")
    assert len(findings) == 1
    assert findings[0].startswith("file:///nonexistent/state.git: git clone failed: ")
    findings = verify_target("https://user:s3cret@127.0.0.1:9/state.git")
    assert findings[0].startswith("https://***@127.0.0.1:9/state.git: git clone failed: ")
    assert "s3cret" not in findings[0]


# -- invariant 7: every path segment fits in 255 bytes -----------------------------------------


LONG = "notes-" + "\u00e9" * 150 + ".md"  # 159 characters, 309 bytes: bytes are what count


def segment_finding(path: str, size: int) -> str:
    return f"{path}: a path segment of {size} bytes (at most 255) cannot be checked out on Linux"


def test_a_path_segment_over_255_bytes(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    files[LONG] = b"# notes\n"  # documentation at the root: only its name is wrong
    folder = "d" * 300
    files[f"{folder}/a.md"] = files[f"{folder}/b.md"] = b"# notes\n"
    assert verify(files) == [
        segment_finding(folder, 300),  # named once, not once per file below it
        segment_finding(LONG, 309),
        f"{folder}/a.md: no destination record owns this path",
        f"{folder}/b.md: no destination record owns this path",
    ]


def test_verify_target_names_a_name_no_checkout_can_hold(eck: dict[str, bytes],
                                                         tmp_path: Path) -> None:
    repo = bare_repository(tmp_path, {**eck, LONG: b"# notes\n"},
                           symlinks={"passwd.md": "/etc/passwd"})
    # A checkout would fail: the tree is read from git's objects, every check still runs.
    assert verify_target(str(repo), kustomize=HAS_KUBECTL) == [
        "passwd.md: is a symbolic link (no symlinks are allowed)",
        segment_finding(LONG, 309),
    ]


def test_verify_target_names_the_files_a_checkout_cannot_write(tmp_path: Path) -> None:
    deep = "/".join(["d" * 250] * 17) + "/notes.md"  # every segment fits, the path does not
    assert len(deep.encode()) > 4096
    repo = bare_repository(tmp_path, {deep: b"# notes\n"})
    findings = verify_target(str(repo), kustomize=False)
    assert findings[0].startswith(f"{deep}: cannot be checked out: ")
    assert findings[1:] == [f"{deep}: no destination record owns this path"]


# -- the layout record -----------------------------------------------------------------------


LAYOUT_1 = f".statewriter: layout 1: statewriter migrates it to layout {layout.VERSION} at start-up"


def test_a_store_without_its_layout_record_is_layout_1(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    del files[layout.LAYOUT_RECORD]
    assert verify(files, kustomize=True) == [LAYOUT_1]


def test_a_newer_layout_is_one_finding(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    newer = layout.VERSION + 1
    files[layout.LAYOUT_RECORD] = f'{{"version": {newer}}}\n'.encode()
    del files[KIBANA]  # not judged: a newer layout may keep it elsewhere
    assert verify(files, kustomize=True) == [
        f".statewriter/layout.json: layout {newer} is newer than this statewriter's "
        f"({layout.VERSION}): verify it with a newer statewriter"
    ]


def test_a_repository_without_the_commit_to_verify_is_a_finding(tmp_path: Path) -> None:
    repo = tmp_path / "empty.git"
    git("init", "--quiet", "--bare", str(repo))
    assert verify_target(str(repo)) == [
        f"{repo}: no commit to verify (an empty repository, or its HEAD names a branch that "
        "does not exist: pass --branch)"
    ]


def test_the_layout_1_fixture_store(tmp_path: Path) -> None:
    repo = v1_store(tmp_path)
    files = main_branch_files(repo)
    findings = without_invariant_9(verify(files))
    assert without_invariant_9(verify_target(str(repo), kustomize=False)) == findings  # cloned
    # One finding for the layout, none for the paths the migration moves; the rest is what
    # layout 1 wrote wrongly: a name too long, unquoted names and values YAML misreads.
    (long,) = [p for p in files if any(len(s.encode()) > 255 for s in p.split("/"))]
    assert findings[:2] == [LAYOUT_1, segment_finding(long, len(long.split("/")[-1].encode()))]
    assert findings[2:]
    for finding in findings[2:]:
        assert finding.endswith(("resources must be a list of file and folder names",
                                 "reads differently under YAML 1.1, YAML 1.2 and Go readers "
                                 "(quote it)")), finding
    # The same, read from a clone's objects (a checkout cannot hold the long name).
    assert without_invariant_9(verify_target(str(repo), kustomize=False, branch="main")) == findings
    # Layout 1's objects are still checked against their owners, wherever they are.
    (cache,) = [p for p in files if p.endswith("/default_ConfigMap_cache.yaml")]
    del files[cache]
    assert f"{W1}/resources: missing; ConfigMap default/cache is held by redis default/cache " \
           "pipeline default" in verify(files)


def test_the_layout_1_fixture_store_verifies_clean_once_migrated(tmp_path: Path) -> None:
    files = main_branch_files(v1_store(tmp_path))
    tree = DictTree(files)
    plan = plan_migrate(Index.load(tree), tree)
    for path, content in plan.changes.items():
        if content is None:
            del files[path]
        else:
            files[path] = content
    assert without_invariant_9(verify(files, kustomize=True)) == []


def test_the_layout_2_fixture_store_is_one_finding_until_migrated(tmp_path: Path) -> None:
    files = main_branch_files(layout_store(tmp_path / "v2.git", 2))
    layout_2 = (f"{layout.LAYOUT_RECORD}: layout 2: statewriter migrates it to layout "
                f"{layout.VERSION} at start-up")
    assert without_invariant_9(verify(files, kustomize=True)) == [layout_2]
    # its dependencies are still checked against their owners, wherever they are in the section
    (namespace,) = [p for p in files if p.startswith(f"{W1}/dependencies/")
                    and p.endswith("/Namespace_elastic-system.yaml")]
    missing = dict(files)
    del missing[namespace]
    assert f"{DEPS}: missing; Namespace elastic-system is held by elastic-cloud default/example " \
           "pipeline default, elastic-cloud default/second-request pipeline default" \
           in verify(missing)
    tree = DictTree(files)
    for path, content in plan_migrate(Index.load(tree), tree).changes.items():
        if content is None:
            del files[path]
        else:
            files[path] = content
    assert without_invariant_9(verify(files, kustomize=True)) == []


# -- invariant 8: values survive the trip ----------------------------------------------------


def test_plain_scalars_that_yaml_readers_read_differently(eck: dict[str, bytes]) -> None:
    files = dict(eck)
    # A shared dependency: its content is not compared with what its owners wrote.
    files[CONFIGMAP] = (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elastic-operator\n"
                        b"  namespace: elastic-system\ndata:\n  zip: 08544\n  quoted: '08544'\n")
    assert verify(files) == [
        f"{CONFIGMAP}: line 7: plain scalar '08544' reads differently under YAML 1.1, YAML 1.2 "
        "and Go readers (quote it)"
    ]


def test_kustomization_entries_are_checked_too() -> None:
    store = World()
    store.destination(W1, {})
    store.apply({"promise": "redis", "request": {"namespace": "1e3", "name": "cache"},
                 "files": {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"}})
    files = store.files()
    assert verify(files, kustomize=True) == []
    kustomization = f"{W1}/resources/kustomization.yaml"
    files[kustomization] = files[kustomization].replace(b'"1e3"', b"1e3")
    assert verify(files) == [
        f"{kustomization}: line 4: plain scalar '1e3' reads differently under YAML 1.1, "
        "YAML 1.2 and Go readers (quote it)"
    ]


# -- a check that cannot run is not a pass ----------------------------------------------------


NO_KUBECTL = ("/nonexistent/kubectl not found: cannot build worker-1/dependencies, "
              "worker-1/resources; pass --no-kustomize to skip the builds")


def test_missing_kubectl_is_a_finding(eck: dict[str, bytes]) -> None:
    assert verify_tree(DictTree(eck), kubectl="/nonexistent/kubectl") == [NO_KUBECTL]
    assert verify_tree(DictTree(eck), kustomize=False, kubectl="/nonexistent/kubectl") == []


def test_the_command_fails_without_kubectl(eck: dict[str, bytes], tmp_path: Path) -> None:
    root = write_checkout(tmp_path / "checkout", eck)
    empty = tmp_path / "bin"
    empty.mkdir()

    def statewriter_verify(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", "verify", *args], cwd=ROOT,
                              capture_output=True, text=True, env={**ENV, "PATH": str(empty)})

    failed = statewriter_verify(str(root))
    assert failed.returncode != 0
    assert "kubectl not found: cannot build" in failed.stdout, failed.stdout + failed.stderr
    skipped = statewriter_verify(str(root), "--no-kustomize")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr


# -- large sections are built in pieces -------------------------------------------------------


def test_sections_built_in_pieces(eck: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builds, "KUSTOMIZE_CHUNK", 4)  # every folder its own piece
    assert verify(eck, kustomize=True) == []  # stubs around each piece build
    files = dict(eck)
    files[f"{EXAMPLE}/kustomization.yaml"] += b"- ghost.yaml\n"
    findings = verify(files, kustomize=True)
    assert findings[0].startswith(f"{EXAMPLE}/kustomization.yaml: lists ghost.yaml")
    (failure,) = findings[1:]
    # Built from the piece's folder, not from the section.
    assert failure.startswith(f"{EXAMPLE}: kubectl kustomize failed: "), failure
    assert "ghost.yaml" in failure
    # A folder with more entries than a piece holds (dependencies/elastic-system/_core has
    # two objects and its kustomization) is split.
    monkeypatch.setattr(builds, "KUSTOMIZE_CHUNK", 2)
    folder = CONFIGMAP.rpartition("/")[0]
    broken = dict(eck)
    broken[CONFIGMAP] += b"  bad: [\n"
    findings = verify(broken, kustomize=True)
    assert findings[0].startswith(f"{CONFIGMAP}: document 0: invalid YAML")
    assert len(findings) == 2, findings
    assert findings[1].startswith(f"{folder}: kubectl kustomize failed: "), findings


# -- scale ------------------------------------------------------------------------------------


def test_ten_thousand_files_verify() -> None:
    store = World()
    store.destination(W1, {})
    for request in range(3):
        documents = "".join(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{request}-{i}\n"
            f"data:\n  value: '{i}'\n"
            for i in range(3400)
        )
        store.apply({"promise": "many", "request": {"namespace": "team", "name": f"r{request}"},
                     "files": {"all.yaml": documents}})
    files = store.files()
    assert len(files) > 10_000
    tree = DictTree(files)
    assert verify_tree(tree, kustomize=False) == []
    assert verify_tree(tree) == []  # with the builds: every piece builds
