"""The real-world corpus (tests/fixtures/corpus) stays honest: every file parses, every document
is an object, index.json lists every file and the CRDs each file's custom resources need, and
kustomize builds every source."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import CORPUS_ROOT, KUBECTL

INDEX = CORPUS_ROOT / "index.json"
FIELDS = {"path", "source", "kubernetes", "crds", "notes"}
# API groups served by every cluster: no CRD is needed for them (gateway.networking.k8s.io is a CRD)
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}
Document = dict[str, Any]


def yaml_files() -> list[str]:
    return sorted(p.relative_to(CORPUS_ROOT).as_posix() for p in CORPUS_ROOT.rglob("*")
                  if p.suffix in (".yaml", ".yml") and p.is_file())


@cache
def documents(path: str) -> tuple[Any, ...]:
    """The file's documents as PyYAML reads them, empty documents (None) left out."""
    return tuple(d for d in yaml.safe_load_all((CORPUS_ROOT / path).read_bytes()) if d is not None)


@cache
def index() -> dict[str, dict[str, Any]]:
    entries = json.loads(INDEX.read_text())
    assert isinstance(entries, list)
    by_path = {e["path"]: e for e in entries}
    assert len(by_path) == len(entries), "index.json lists a path twice"
    return by_path


def group_of(doc: Document) -> str:
    return str(doc["apiVersion"]).rpartition("/")[0]


def is_builtin(group: str) -> bool:
    return group in BUILTIN_GROUPS or (group.endswith(".k8s.io") and group != "gateway.networking.k8s.io")


def crds_in(path: str) -> Iterator[Document]:
    for doc in documents(path):
        if doc.get("kind") == "CustomResourceDefinition" and group_of(doc) == "apiextensions.k8s.io":
            yield doc


@cache
def defined_kinds() -> dict[tuple[str, str], set[str]]:
    """(group, kind) -> the served versions, over every CRD in the corpus."""
    kinds: dict[tuple[str, str], set[str]] = {}
    for path in yaml_files():
        for crd in crds_in(path):
            spec = crd["spec"]
            served = {v["name"] for v in spec["versions"] if v.get("served")}
            kinds.setdefault((spec["group"], spec["names"]["kind"]), set()).update(served)
    return kinds


# -- every file, every document ----------------------------------------------------------------


def test_corpus_has_files_from_several_sources() -> None:
    assert len({path.split("/")[0] for path in yaml_files()}) >= 10


@pytest.mark.parametrize("path", yaml_files())
def test_corpus_file_parses_as_yaml(path: str) -> None:
    documents(path)  # PyYAML's safe_load_all, kept for the tests below


@pytest.mark.parametrize("path", yaml_files())
def test_every_document_is_an_object_with_api_version_kind_and_name(path: str) -> None:
    docs = documents(path)
    assert docs, f"{path}: no documents"
    for number, doc in enumerate(docs):
        assert isinstance(doc, dict), f"{path} #{number}: a {type(doc).__name__}, not a mapping"
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], f"{path} #{number}: apiVersion"
        assert isinstance(doc.get("kind"), str) and doc["kind"], f"{path} #{number}: kind"
        assert doc["kind"] != "List", f"{path} #{number}: kind List (statewriter refuses Lists)"
        metadata = doc.get("metadata")
        assert isinstance(metadata, dict) and isinstance(metadata.get("name"), str) and metadata["name"], \
            f"{path} #{number}: metadata.name"


# -- index.json ---------------------------------------------------------------------------------


def test_index_lists_every_corpus_yaml_file_and_only_those() -> None:
    listed, present = set(index()), set(yaml_files())
    assert sorted(listed - present) == [], "listed in index.json but missing"
    assert sorted(present - listed) == [], "corpus files missing from index.json"


def test_index_entries_have_the_documented_fields() -> None:
    for path, entry in index().items():
        assert set(entry) == FIELDS, f"{path}: fields {sorted(entry)}"
        assert entry["source"] == path.split("/")[0], f"{path}: source {entry['source']}"
        assert (CORPUS_ROOT / entry["source"]).is_dir()
        assert entry["kubernetes"] is None or re.fullmatch(r"1\.\d+", entry["kubernetes"]), path
        assert isinstance(entry["crds"], list) and isinstance(entry["notes"], str), path


def test_index_crd_paths_exist_and_hold_crds() -> None:
    for path, entry in index().items():
        for crd_path in entry["crds"]:
            assert crd_path in index(), f"{path}: CRD file {crd_path} not in the corpus"
            assert list(crds_in(crd_path)), f"{path}: {crd_path} holds no CustomResourceDefinition"


def test_index_names_a_crd_serving_each_custom_resource() -> None:
    """Each custom resource's kind (and version) is defined by one of the entry's CRD files,
    whenever any CRD in the corpus defines it; and every listed CRD file is needed."""
    known = defined_kinds()
    for path, entry in index().items():
        listed: dict[tuple[str, str], set[str]] = {}
        for crd_path in entry["crds"]:
            for crd in crds_in(crd_path):
                spec = crd["spec"]
                listed.setdefault((spec["group"], spec["names"]["kind"]), set()).update(
                    v["name"] for v in spec["versions"] if v.get("served"))
        used: set[tuple[str, str]] = set()
        for doc in documents(path):
            group, version = group_of(doc), str(doc["apiVersion"]).rpartition("/")[2]
            key = (group, doc["kind"])
            if is_builtin(group) or key not in known:
                continue
            assert key in listed, f"{path}: {doc['kind']}.{group} needs a CRD file in its crds"
            assert version in listed[key], f"{path}: {doc['kind']}.{group} {version} is not served"
            used.add(key)
        for crd_path in entry["crds"]:
            kinds = {(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in crds_in(crd_path)}
            assert kinds & used, f"{path}: {crd_path} defines none of its kinds"


# -- kustomize ------------------------------------------------------------------------------------


def resource_keys(path: str) -> list[tuple[str, str, str]]:
    """What kustomize identifies an object by, less the namespace (so never too few groups)."""
    return [(group_of(doc), doc["kind"], doc["metadata"]["name"]) for doc in documents(path)]


def kustomize_groups() -> dict[str, list[list[str]]]:
    """Per source, its files in as few groups as keep each group free of duplicate objects
    (kustomize refuses two objects with one identity; a source may hold several variants)."""
    groups: dict[str, list[list[str]]] = {}
    for source in sorted({path.split("/")[0] for path in yaml_files()}):
        placed: list[tuple[list[str], set[tuple[str, str, str]]]] = []
        for path in (p for p in yaml_files() if p.split("/")[0] == source):
            keys = set(resource_keys(path))
            for files, taken in placed:
                if not keys & taken:
                    files.append(path)
                    taken |= keys
                    break
            else:
                placed.append(([path], keys))
        groups[source] = [files for files, _ in placed]
    return groups


def build(folder: Path) -> subprocess.CompletedProcess[str]:
    assert KUBECTL, "kubectl is needed for these tests"
    return subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)


def test_no_corpus_file_holds_one_object_twice() -> None:
    for path in yaml_files():
        keys = resource_keys(path)
        assert len(keys) == len(set(keys)), f"{path}: an object twice"


def test_kustomize_builds_every_source(tmp_path: Path) -> None:
    folders: dict[Path, list[str]] = {}
    for source, groups in kustomize_groups().items():
        for number, files in enumerate(groups):
            folder = tmp_path / f"{source}-{number}"
            for path in files:
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(CORPUS_ROOT / path, folder / path)
            (folder / "kustomization.yaml").write_text(yaml.safe_dump({"resources": files}))
            folders[folder] = files
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(folders, pool.map(build, folders), strict=True))
    for folder, proc in results.items():
        assert proc.returncode == 0, f"kubectl kustomize {folder.name} ({folders[folder]}): {proc.stderr}"
        built = [d for d in yaml.safe_load_all(proc.stdout) if d is not None]
        expected = sum(len(documents(path)) for path in folders[folder])
        assert len(built) == expected, f"{folder.name}: kustomize built {len(built)} of {expected} objects"
