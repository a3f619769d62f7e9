"""Where things live in the state repository (docs/reference.md section 2).

Every path is derived from names validated in `gitops.names`; nothing a client sends is
used as a path component without passing those checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection

from gitops.destination import Destination
from gitops.identity import CRD_GROUP, CRD_KIND, Identity
from gitops.names import RESERVED_REQUEST_NAMES
from gitops.owner import Owner

DEPENDENCIES = "dependencies"
RESOURCES = "resources"
SECTIONS = (DEPENDENCIES, RESOURCES)
SHARED = "_shared"
CLUSTER = "_cluster"
CORE_GROUP = "_core"  # the group folder of the core group "": no DNS name starts with "_"
PROMISE_LEVEL = "_promise"
KUSTOMIZATION = "kustomization.yaml"
# Names no folder may take: it would sit next to its parent's kustomization file.
RESERVED_FOLDER_NAMES = RESERVED_REQUEST_NAMES

STATE = ".statewriter"
DESTINATIONS_DIR = f"{STATE}/destinations"
OWNERS_DIR = f"{STATE}/owners"
BUNDLES_DIR = f"{STATE}/bundles"
GENERATIONS_DIR = f"{STATE}/generations"
LAYOUT_RECORD = f"{STATE}/layout.json"

VERSION = 3  # of the layout below; an older store is migrated at start-up
MAX_SEGMENT = 255  # bytes in one path segment: what Linux file systems hold


def shard(name: str) -> str:
    """The fan-out folder of a request: first two hex digits of sha256(name). A folder that
    grows with the number of requests never holds them all (GitHub refuses directories
    wider than 3,000 entries, and git rewrites a whole folder's tree on every change)."""
    return hashlib.sha256(name.encode()).hexdigest()[:2]


def object_file_name(identity: Identity, with_namespace: bool) -> str:
    kind = f"{identity.kind}.{identity.group}" if identity.group else identity.kind
    name = f"{kind}_{identity.name}.yaml"
    if with_namespace:
        name = f"{identity.namespace or CLUSTER}_{name}"
    return fit_segment(name)


def fit_segment(name: str) -> str:
    """`name` if it fits in one path segment, else a prefix of it, `-`, 12 hex digits of
    sha256(name) and its `.yaml` suffix: exactly MAX_SEGMENT bytes, deterministic."""
    encoded = name.encode()
    if len(encoded) <= MAX_SEGMENT:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:12]
    suffix = f"-{digest}.yaml"
    head = encoded[: MAX_SEGMENT - len(suffix)].decode(errors="ignore")
    return head + suffix


def owner_folder(owner: Owner) -> str:
    """An owner's folder below resources/ (request owners only)."""
    return f"{owner.namespace}/{owner.promise}/{shard(owner.name)}/{owner.name}/{owner.pipeline}"


def group_folder(identity: Identity) -> str:
    """The folder of a dependency below its namespace folder: the API group a CRD defines
    (its name is `<plural>.<group>`), so a promise's CRDs sit together, else the object's own
    group. 5,000 CRDs of 100 promises would otherwise share one folder, whose tree and
    kustomization every write to it rewrites (and GitHub refuses folders over 3,000 entries)."""
    group = identity.group
    if identity.group_kind == (CRD_GROUP, CRD_KIND):
        group = identity.name.partition(".")[2] or group  # Kubernetes requires the dot
    if not group:
        return CORE_GROUP
    # a group may be spelt `kustomization.yaml`: the folder would clash with the namespace's
    # kustomization file, so it takes the `_` no group can start with
    return f"_{group}" if group in RESERVED_FOLDER_NAMES else group


def object_path(
    destination: Destination, section: str, identity: Identity, owners: Collection[Owner]
) -> str:
    """The file of one object: a function of its section and who owns it.

    Only the number of owners (and the single owner) matters, so callers pass the holders
    mapping as it is rather than copying it."""
    namespace = identity.namespace or CLUSTER
    if section == DEPENDENCIES:
        folder = f"{destination.section(DEPENDENCIES)}/{namespace}/{group_folder(identity)}"
        return f"{folder}/{object_file_name(identity, False)}"
    if len(owners) == 1:
        owner = next(iter(owners))
        # Isolated by namespace, each namespace's objects are a Flux Kustomization of their
        # own: an object outside its request's namespace sits with its namespace's shared
        # ones from the start, so that no owner coming or going moves it to another
        # Kustomization (which would delete and recreate it).
        if not owner.is_promise_level and (not destination.isolated
                                           or identity.namespace == owner.namespace):
            folder = owner_folder(owner)
            file = object_file_name(identity, True)
            return f"{destination.section(RESOURCES)}/{folder}/{file}"
    return f"{destination.section(RESOURCES)}/{SHARED}/{namespace}/{object_file_name(identity, False)}"


def kustomization(entries: Collection[str]) -> bytes:
    """An explicit kustomization listing `entries` (files and sub-folders), sorted, each a
    quoted string: a folder named `2024`, `true` or `null` stays a string."""
    head = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
    if not entries:
        return (head + "resources: []\n").encode()
    listed = "".join(f"- {json.dumps(entry)}\n" for entry in sorted(entries))
    return (head + "resources:\n" + listed).encode()


def layout_record() -> bytes:
    return (json.dumps({"version": VERSION}) + "\n").encode()


def destination_record_path(name: str) -> str:
    return f"{DESTINATIONS_DIR}/{name}.json"


def generations_record_path(destination: str) -> str:
    return f"{GENERATIONS_DIR}/{destination}.json"


def _owner_key_path(owner: Owner) -> str:
    if owner.is_promise_level:
        return f"{owner.promise}/{PROMISE_LEVEL}/{owner.pipeline}"
    return f"{owner.promise}/{owner.namespace}/{shard(owner.name)}/{owner.name}/{owner.pipeline}"


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
