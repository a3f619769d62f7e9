"""The records under `.statewriter/`: the layout they are written in, destinations, owner
records and the bundle documents they keep (invariant 4's index, docs/reference.md section 2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gitops import layout, names
from gitops.destination import Destination
from gitops.errors import CorruptState
from gitops.index import Index, decode_destination, layout_version
from gitops.quoting import problem_of, quoted
from gitops.tree import DictTree


@dataclass(frozen=True)
class State:
    destinations: dict[str, Destination]  # those with a valid record
    index: Index


def check_layout(state: DictTree, findings: list[str]) -> int:
    """The layout the tree is written in. An older layout is one finding, not a finding
    for every path the migration moves; a newer layout cannot be judged at all."""
    try:
        version = layout_version(state)
    except CorruptState as error:
        findings.append(str(error))
        return layout.VERSION
    if 0 < version < layout.VERSION:
        where = layout.STATE if version == 1 else layout.LAYOUT_RECORD  # layout 1 has no record
        findings.append(f"{where}: layout {version}: statewriter migrates it to layout "
                        f"{layout.VERSION} at start-up")
    elif version > layout.VERSION:
        findings.append(f"{layout.LAYOUT_RECORD}: layout {version} is newer than this "
                        f"statewriter's ({layout.VERSION}): verify it with a newer statewriter")
    elif version < 0 or (version == 0 and state.read(layout.LAYOUT_RECORD) is not None):
        findings.append(f"{layout.LAYOUT_RECORD}: layout {version} is not a layout "
                        "statewriter writes")
    return version


def check_state(state: DictTree, paths_known: bool, findings: list[str]) -> State:
    """The valid destinations and the index of the readable owner records; with
    `paths_known` (layout 2 and later), records and kept documents at their paths."""
    destinations = _destinations(state, findings)
    unreadable: set[str] = set()

    def report(path: str, error: CorruptState) -> None:
        if not path.startswith(layout.DESTINATIONS_DIR + "/"):  # _destinations names those
            findings.append(str(error))
            unreadable.add(path)

    index = Index.load(state, report)
    for owner, record in sorted(index.owners.items(), key=lambda item: item[0]):
        for name in sorted(set(record.objects) | set(record.destinations)):
            if name not in destinations:
                findings.append(f"{layout.owner_record_path(owner)}: {owner} holds objects in "
                                f"destination {quoted(name)}, which has no valid destination record")
    if paths_known:
        _record_paths(state, index, unreadable, findings)
        _kept_documents(state, index, findings)
    return State(destinations, index)


def _destinations(state: DictTree, findings: list[str]) -> dict[str, Destination]:
    found: dict[str, Destination] = {}
    prefix = layout.DESTINATIONS_DIR + "/"
    for path, data in state.files(layout.DESTINATIONS_DIR):
        file = path[len(prefix):]
        if "/" in file or not file.endswith(".json"):
            findings.append(f"{path}: not a destination record (expected {prefix}<name>.json)")
            continue
        try:
            destination = decode_destination(data)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            findings.append(f"{path}: unreadable destination record: {problem_of(error)}")
            continue
        if not isinstance(destination.path, str) or not layout.is_valid_destination_path(
            destination.path
        ):
            findings.append(f"{path}: destination path {quoted(destination.path)} is not valid")
            continue
        if destination.name != file[: -len(".json")] or not names.is_label(destination.name):
            findings.append(f"{path}: record names destination {quoted(destination.name)}")
            continue
        for other in found.values():
            if layout.paths_overlap(other.path, destination.path):
                findings.append(f"{path}: path {quoted(destination.path)} overlaps destination "
                                f"{quoted(other.name)} at {quoted(other.path)}")
                break
        else:
            found[destination.name] = destination
    return found


def _record_paths(state: DictTree, index: Index, unreadable: set[str], findings: list[str]) -> None:
    expected = {layout.owner_record_path(owner) for owner, _ in index.owners.items()}
    for path, _ in state.files(layout.OWNERS_DIR):
        if not path.endswith(".json"):
            findings.append(f"{path}: not an owner record (expected .json)")
        elif path not in expected and path not in unreadable:
            findings.append(f"{path}: owner record at the wrong path (or a second record "
                            "of the same owner)")


def _kept_documents(state: DictTree, index: Index, findings: list[str]) -> None:
    """The documents of pending and promise-level bundles: as many as each record says."""
    kept: set[str] = set()
    for owner, record in sorted(index.owners.items(), key=lambda item: item[0]):
        folder = layout.stored_bundle_folder(owner)
        for position in range(record.stored_documents):
            path = f"{folder}/{position:05d}.yaml"
            kept.add(path)
            if state.read(path) is None:
                findings.append(f"{path}: missing; {layout.owner_record_path(owner)} keeps "
                                f"{record.stored_documents} documents of its bundle")
    for path, _ in state.files(layout.BUNDLES_DIR):
        if path not in kept:
            findings.append(f"{path}: no owner record keeps this stored document")


def state_files(files: Mapping[str, bytes]) -> DictTree:
    """The records of a tree: everything under `.statewriter/`."""
    return DictTree({p: c for p, c in files.items() if p.startswith(layout.STATE + "/")})
