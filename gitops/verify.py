"""`statewriter verify`: the invariants of CONTRACT section 3, checked on any tree.

One pass reads every file; everything else works on what that pass collected. Findings
are plain strings, one per problem, each starting with the repository path it is about,
so a CI log reads like a compiler's. `kubectl kustomize` runs on a copy of each section
written to a temporary folder: once per section, or once per group of folders on sections
too large for kustomize to build in seconds (see `_builds`), in parallel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops import layout, names
from gitops.bundle import document_problem
from gitops.identity import BUILTIN_CLUSTER_SCOPED, Identity, crd_defines, group_of
from gitops.index import Holders, Index, OwnerRecord, destination_from_json
from gitops.layout import DEPENDENCIES, KUSTOMIZATION, RESOURCES, SECTIONS, STATE, Destination
from gitops.normalize import DEFAULT_PROTECTED, PRUNE_ANNOTATION
from gitops.tree import DictTree, Tree, blob_id
from gitops.yamldocs import ParseLimits, YamlError, load_documents

SOURCEIGNORE = ".sourceignore"
KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"
KUSTOMIZATION_FIELDS = frozenset({"apiVersion", "kind", "resources"})
# Generous but bounded: a repository under verification is not trusted either.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PARSE_LIMITS = ParseLimits(max_depth=256, max_nodes=5_000_000, max_documents=10_000)
_KUBECTL_TIMEOUT = 600
KUSTOMIZE_CHUNK = 500  # files per `kubectl kustomize` run on large sections (see _builds)
_CLONE_TIMEOUT = 600
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")


def verify_tree(
    tree: Tree,
    kustomize: bool = True,
    kubectl: str = "kubectl",
    *,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
) -> list[str]:
    """Every violation of CONTRACT section 3 in `tree`, one finding per problem."""
    return _Verifier(dict(tree.files("")), protect_from_prune).run(kustomize, kubectl)


def verify_path(
    root: Path,
    kustomize: bool = True,
    kubectl: str = "kubectl",
    *,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
) -> list[str]:
    """`verify_tree` on a checkout (its `.git` skipped), plus the symlinks found on disk."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    files: dict[str, bytes] = {}
    findings: list[str] = []
    for rel, entry in _walk(root, ""):
        if entry.is_symlink():
            findings.append(f"{rel}: is a symbolic link (no symlinks are allowed)")
        elif entry.is_file(follow_symlinks=False):
            try:
                files[rel] = Path(entry.path).read_bytes()
            except OSError as error:
                findings.append(f"{rel}: cannot be read: {error.strerror}")
    # With nothing on disk that the tree leaves out, sections built whole are built in place.
    disk = None if findings else root
    verifier = _Verifier(files, protect_from_prune, disk)
    findings.extend(verifier.run(kustomize, kubectl))
    return findings


def verify_target(
    target: str,
    kustomize: bool = True,
    kubectl: str = "kubectl",
    *,
    branch: str | None = None,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
) -> list[str]:
    """A checkout directory is verified in place; a bare repository or a git URL
    (file://, git://, http(s)://, ssh://, user@host:path) is cloned first (depth 1)."""
    local = Path(target)
    if "://" not in target and local.is_dir() and not _is_bare_repository(local):
        if branch is not None:
            return [f"{target}: --branch applies only to repositories that are cloned"]
        return verify_path(local, kustomize, kubectl, protect_from_prune=protect_from_prune)
    if "://" not in target and not local.exists() and not _looks_like_scp_url(target):
        return [f"{target}: no such directory or repository"]
    url = local.resolve().as_uri() if "://" not in target and local.exists() else target
    shown = _redact_url(target)
    with tempfile.TemporaryDirectory(prefix="statewriter-verify-") as temp:
        checkout = Path(temp) / "checkout"
        command = ["git", "clone", "--quiet", "--depth", "1", "--no-tags"]
        if branch is not None:
            command += ["--branch", branch, "--single-branch"]
        command += ["--end-of-options", url, str(checkout)]
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
               "GIT_CONFIG_NOSYSTEM": "1"}
        try:
            proc = subprocess.run(command, capture_output=True, text=True, env=env,
                                  timeout=_CLONE_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return [f"{shown}: git clone failed: {_redact_url(str(error))}"]
        if proc.returncode != 0:
            return [f"{shown}: git clone failed: {_redact_url(_first_line(proc.stderr))}"]
        return verify_path(checkout, kustomize, kubectl, protect_from_prune=protect_from_prune)


# -- the checks ------------------------------------------------------------------------------


_Build = tuple[str, dict[str, bytes], bool]  # folder to build, files to write, whole section


@dataclass
class _Object:
    path: str
    section: str
    doc: dict[str, Any]
    identity: Identity | None = None  # None when it cannot be told (namespace missing)


@dataclass
class _Folder:
    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)


class _Verifier:
    def __init__(
        self, files: dict[str, bytes], protect_from_prune: frozenset[str], disk: Path | None = None
    ) -> None:
        self.files = files
        self.disk = disk  # a checkout holding exactly `files`, or None
        self.protected = protect_from_prune
        self.findings: list[str] = []
        self.unreadable_records: set[str] = set()
        self.unreadable_objects: set[str] = set()

    def unreadable(self, path: str) -> bool:
        return path in self.unreadable_records

    def add(self, finding: str) -> None:
        self.findings.append(finding)

    def run(self, kustomize: bool, kubectl: str) -> list[str]:
        state = {p: c for p, c in self.files.items() if p.startswith(STATE + "/")}
        destinations = self.destinations(state)
        index = self.index(state, destinations)
        placed: dict[str, dict[str, bytes]] = {d.name: {} for d in destinations.values()}
        by_path = {d.path: d for d in destinations.values()}
        for path, content in self.files.items():
            name = path.rpartition("/")[2]
            if name == SOURCEIGNORE:
                self.add(f"{path}: .sourceignore files are not allowed "
                         "(Flux would leave out the files it lists)")
                continue
            if path.startswith(STATE + "/"):
                continue
            destination = _destination_of(path, by_path)
            if destination is not None:
                placed[destination.name][path] = content
            elif "/" in path or name.endswith((".yaml", ".yml", ".json")):
                # Root-level documentation (README.md, ...) is no one's business.
                self.add(f"{path}: no destination record owns this path")
        jobs: list[_Build] = []
        for name in sorted(placed):
            destination = destinations[name]
            jobs.extend(self.destination(destination, placed[name], index))
        if kustomize and jobs and shutil.which(kubectl):
            self.findings.extend(_kustomize_all(kubectl, jobs, self.disk))
        return self.findings

    # -- .statewriter/ -------------------------------------------------------------------

    def destinations(self, state: dict[str, bytes]) -> dict[str, Destination]:
        found: dict[str, Destination] = {}
        prefix = layout.DESTINATIONS_DIR + "/"
        for path in sorted(p for p in state if p.startswith(prefix)):
            file = path[len(prefix):]
            if "/" in file or not file.endswith(".json"):
                self.add(f"{path}: not a destination record (expected {prefix}<name>.json)")
                continue
            try:
                destination = destination_from_json(state[path])
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                self.add(f"{path}: unreadable destination record: {_describe(error)}")
                continue
            if not isinstance(destination.path, str) or not layout.is_valid_destination_path(
                destination.path
            ):
                self.add(f"{path}: destination path {destination.path!r} is not valid")
                continue
            if destination.name != file[: -len(".json")] or not names.is_label(destination.name):
                self.add(f"{path}: record names destination {destination.name!r}")
                continue
            for other in found.values():
                if layout.paths_overlap(other.path, destination.path):
                    self.add(f"{path}: path {destination.path!r} overlaps destination "
                             f"{other.name!r} at {other.path!r}")
                    break
            else:
                found[destination.name] = destination
        return found

    def index(self, state: dict[str, bytes], destinations: dict[str, Destination]) -> Index:
        try:
            index = Index.load(DictTree(state))
        except (ValueError, KeyError, TypeError, AttributeError):
            index = self.index_by_record(state)
        owners_dir = layout.OWNERS_DIR + "/"
        record_paths = {layout.owner_record_path(owner) for owner, _ in index.owners.items()}
        for path in sorted(p for p in state if p.startswith(owners_dir)):
            if not path.endswith(".json"):
                self.add(f"{path}: not an owner record (expected .json)")
            elif path not in record_paths and not self.unreadable(path):
                self.add(f"{path}: owner record at the wrong path (or a second record "
                         "of the same owner)")
        stored: set[str] = set()
        for owner, record in sorted(index.owners.items(), key=lambda item: item[0]):
            where = layout.owner_record_path(owner)
            for name in sorted(set(record.objects) | set(record.destinations)):
                if name not in destinations:
                    self.add(f"{where}: {owner} holds objects in destination {name!r}, "
                             "which has no valid destination record")
            folder = layout.stored_bundle_folder(owner)
            for position in range(record.stored_documents):
                path = f"{folder}/{position:05d}.yaml"
                stored.add(path)
                if path not in state:
                    self.add(f"{path}: missing; {where} keeps {record.stored_documents} "
                             "documents of its bundle")
        bundles = layout.BUNDLES_DIR + "/"
        for path in sorted(p for p in state if p.startswith(bundles) and p not in stored):
            self.add(f"{path}: no owner record keeps this stored document")
        return index

    def index_by_record(self, state: dict[str, bytes]) -> Index:
        """The index built record by record, reporting the records that cannot be read."""
        index = Index()
        for path, data in sorted(state.items()):
            if path.startswith(layout.DESTINATIONS_DIR + "/"):
                try:
                    destination = destination_from_json(data)
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # reported by destinations()
                index.destinations[destination.name] = destination
            elif path.startswith(layout.OWNERS_DIR + "/") and path.endswith(".json"):
                try:
                    record = OwnerRecord.from_json(data)
                except (ValueError, KeyError, TypeError, AttributeError) as error:
                    self.add(f"{path}: unreadable owner record: {_describe(error)}")
                    self.unreadable_records.add(path)
                    continue
                index.put_owner(record)
        return index

    # -- one destination -----------------------------------------------------------------

    def destination(
        self, destination: Destination, files: dict[str, bytes], index: Index
    ) -> list[_Build]:
        """Checks one destination; returns what `kubectl kustomize` should build."""
        root = destination.path
        if not files:
            self.add(f"{root}: the path of destination {destination.name} is missing")
            return []
        sections: dict[str, dict[str, bytes]] = {s: {} for s in SECTIONS}
        folders: dict[str, _Folder] = defaultdict(_Folder)
        objects: list[_Object] = []
        for path, content in files.items():
            rest = path[len(root) + 1:]
            section, sep, _ = rest.partition("/")
            if section not in sections or not sep:
                self.add(f"{path}: outside {root}/{DEPENDENCIES} and {root}/{RESOURCES}")
                continue
            sections[section][path] = content
            self.note_folders(f"{root}/{section}", path, folders)
            name = path.rpartition("/")[2]
            if not name.endswith(".yaml"):
                self.add(f"{path}: not a .yaml file (only .yaml files may be under "
                         "a destination path)")
            elif name != KUSTOMIZATION:
                objects.extend(self.parse_object(path, section, content))
        build = []
        for section in SECTIONS:
            kustomization = f"{root}/{section}/{KUSTOMIZATION}"
            if kustomization not in files:
                self.add(f"{kustomization}: missing (both section kustomizations must exist)")
            else:
                build.extend(_builds(f"{root}/{section}", sections[section], folders))
        for folder in sorted(folders):
            self.check_kustomization(folder, folders[folder], files)
        self.check_objects(destination, objects, index)
        return build

    @staticmethod
    def note_folders(section: str, path: str, folders: dict[str, _Folder]) -> None:
        folder, _, name = path.rpartition("/")
        folders[folder].files.add(name)
        while folder != section:
            parent, _, child = folder.rpartition("/")
            seen = child in folders[parent].folders
            folders[parent].folders.add(child)
            if seen:
                return
            folder = parent

    def check_kustomization(self, folder: str, entries: _Folder, files: Mapping[str, bytes]) -> None:
        path = f"{folder}/{KUSTOMIZATION}"
        content = files.get(path)
        if content is None:
            self.add(f"{path}: missing (every folder below a section needs one)")
            return
        try:
            data = yaml.load(content, Loader=_YAML_LOADER)
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            self.add(f"{path}: invalid YAML: {_first_line(str(error))}")
            return
        if not isinstance(data, dict):
            self.add(f"{path}: not a Kustomization")
            return
        if data.get("apiVersion") != KUSTOMIZATION_API or data.get("kind") != "Kustomization":
            self.add(f"{path}: not a {KUSTOMIZATION_API} Kustomization")
        extra = sorted(str(key) for key in data if key not in KUSTOMIZATION_FIELDS)
        if extra:
            self.add(f"{path}: unexpected field(s) {', '.join(extra)} "
                     "(statewriter writes only apiVersion, kind and resources)")
        listed = data.get("resources")
        if listed is None:
            listed = []
        if not isinstance(listed, list) or not all(isinstance(e, str) for e in listed):
            self.add(f"{path}: resources must be a list of file and folder names")
            return
        expected = {f for f in entries.files if f.endswith(".yaml") and f != KUSTOMIZATION}
        expected |= entries.folders
        seen: set[str] = set()
        for entry in listed:
            plain = _plain_entry(entry)
            if plain in seen:
                self.add(f"{path}: lists {entry} twice")
            elif plain not in expected:
                self.add(f"{path}: lists {entry}, which is not a .yaml file or sub-folder "
                         f"of {folder}")
            seen.add(plain)
        for missing in sorted(expected - seen):
            what = "sub-folder" if missing in entries.folders else "file"
            self.add(f"{path}: does not list {what} {missing}")

    def parse_object(self, path: str, section: str, content: bytes) -> Iterator[_Object]:
        try:
            docs = load_documents(content.decode(), _PARSE_LIMITS)
        except UnicodeDecodeError:
            self.add(f"{path}: not UTF-8 text")
            self.unreadable_objects.add(path)
            return
        except YamlError as error:
            self.add(f"{path}: document {error.document}: {error.reason}")
            self.unreadable_objects.add(path)
            return
        if len(docs) != 1:
            self.add(f"{path}: holds {len(docs)} documents (an object file holds exactly one)")
        for number, doc in enumerate(docs):
            problem = document_problem(doc)
            if problem:
                self.add(f"{path}: document {number} is not an object statewriter writes: "
                         f"{problem}")
                self.unreadable_objects.add(path)
                continue
            yield _Object(path, section, doc)

    def check_objects(self, destination: Destination, objects: list[_Object], index: Index) -> None:
        cluster_scoped = set(BUILTIN_CLUSTER_SCOPED)
        for obj in objects:
            defined = crd_defines(obj.doc)
            if defined and defined[1]:
                cluster_scoped.add(defined[0])
        where: dict[Identity, list[_Object]] = defaultdict(list)
        at: dict[str, set[Identity]] = defaultdict(set)
        unknown = set(self.unreadable_objects)  # paths whose objects cannot be told
        for obj in objects:
            doc, meta = obj.doc, obj.doc["metadata"]
            kind, group = doc["kind"], group_of(doc["apiVersion"])
            namespace = meta.get("namespace")
            shown = f"{kind}.{group}" if group else kind
            if (group, kind) in cluster_scoped:
                if namespace:
                    self.add(f"{obj.path}: cluster-scoped {shown} {meta['name']} has "
                             f"metadata.namespace {namespace!r}")
                namespace = ""
            elif not namespace:
                self.add(f"{obj.path}: namespaced {shown} {meta['name']} has no "
                         "metadata.namespace")
                unknown.add(obj.path)
                continue
            obj.identity = Identity(group, kind, namespace, meta["name"])
            if kind in self.protected:
                annotations = meta.get("annotations") or {}
                if annotations.get(PRUNE_ANNOTATION) != "disabled":
                    self.add(f"{obj.path}: {obj.identity} lacks the annotation "
                             f"{PRUNE_ANNOTATION}: disabled")
            if where[obj.identity]:
                first = where[obj.identity][0]
                self.add(f"{obj.path}: {obj.identity} ({doc['apiVersion']}) is already at "
                         f"{first.path} ({first.doc['apiVersion']}); an identity may appear "
                         f"only once per destination, whatever its version")
            where[obj.identity].append(obj)
            at[obj.path].add(obj.identity)
            if (destination.name, obj.identity) not in index.objects:
                self.add(f"{obj.path}: {obj.identity} is not owned by any owner in the index")
        self.check_holdings(destination, index, where, at, unknown)

    def check_holdings(
        self,
        destination: Destination,
        index: Index,
        where: Mapping[Identity, list[_Object]],
        at: Mapping[str, set[Identity]],
        unknown: set[str],
    ) -> None:
        for identity, holders in _held_in(index, destination.name):
            placements = sorted({held.placement for held in holders.values()})
            owners = ", ".join(str(owner) for owner in sorted(holders))
            if len(placements) > 1 or placements[0] not in SECTIONS:
                self.add(f"{destination.path}: owners of {identity} disagree on or name an "
                         f"unknown placement ({', '.join(placements)}): {owners}")
                continue
            placement = placements[0]
            expected = layout.object_path(destination, placement, identity, frozenset(holders))
            if expected in unknown:
                continue
            if identity in at.get(expected, ()):
                # A resource is written only by owners that output it identically (anything
                # else is a conflict); a shared dependency may hold an older or newer owner's
                # rendering (promise upgrades), so only resources are compared.
                blob = blob_id(self.files[expected])
                if placement == RESOURCES and any(h.blob != blob for h in holders.values()):
                    self.add(f"{expected}: content differs from what its owners wrote "
                             f"(edited outside statewriter?): {owners}")
                continue
            found = where.get(identity, [])
            if not found:
                self.add(f"{expected}: missing; {identity} is held by {owners}")
            for obj in found:
                if obj.section != placement:
                    self.add(f"{obj.path}: {identity} is in {obj.section} but its owners "
                             f"placed it in {placement} (expected at {expected})")
                else:
                    self.add(f"{obj.path}: {identity} belongs at {expected} "
                             f"(owners: {owners})")


# -- kubectl kustomize ------------------------------------------------------------------------


def _builds(
    section: str, files: dict[str, bytes], folders: Mapping[str, _Folder]
) -> list[_Build]:
    """What to hand `kubectl kustomize` for one section: (folder to build, the files to
    write for it, whether that is the section exactly as it is).

    A section of up to KUSTOMIZE_CHUNK files is built whole, exactly as it is. kustomize's
    build time grows with the square of the number of objects and again with each level
    of nesting (13 s for 3,000 objects in statewriter's layout, over 200 s for 10,000; see
    kubernetes-sigs/kustomize#5084), so a larger section is built in pieces of at most
    KUSTOMIZE_CHUNK files: whole folders taken in depth-first order, each piece built from
    the folders' deepest common folder, the folders around them given stub kustomizations
    that list only what leads to the piece. A folder holding more files than that is built
    KUSTOMIZE_CHUNK files at a time through a generated kustomization (its own is then
    checked by the listing check alone). Each object file is built exactly once; what a
    split build cannot see, an identity in two pieces, the duplicate-identity check
    reports (it is stricter than kustomize's)."""
    order: list[str] = []
    pending = [section]
    while pending:
        folder = pending.pop()
        order.append(folder)
        pending.extend(f"{folder}/{child}" for child in sorted(folders[folder].folders, reverse=True))
    # Units: (folder, file names, whether the folder's own kustomization is used).
    units: list[tuple[str, list[str], bool]] = []
    for folder in order:
        names = sorted(folders[folder].files)
        if len(names) <= KUSTOMIZE_CHUNK:
            units.append((folder, names, True))
            continue
        names = [name for name in names if name != KUSTOMIZATION]
        for start in range(0, len(names), KUSTOMIZE_CHUNK):
            units.append((folder, names[start:start + KUSTOMIZE_CHUNK], False))
    groups: list[list[tuple[str, list[str], bool]]] = []
    size = 0
    for unit in units:
        if not groups or size + len(unit[1]) > KUSTOMIZE_CHUNK:
            groups.append([])
            size = 0
        groups[-1].append(unit)
        size += len(unit[1])
    if len(groups) == 1 and all(real for _, _, real in groups[0]):
        return [(section, files, True)]
    return [_piece(section, group, files, folders) for group in groups]


def _piece(
    section: str,
    group: list[tuple[str, list[str], bool]],
    files: Mapping[str, bytes],
    folders: Mapping[str, _Folder],
) -> _Build:
    top = group[0][0]
    for folder, _, _ in group:
        while not (folder == top or folder.startswith(top + "/")):
            top = top.rpartition("/")[0]
    members = {folder: (names, real) for folder, names, real in group}
    needed = set(members)
    for folder, (_, real) in members.items():
        if real:  # its kustomization lists its sub-folders: they must exist
            needed.update(f"{folder}/{child}" for child in folders[folder].folders)
        while folder != top:
            folder = folder.rpartition("/")[0]
            needed.add(folder)
    copy: dict[str, bytes] = {}
    for folder in needed:
        names, real = members.get(folder, ([], False))
        copy.update((f"{folder}/{name}", files[f"{folder}/{name}"]) for name in names)
        if not real:
            children = [c for c in folders[folder].folders if f"{folder}/{c}" in needed]
            objects = [n for n in names if n.endswith(".yaml")]
            copy[f"{folder}/{KUSTOMIZATION}"] = layout.kustomization(objects + children)
    return top, copy, False


def _kustomize_all(kubectl: str, jobs: list[_Build], disk: Path | None) -> list[str]:
    """Runs the builds in parallel; each writes its copy (unless it is a whole section of a
    checkout, built in place) in its own folder, so writing overlaps building."""
    with tempfile.TemporaryDirectory(prefix="statewriter-kustomize-") as temp:

        def build(number: int, folder: str, files: dict[str, bytes], whole: bool) -> str | None:
            if disk is not None and whole:
                return _kustomize(kubectl, disk, folder)
            base = Path(temp) / str(number)
            for path, content in files.items():
                target = base / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            return _kustomize(kubectl, base, folder)

        workers = min(len(jobs), os.cpu_count() or 2, 8)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(build, n, *job) for n, job in enumerate(jobs)]
            results = [future.result() for future in futures]
    findings: list[str] = []
    for finding in results:
        if finding and finding not in findings:
            findings.append(finding)
    return findings


def _kustomize(kubectl: str, base: Path, section: str) -> str | None:
    try:
        proc = subprocess.run(
            [kubectl, "kustomize", str(base / section)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=_KUBECTL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"{section}: kubectl kustomize failed: timed out after {_KUBECTL_TIMEOUT}s"
    except OSError as error:
        return f"{section}: kubectl kustomize failed: {error.strerror}"
    if proc.returncode == 0:
        return None
    line = _first_line(proc.stderr.replace(str(base) + "/", "")) or f"exit {proc.returncode}"
    return f"{section}: kubectl kustomize failed: {line}"


# -- small helpers --------------------------------------------------------------------------


def _held_in(index: Index, destination: str) -> list[tuple[Identity, Holders]]:
    held = [(key[1], holders) for key, holders in index.objects.items() if key[0] == destination]
    return sorted(held, key=lambda item: item[0])


def _destination_of(path: str, by_path: Mapping[str, Destination]) -> Destination | None:
    folder = path
    while "/" in folder:
        folder = folder.rpartition("/")[0]
        destination = by_path.get(folder)
        if destination is not None:
            return destination
    return None


def _plain_entry(entry: str) -> str:
    while entry.startswith("./"):
        entry = entry[2:]
    return entry.rstrip("/")


def _walk(root: Path, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            rel = f"{prefix}{entry.name}"
            if not prefix and entry.name == ".git":
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path), rel + "/")
            else:
                yield rel, entry


def _is_bare_repository(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _looks_like_scp_url(target: str) -> bool:
    """git's `user@host:path` form (a colon before any slash)."""
    head, colon, _ = target.partition(":")
    return bool(colon) and "/" not in head and len(head) > 1


def _redact_url(text: str) -> str:
    """`text` with the userinfo (user:token@) of any URL in it replaced."""
    return _USERINFO.sub(r"\1***@", text)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _describe(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON: {error.msg} (line {error.lineno})"
    if isinstance(error, KeyError):
        return f"field {error.args[0]!r} is missing"
    return str(error) or type(error).__name__
