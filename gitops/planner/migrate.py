"""Bringing a store written by an earlier layout to the current one (docs/reference.md section 2):
one commit, `Statewriter-Action: migrate`, made by the service at start-up. Objects keep
their identity, section and owners, so Flux sees files move inside the same Kustomization
and nothing is deleted from a cluster.

Layout 1 to 2: request folders and owner records move under the `<shard>` fan-out folder;
object file names over 255 bytes are shortened; every kustomization is rewritten with
quoted entries; every object file and stored document is written again with unambiguous
YAML. Owners whose request names the layout cannot hold (`kustomization.yaml`) are removed:
in layout 1 they already broke the build of their folder.

Layout 2 to 3: every dependency moves one folder down, into its API group's folder (a CRD
into the group it defines), byte for byte; the kustomizations on the way follow.

A layout-1 store is rewritten whole, straight at today's paths: it takes both steps in one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

import yaml

from gitops import layout, names
from gitops.destination import Destination
from gitops.errors import StoreUnavailable
from gitops.identity import Identity
from gitops.index import (
    Index,
    KeptContent,
    ObjectKey,
    OwnerRecord,
    encode_generations,
    encode_owner,
    layout_version,
)
from gitops.layout import DEPENDENCIES, RESOURCES
from gitops.owner import Owner
from gitops.planner.draft import Draft, Plan, Policy, unchanged
from gitops.planner.results import Migrated
from gitops.tree import Tree, blob_id
from gitops.yamldocs import dump_document

ACTOR = "statewriter"


class _Layout1Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """How layout 1 read its own files back: YAML 1.1, timestamps kept as strings."""


_Layout1Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def needs_migration(tree: Tree) -> bool:
    """Whether `tree` holds a store of an older layout. A newer one cannot be served."""
    version = layout_version(tree)
    if version > layout.VERSION:
        raise StoreUnavailable(
            f"the state store is in layout {version}, newer than this statewriter's "
            f"({layout.VERSION}): run a newer statewriter")
    return 0 < version < layout.VERSION


def plan_migrate(index: Index, tree: Tree, policy: Policy = Policy()) -> Plan:
    """The migration of `tree` (whose records `index` holds) to the current layout."""
    version = layout_version(tree)
    if not needs_migration(tree):
        return unchanged(index, Migrated(version, version))
    draft = Draft(index, tree, policy)
    removed: list[Owner] = []
    if version == 1:
        removed = _from_layout_1(draft, tree)
    else:
        _fan_out_dependencies(draft, tree)
    draft.write(layout.LAYOUT_RECORD, layout.layout_record())
    destinations = sorted(draft.index.destinations.values(), key=lambda d: d.name)
    steps = "; ".join(_STEPS[step] for step in range(version + 1, layout.VERSION + 1))
    notes = [f"Layout {version} to {layout.VERSION}: {steps}. Objects are unchanged."]
    if removed:
        notes.append("Removed (the layout cannot hold these request names):")
        notes.extend(f"  {owner}" for owner in removed)
    trailers = [("Statewriter-Action", "migrate"),
                *(("Statewriter-Destination", d.name) for d in destinations),
                ("Statewriter-Actor", ACTOR)]
    return draft.finish(f"migrate the state store to layout {layout.VERSION}", trailers,
                        Migrated(version, layout.VERSION), list_files=False, notes=notes)


# What each layout changed, for the commit message.
_STEPS = {
    2: "request folders and owner records under a two-hex-digit fan-out folder, file names "
       "over 255 bytes shortened, quoted kustomization entries, unambiguous YAML strings",
    3: "dependencies in a folder per API group (a CRD in the group it defines)",
}


def _from_layout_1(draft: Draft, tree: Tree) -> list[Owner]:
    """Everything under the destination paths and the records written again at today's
    paths; returns the owners removed because the layout cannot hold their request name."""
    removed = _drop_unholdable(draft.index)
    files, blobs = _object_files(draft.index, tree)
    files.update(_stored_documents(draft.index, tree))
    files.update(_kustomizations(draft.index, files))
    records = _with_new_blobs(draft.index, blobs)
    files.update((layout.owner_record_path(r.owner), encode_owner(r)) for r in records)
    files.update(_generations(draft.index, blobs))
    for prefix in _rewritten_folders(draft.index):
        for path, _ in tree.files(prefix):
            draft.delete(path)
    for path, content in files.items():
        draft.write(path, content)
    return removed


def _fan_out_dependencies(draft: Draft, tree: Tree) -> None:
    """Each dependency moved, unchanged, into its group folder; the draft rewrites the
    kustomizations of the folders whose entries came or went (and drops emptied ones)."""
    for key, holders in draft.index.objects.items():
        destination = draft.index.destinations.get(key.destination)
        if destination is None or holders.section != DEPENDENCIES:
            continue
        old = _layout2_dependency_path(destination, key.identity)
        content = tree.read(old)
        if content is None:
            continue  # missing already: `statewriter verify` names it
        section = destination.section(DEPENDENCIES)
        draft.delete(old, section)
        draft.write(layout.object_path(destination, DEPENDENCIES, key.identity, holders), content,
                    section)


def _drop_unholdable(index: Index) -> list[Owner]:
    gone = sorted(owner for owner, _ in index.owners.items()
                  if owner.name in names.RESERVED_REQUEST_NAMES)
    for owner in gone:
        index.remove_owner(owner)
    return gone


def _object_files(index: Index, tree: Tree) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every held object at its new path, written again; old blob id -> new blob id."""
    files: dict[str, bytes] = {}
    blobs: dict[str, str] = {}
    for key, holders in index.objects.items():
        destination = index.destinations.get(key.destination)
        if destination is None:
            continue
        old = tree.read(_layout1_object_path(destination, holders.section, key.identity,
                                             holders))
        if old is None:
            continue  # missing already: `statewriter verify` names it
        new = _rewritten(old)
        blobs[blob_id(old)] = blob_id(new)
        files[layout.object_path(destination, holders.section, key.identity, holders)] = new
    return files, blobs


def _stored_documents(index: Index, tree: Tree) -> dict[str, bytes]:
    files = {}
    for _, record in index.owners.items():
        old_folder = f"{layout.BUNDLES_DIR}/{_layout1_key_path(record.owner)}"
        for position in range(record.stored_documents):
            data = tree.read(f"{old_folder}/{position:05d}.yaml")
            if data is not None:
                new_path = f"{layout.stored_bundle_folder(record.owner)}/{position:05d}.yaml"
                files[new_path] = _rewritten(data)
    return files


def _kustomizations(index: Index, files: dict[str, bytes]) -> dict[str, bytes]:
    """Every folder below each section lists its entries; both sections exist."""
    listed: dict[str, set[str]] = {}
    for destination in index.destinations.values():
        for section in layout.SECTIONS:
            root = destination.section(section)
            listed[root] = set()
            for path in files:
                if path.startswith(root + "/"):
                    for folder in layout.folders_between(root, path):
                        listed.setdefault(folder, set()).add(
                            path[len(folder) + 1:].partition("/")[0])
    return {f"{folder}/{layout.KUSTOMIZATION}": layout.kustomization(entries)
            for folder, entries in listed.items()}


def _with_new_blobs(index: Index, blobs: dict[str, str]) -> list[OwnerRecord]:
    records = []
    for _, record in sorted(index.owners.items(), key=lambda item: item[0]):
        objects = {destination: tuple(replace(held, blob=blobs.get(held.blob, held.blob))
                                      for held in holds)
                   for destination, holds in record.objects.items()}
        updated = record.with_(objects=objects)
        index.put_owner(updated)
        records.append(updated)
    return records


def _generations(index: Index, blobs: dict[str, str]) -> dict[str, bytes]:
    kept: dict[str, dict[Identity, KeptContent]] = {}
    for key, content in index.kept.items():
        if index.objects.get(key):
            blob = blobs.get(content.blob, content.blob)
            kept.setdefault(key.destination, {})[key.identity] = KeptContent(blob, content.generation)
            index.kept[ObjectKey(key.destination, key.identity)] = KeptContent(blob,
                                                                               content.generation)
    return {layout.generations_record_path(name): encode_generations(dict(sorted(items.items())))
            for name, items in kept.items()}


def _rewritten_folders(index: Index) -> list[str]:
    """Everything the migration writes anew: destination paths and the state it derives."""
    return [*(d.path for d in index.destinations.values()), layout.OWNERS_DIR,
            layout.BUNDLES_DIR, layout.GENERATIONS_DIR]


def _rewritten(content: bytes) -> bytes:
    """An object read the way layout 1 wrote it, written with today's YAML."""
    try:
        doc: Any = yaml.load(content, Loader=_Layout1Loader)
    except yaml.YAMLError:
        return content  # not statewriter's writing: left as it is for verify to report
    return dump_document(doc) if isinstance(doc, dict) else content


# -- earlier layouts' paths --------------------------------------------------------------------


def _layout2_dependency_path(destination: Destination, identity: Identity) -> str:
    namespace = identity.namespace or layout.CLUSTER
    return f"{destination.section(DEPENDENCIES)}/{namespace}/{layout.object_file_name(identity, False)}"



def _layout1_object_path(
    destination: Destination, section: str, identity: Identity, owners: Collection[Owner]
) -> str:
    kind = f"{identity.kind}.{identity.group}" if identity.group else identity.kind
    namespace = identity.namespace or layout.CLUSTER
    name = f"{kind}_{identity.name}.yaml"
    if section == DEPENDENCIES:
        return f"{destination.section(DEPENDENCIES)}/{namespace}/{name}"
    if len(owners) == 1:
        owner = next(iter(owners))
        if not owner.is_promise_level:
            folder = f"{owner.namespace}/{owner.promise}/{owner.name}/{owner.pipeline}"
            return f"{destination.section(RESOURCES)}/{folder}/{namespace}_{name}"
    return f"{destination.section(RESOURCES)}/{layout.SHARED}/{namespace}/{name}"


def _layout1_key_path(owner: Owner) -> str:
    if owner.is_promise_level:
        return f"{owner.promise}/{layout.PROMISE_LEVEL}/{owner.pipeline}"
    return f"{owner.promise}/{owner.namespace}/{owner.name}/{owner.pipeline}"
