"""Runs the checks over one tree: one pass sorts every file, each check works on what that
pass collected, and the kustomize builds of all destinations run last, in parallel."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gitops import layout
from gitops.destination import Destination
from gitops.layout import STATE
from gitops.normalize import DEFAULT_PROTECTED
from gitops.tree import Tree
from gitops.verify import builds, children, folders, objects, scalars, secrets, served, state
from gitops.verify.builds import Build
from gitops.verify.folders import SOURCEIGNORE


def verify_tree(
    tree: Tree,
    kustomize: bool = True,
    kubectl: str = "kubectl",
    *,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
    kubernetes_version: str | None = None,
) -> list[str]:
    """Every violation of docs/reference.md section 3 in `tree`, one finding per problem; objects are
    validated against `kubernetes_version` (None: each destination's, else the newest)."""
    return verify_files(dict(tree.files("")), kustomize, kubectl, protect_from_prune,
                        kubernetes_version=kubernetes_version)


def verify_files(
    files: Mapping[str, bytes],
    kustomize: bool,
    kubectl: str,
    protected: frozenset[str],
    disk: Path | None = None,
    kubernetes_version: str | None = None,
) -> list[str]:
    """`verify_tree` on path -> content; `disk` is a checkout holding exactly `files`, where
    whole sections are built in place."""
    findings: list[str] = []
    records = state.state_files(files)
    version = state.check_layout(records, findings)
    if version > layout.VERSION:
        return findings
    findings.extend(folders.long_segments(files))
    # An older layout keeps objects at other paths (layout 1 its records too), which the
    # migration moves: the one finding above says so.
    records_known = version != 1
    objects_known = version in (0, layout.VERSION)
    known = state.check_state(records, records_known, findings)
    placed = _by_destination(files, known.destinations, findings)
    jobs: list[Build] = []
    for name in sorted(placed):
        jobs.extend(_destination(known, known.destinations[name], placed[name], objects_known,
                                 protected, findings, kubernetes_version))
    if kustomize:
        findings.extend(builds.run(kubectl, jobs, disk))
    return findings


def _by_destination(
    files: Mapping[str, bytes], destinations: Mapping[str, Destination], findings: list[str]
) -> dict[str, dict[str, bytes]]:
    """The files below each destination's path; any other file outside `.statewriter/` is a
    finding, but for documentation at the root."""
    placed: dict[str, dict[str, bytes]] = {name: {} for name in destinations}
    by_path = {d.path: d for d in destinations.values()}
    for path, content in files.items():
        name = path.rpartition("/")[2]
        if name == SOURCEIGNORE:
            findings.append(f"{path}: .sourceignore files are not allowed (Flux would leave "
                            "out the files it lists)")
            continue
        if path.startswith(STATE + "/"):
            continue
        destination = _destination_of(path, by_path)
        if destination is not None:
            placed[destination.name][path] = content
        elif "/" in path or name.endswith((".yaml", ".yml", ".json")):
            findings.append(f"{path}: no destination record owns this path")
    return placed


def _destination(
    known: state.State,
    destination: Destination,
    files: dict[str, bytes],
    paths_known: bool,
    protected: frozenset[str],
    findings: list[str],
    kubernetes_version: str | None = None,
) -> list[Build]:
    """Checks one destination; returns what `kubectl kustomize` should build."""
    if not files:
        findings.append(f"{destination.path}: the path of destination {destination.name} "
                        "is missing")
        return []
    tree = folders.sort_destination(destination, files, findings)
    flux = children.flux_files(destination, tree) if destination.isolated else []
    parsed, unreadable, mappings = objects.parse(tree.objects, findings)
    folders.check_listings(destination, tree, files, findings)
    if destination.isolated:
        children.check(destination, tree, flux, parsed, findings)
    seen = objects.identify(destination, parsed, unreadable, known.index, protected, findings)
    objects.check_holdings(destination, known.index, seen, files, paths_known, findings)
    secrets.check(destination, mappings, findings)
    served.check(destination, parsed, kubernetes_version, findings)
    jobs: list[Build] = []
    for section in layout.SECTIONS:
        scalars.check(tree.sections[section], findings)
        folder = destination.section(section)
        if f"{folder}/{layout.KUSTOMIZATION}" not in files:  # a finding: nothing to build
            continue
        if section == layout.RESOURCES and destination.isolated:
            jobs.extend(children.builds(destination, tree.sections[section], tree))
        else:
            jobs.extend(builds.plan(folder, tree.sections[section], tree.folders))
    return jobs


def _destination_of(path: str, by_path: Mapping[str, Destination]) -> Destination | None:
    folder = path
    while "/" in folder:
        folder = folder.rpartition("/")[0]
        destination = by_path.get(folder)
        if destination is not None:
            return destination
    return None
