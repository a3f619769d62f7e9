"""Where things live in the state repository (CONTRACT section 2).

Every path is derived from names validated in `gitops.names`; nothing a client sends is
used as a path component without passing those checks.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gitops.bundle import Owner
from gitops.identity import Identity

DEPENDENCIES = "dependencies"
RESOURCES = "resources"
SECTIONS = (DEPENDENCIES, RESOURCES)
SHARED = "_shared"
CLUSTER = "_cluster"
PROMISE_LEVEL = "_promise"
KUSTOMIZATION = "kustomization.yaml"

STATE = ".statewriter"
DESTINATIONS_DIR = f"{STATE}/destinations"
OWNERS_DIR = f"{STATE}/owners"
BUNDLES_DIR = f"{STATE}/bundles"
GENERATIONS_DIR = f"{STATE}/generations"


@dataclass(frozen=True)
class Destination:
    name: str
    labels: dict[str, str]
    path: str

    def section(self, placement: str) -> str:
        return f"{self.path}/{placement}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "labels": self.labels, "path": self.path}


def object_file_name(identity: Identity, with_namespace: bool) -> str:
    kind = f"{identity.kind}.{identity.group}" if identity.group else identity.kind
    name = f"{kind}_{identity.name}.yaml"
    if with_namespace:
        return f"{identity.namespace or CLUSTER}_{name}"
    return name


def owner_folder(owner: Owner) -> str:
    """An owner's folder below resources/ (request owners only)."""
    return f"{owner.namespace}/{owner.promise}/{owner.name}/{owner.pipeline}"


def object_path(
    destination: Destination, placement: str, identity: Identity, owners: Collection[Owner]
) -> str:
    """The file of one object: a function of where it is placed and who owns it.

    Only the number of owners (and the single owner) matters, so callers pass the holders
    mapping as it is rather than copying it."""
    namespace = identity.namespace or CLUSTER
    if placement == DEPENDENCIES:
        return f"{destination.section(DEPENDENCIES)}/{namespace}/{object_file_name(identity, False)}"
    if len(owners) == 1:
        owner = next(iter(owners))
        if not owner.is_promise_level:
            folder = owner_folder(owner)
            file = object_file_name(identity, True)
            return f"{destination.section(RESOURCES)}/{folder}/{file}"
    return f"{destination.section(RESOURCES)}/{SHARED}/{namespace}/{object_file_name(identity, False)}"


def kustomization(entries: list[str]) -> bytes:
    """An explicit kustomization listing `entries` (files and sub-folders) in order."""
    head = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    if not entries:
        return (head + "resources: []\n").encode()
    return (head + "resources:\n" + "".join(f"- {entry}\n" for entry in sorted(entries))).encode()


def destination_record_path(name: str) -> str:
    return f"{DESTINATIONS_DIR}/{name}.json"


def generations_record_path(destination: str) -> str:
    return f"{GENERATIONS_DIR}/{destination}.json"


def _owner_key_path(owner: Owner) -> str:
    if owner.is_promise_level:
        return f"{owner.promise}/{PROMISE_LEVEL}/{owner.pipeline}"
    return f"{owner.promise}/{owner.namespace}/{owner.name}/{owner.pipeline}"


def owner_record_path(owner: Owner) -> str:
    return f"{OWNERS_DIR}/{_owner_key_path(owner)}.json"


def stored_bundle_folder(owner: Owner) -> str:
    return f"{BUNDLES_DIR}/{_owner_key_path(owner)}"


def folders_between(section: str, path: str) -> list[str]:
    """Folders from `path`'s parent up to and including `section`, deepest first."""
    folders = []
    folder = path.rpartition("/")[0]
    while len(folder) >= len(section):
        folders.append(folder)
        if folder == section:
            break
        folder = folder.rpartition("/")[0]
    return folders


def is_valid_destination_path(path: str) -> bool:
    from gitops.names import is_label

    parts = path.split("/")
    return 0 < len(parts) <= 8 and all(is_label(part) for part in parts)


def paths_overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
