"""`kubectl kustomize` on every section (invariant 1): what to build (`plan`), and the
builds run in parallel (`run`), each on a copy written to a temporary folder, or in place
in a checkout that holds exactly the verified files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from gitops import layout
from gitops.git import process
from gitops.layout import KUSTOMIZATION
from gitops.verify.findings import first_line
from gitops.verify.folders import Folder

KUSTOMIZE_CHUNK = 500  # files per `kubectl kustomize` run on large sections (see `plan`)
_KUBECTL_TIMEOUT = 600
_SECTIONS_NAMED = 4  # in the finding that says kubectl is missing


class Build(NamedTuple):
    section: str  # the section it checks
    folder: str  # the folder to build
    files: Mapping[str, bytes]  # the files to write for it
    whole: bool  # the section exactly as it is (a checkout's is built in place)


class _Unit(NamedTuple):
    folder: str
    names: list[str]  # file names taken from the folder
    real: bool  # whether the folder's own kustomization is used


def plan(section: str, files: Mapping[str, bytes], folders: Mapping[str, Folder]) -> list[Build]:
    """What to hand `kubectl kustomize` for one section.

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
    units: list[_Unit] = []
    for folder in order:
        names = sorted(folders[folder].files)
        if len(names) <= KUSTOMIZE_CHUNK:
            units.append(_Unit(folder, names, True))
            continue
        names = [name for name in names if name != KUSTOMIZATION]
        for start in range(0, len(names), KUSTOMIZE_CHUNK):
            units.append(_Unit(folder, names[start:start + KUSTOMIZE_CHUNK], False))
    groups: list[list[_Unit]] = []
    size = 0
    for unit in units:
        if not groups or size + len(unit.names) > KUSTOMIZE_CHUNK:
            groups.append([])
            size = 0
        groups[-1].append(unit)
        size += len(unit.names)
    if len(groups) == 1 and all(unit.real for unit in groups[0]):
        return [Build(section, section, files, True)]
    return [_piece(section, group, files, folders) for group in groups]


def _piece(
    section: str, group: list[_Unit], files: Mapping[str, bytes], folders: Mapping[str, Folder]
) -> Build:
    top = group[0].folder
    for unit in group:
        while not (unit.folder == top or unit.folder.startswith(top + "/")):
            top = top.rpartition("/")[0]
    members = {unit.folder: unit for unit in group}
    needed = set(members)
    for folder, unit in members.items():
        if unit.real:  # its kustomization lists its sub-folders: they must exist
            needed.update(f"{folder}/{child}" for child in folders[folder].folders)
        while folder != top:
            folder = folder.rpartition("/")[0]
            needed.add(folder)
    copy: dict[str, bytes] = {}
    for folder in needed:
        unit = members.get(folder, _Unit(folder, [], False))
        copy.update((f"{folder}/{name}", files[f"{folder}/{name}"]) for name in unit.names)
        if not unit.real:
            children = [c for c in folders[folder].folders if f"{folder}/{c}" in needed]
            objects = [n for n in unit.names if n.endswith(".yaml")]
            copy[f"{folder}/{KUSTOMIZATION}"] = layout.kustomization(objects + children)
    return Build(section, top, copy, False)


def run(kubectl: str, builds: list[Build], disk: Path | None) -> list[str]:
    """Runs the builds in parallel; each writes its copy (unless it is a whole section of a
    checkout, built in place) in its own folder, so writing overlaps building. Without
    kubectl the builds cannot run: that is a finding, not a pass."""
    if not builds:
        return []
    if shutil.which(kubectl) is None:
        sections = sorted({build.section for build in builds})
        named = ", ".join(sections[:_SECTIONS_NAMED])
        if len(sections) > _SECTIONS_NAMED:
            named += f" and {len(sections) - _SECTIONS_NAMED} more sections"
        return [f"{kubectl} not found: cannot build {named}; pass --no-kustomize to skip "
                "the builds"]
    with tempfile.TemporaryDirectory(prefix="statewriter-kustomize-") as temp:

        def build(number: int, job: Build) -> str | None:
            if disk is not None and job.whole:
                return _kustomize(kubectl, disk, job.folder)
            base = Path(temp) / str(number)
            for path, content in job.files.items():
                target = base / path
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                except OSError as error:  # e.g. a name no file system here can hold
                    return (f"{job.folder}: kubectl kustomize not run: {path} cannot be "
                            f"written ({error.strerror})")
            return _kustomize(kubectl, base, job.folder)

        workers = min(len(builds), os.cpu_count() or 2, 8)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(build, range(len(builds)), builds))
    findings: list[str] = []
    for finding in results:
        if finding and finding not in findings:
            findings.append(finding)
    return findings


def _kustomize(kubectl: str, base: Path, folder: str) -> str | None:
    try:
        proc = process.run([kubectl, "kustomize", str(base / folder)], process.environment(),
                           timeout=_KUBECTL_TIMEOUT, output=False)
    except process.TimedOut:
        return f"{folder}: kubectl kustomize failed: timed out after {_KUBECTL_TIMEOUT}s"
    except OSError as error:
        return f"{folder}: kubectl kustomize failed: {error.strerror}"
    if proc.returncode == 0:
        return None
    stderr = proc.stderr.decode(errors="replace")
    line = first_line(stderr.replace(str(base) + "/", "")) or f"exit {proc.returncode}"
    return f"{folder}: kubectl kustomize failed: {line}"
