"""Folders and file names: which files a destination path may hold (invariant 6), what each
folder's kustomization lists (invariant 1, read without kustomize), and path segments that
no Linux checkout can hold (invariant 7)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import yaml

from gitops import layout
from gitops.destination import Destination
from gitops.isolation import FLUX_FOLDER
from gitops.layout import DEPENDENCIES, KUSTOMIZATION, RESOURCES, SECTIONS
from gitops.verify.findings import first_line

SOURCEIGNORE = ".sourceignore"
KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"
KUSTOMIZATION_FIELDS = frozenset({"apiVersion", "kind", "resources"})
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Folder:
    """What one folder below a section holds: file names and sub-folder names."""

    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)


Folders = defaultdict[str, Folder]


class ObjectFile(NamedTuple):
    path: str
    section: str
    content: bytes


class DestinationFiles(NamedTuple):
    """One destination's files sorted by section, with the folders they make."""

    sections: dict[str, dict[str, bytes]]  # section -> path -> content
    folders: Folders
    objects: list[ObjectFile]  # every .yaml file but the kustomizations


def long_segments(paths: Iterable[str]) -> list[str]:
    """Invariant 7: every path segment is at most layout.MAX_SEGMENT bytes. A folder whose
    name is too long is named once, not once per file below it."""
    findings: list[str] = []
    named: set[str] = set()
    for path in paths:
        parts = path.split("/")
        for depth, part in enumerate(parts):
            size = len(part.encode(errors="surrogateescape"))  # names git or the disk gave
            if size > layout.MAX_SEGMENT:
                where = "/".join(parts[: depth + 1])
                if where not in named:
                    named.add(where)
                    findings.append(f"{where}: a path segment of {size} bytes (at most "
                                    f"{layout.MAX_SEGMENT}) cannot be checked out on Linux")
                break
    return findings


def sort_destination(
    destination: Destination, files: Mapping[str, bytes], findings: list[str]
) -> DestinationFiles:
    """Files outside both sections and files that are not .yaml are findings (invariant 6);
    the rest are sorted into sections, folders and object files."""
    root = destination.path
    sorted_files = DestinationFiles({s: {} for s in SECTIONS}, defaultdict(Folder), [])
    for path, content in files.items():
        section, sep, _ = path[len(root) + 1:].partition("/")
        if section not in sorted_files.sections or not sep:
            findings.append(f"{path}: outside {root}/{DEPENDENCIES} and {root}/{RESOURCES}")
            continue
        sorted_files.sections[section][path] = content
        _note(f"{root}/{section}", path, sorted_files.folders)
        name = path.rpartition("/")[2]
        if not name.endswith(".yaml"):
            findings.append(f"{path}: not a .yaml file (only .yaml files may be under "
                            "a destination path)")
        elif name != KUSTOMIZATION:
            sorted_files.objects.append(ObjectFile(path, section, content))
    return sorted_files


def _note(section: str, path: str, folders: Folders) -> None:
    """Records `path` in its folder and each folder in its parent, up to `section`."""
    folder, _, name = path.rpartition("/")
    folders[folder].files.add(name)
    while folder != section:
        parent, _, child = folder.rpartition("/")
        seen = child in folders[parent].folders
        folders[parent].folders.add(child)
        if seen:
            return
        folder = parent


def check_listings(
    destination: Destination, tree: DestinationFiles, files: Mapping[str, bytes],
    findings: list[str],
) -> None:
    """Both section kustomizations exist, and every folder's lists exactly what it holds."""
    for section in SECTIONS:
        kustomization = f"{destination.section(section)}/{KUSTOMIZATION}"
        if kustomization not in files:
            findings.append(f"{kustomization}: missing (both section kustomizations must exist)")
    resources = destination.section(RESOURCES)
    for folder in sorted(tree.folders):
        expected = _listable(tree.folders[folder])
        if destination.isolated and folder == resources:
            expected = {FLUX_FOLDER}  # the namespaces' Kustomizations only
        elif destination.isolated and folder.rpartition("/")[0] == resources:
            shared = f"{resources}/{layout.SHARED}/{folder.rpartition('/')[2]}"
            if shared in tree.folders and folder.rpartition("/")[2] != layout.SHARED:
                expected.add(f"../{layout.SHARED}/{folder.rpartition('/')[2]}")
        _check_kustomization(folder, tree.folders[folder], expected, files, findings)


def _listable(entries: Folder) -> set[str]:
    """What a folder's kustomization lists: its .yaml files and its sub-folders."""
    return {f for f in entries.files if f.endswith(".yaml") and f != KUSTOMIZATION} | entries.folders


def _check_kustomization(
    folder: str, entries: Folder, expected: set[str], files: Mapping[str, bytes],
    findings: list[str],
) -> None:
    path = f"{folder}/{KUSTOMIZATION}"
    content = files.get(path)
    if content is None:
        findings.append(f"{path}: missing (every folder below a section needs one)")
        return
    try:
        data = yaml.load(content, Loader=_YAML_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        findings.append(f"{path}: invalid YAML: {first_line(str(error))}")
        return
    if not isinstance(data, dict):
        findings.append(f"{path}: not a Kustomization")
        return
    if data.get("apiVersion") != KUSTOMIZATION_API or data.get("kind") != "Kustomization":
        findings.append(f"{path}: not a {KUSTOMIZATION_API} Kustomization")
    extra = sorted(str(key) for key in data if key not in KUSTOMIZATION_FIELDS)
    if extra:
        findings.append(f"{path}: unexpected field(s) {', '.join(extra)} "
                        "(statewriter writes only apiVersion, kind and resources)")
    listed = data.get("resources")
    if listed is None:
        listed = []
    if not isinstance(listed, list) or not all(isinstance(e, str) for e in listed):
        findings.append(f"{path}: resources must be a list of file and folder names")
        return
    seen: set[str] = set()
    for entry in listed:
        plain = _plain_entry(entry)
        if plain in seen:
            findings.append(f"{path}: lists {entry} twice")
        elif plain not in expected and expected == {FLUX_FOLDER}:
            findings.append(f"{path}: lists {entry}: the resources of a destination isolated "
                            f"by namespace list only {FLUX_FOLDER} (each namespace's Kustomization)")
        elif plain not in expected:
            findings.append(f"{path}: lists {entry}, which is not a .yaml file or sub-folder "
                            f"of {folder}")
        seen.add(plain)
    for missing in sorted(expected - seen):
        what = "sub-folder" if missing in entries.folders else "file"
        findings.append(f"{path}: does not list {what} {missing}")


def _plain_entry(entry: str) -> str:
    while entry.startswith("./"):
        entry = entry[2:]
    return entry.rstrip("/")
