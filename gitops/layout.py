"""Where things live in the state repository (CONTRACT section 2).

Every path is derived from names validated in `gitops.names`; nothing a client sends is
used as a path component without passing those checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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


@dataclass(frozen=True)
class Destination:
    name: str
    labels: dict[str, str]
    path: str
    notify_url: str | None = None  # POSTed after each push that changed a file under `path`
    recipients: tuple[str, ...] = ()  # age recipients its Secrets are encrypted for (sorted)

    def section(self, section: str) -> str:
        """The folder of one of its sections (DEPENDENCIES or RESOURCES)."""
        return f"{self.path}/{section}"

    def as_dict(self) -> dict[str, Any]:
        """The destination as its record and the API spell it; `notify` and `encryption` only
        when it has them, so records written before notify existed read and write back byte for byte."""
        found: dict[str, Any] = {"name": self.name, "labels": self.labels, "path": self.path}
        if self.notify_url is not None:
            found["notify"] = {"url": self.notify_url}
        if self.recipients:
            found["encryption"] = {"age": list(self.recipients)}
        return found

    MAX_NOTIFY_URL = 2048

    @staticmethod
    def notify_url_problem(url: object) -> str | None:
        """Why `url` cannot be a notify URL (CONTRACT section 6), or None. The reason never
        repeats the URL: it may carry a credential, and reasons reach answers and logs."""
        if not isinstance(url, str):
            return "must be a string"
        if len(url) > Destination.MAX_NOTIFY_URL:
            return f"must be at most {Destination.MAX_NOTIFY_URL} characters"
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            return "must not contain spaces or control characters"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not one
        except ValueError:
            return "is not a valid URL"
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return "must be an http:// or https:// URL with a host"
        if "@" in parts.netloc:
            return "must not carry credentials (user:password@): the Receiver's path is its secret"
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            # Flux finds a Receiver by the exact request URI: a query would miss it
            return "must not have a query or a fragment"
        return None


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
        if not owner.is_promise_level:
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
