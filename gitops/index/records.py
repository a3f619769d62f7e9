"""The state records under `.statewriter/` and their JSON: the index alone reads and writes
them (docs/reference.md section 2). One record per owner and per destination, so a write touches
only its own records; their JSON keeps one line per field and per held object, so a
record's diff in git shows what changed."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, TypeVar

from gitops import caches, layout, names
from gitops.destination import (
    ISOLATION_DESTINATION,
    Destination,
    api_entries,
    flux_settings,
    isolation,
    kubernetes_version,
    namespace_list,
)
from gitops.errors import CorruptState
from gitops.identity import Identity
from gitops.lru import Memo
from gitops.owner import Owner
from gitops.quoting import problem_of, quoted
from gitops.secrets import check_recipients
from gitops.tree import Tree

NO_MATCH = "no destination matches the selectors"


class ObjectKey(NamedTuple):
    destination: str
    identity: Identity


class KeptContent(NamedTuple):
    """Content of a shared object whose writer left, and that writer's promise generation."""

    blob: str
    generation: int


RequestKey = tuple[str, str, str]  # promise, namespace, name ("", "" for promise-level)


@dataclass(frozen=True, slots=True)
class Held:
    """One object as one owner outputs it in one destination."""

    identity: Identity
    section: str  # layout.DEPENDENCIES or layout.RESOURCES
    blob: str  # git blob id of this owner's rendering of the object
    generation: int | None = None
    defines_cluster_kind: tuple[str, str] | None = None  # a CRD defining a cluster-scoped kind
    # An encrypted Secret: the keyed digest of its plaintext and recipients (`blob` is then
    # the ciphertext's), so the same plaintext posted again keeps the committed ciphertext.
    sealed: str | None = None


DROPPED = Held(Identity("", "", "", ""), "", "")  # a holder removed in a child layer


@dataclass(frozen=True, slots=True)
class OwnerRecord:
    owner: Owner
    digest: str
    selectors: dict[str, str]
    serial: int
    generation: int | None = None
    status: dict[str, Any] | None = None
    destinations: tuple[str, ...] = ()
    objects: dict[str, tuple[Held, ...]] = field(default_factory=dict)
    stored_documents: int = 0  # documents kept under .statewriter/bundles for later placement
    dependency_marked: tuple[int, ...] = ()  # stored documents marked statewriter.dev/placement
    pending_reason: str | None = None  # why it is not (or, promise-level, not everywhere) placed
    trailers: tuple[tuple[str, str], ...] = ()  # the bundle's own commit trailers

    @property
    def state(self) -> str:
        return "Scheduled" if self.destinations else "Pending"

    @property
    def blocked(self) -> bool:
        """Kept out of a destination it matches by a conflict: placed when the conflict goes.
        A request is then Pending; a promise-level bundle may be placed elsewhere."""
        if self.pending_reason in (None, NO_MATCH):
            return False
        return self.owner.is_promise_level or not self.destinations

    def with_(self, **changes: Any) -> OwnerRecord:
        return replace(self, **changes)


# -- owner records ----------------------------------------------------------------------------


def encode_owner(record: OwnerRecord) -> bytes:
    raw: dict[str, Any] = {
        "promise": record.owner.promise,
        "request": record.owner.request,
        "pipeline": record.owner.pipeline,
        "digest": record.digest,
        "selectors": record.selectors,
        "serial": record.serial,
        "generation": record.generation,
        "status": record.status,
        "destinations": list(record.destinations),
        "storedDocuments": record.stored_documents,
        **({"dependencyMarked": list(record.dependency_marked)} if record.dependency_marked else {}),
        "pendingReason": record.pending_reason,
        **({"trailers": dict(record.trailers)} if record.trailers else {}),
        "objects": {
            destination: [_HELD_LINES[held] for held in holds]
            for destination, holds in sorted(record.objects.items())
        },
    }
    return _lines_json(raw).encode()


def _encode_held(held: Held) -> dict[str, str]:
    # "placement" on disk: the record format predates the word "section" in the code
    item = {"id": held.identity.key(), "placement": held.section, "blob": held.blob}
    if held.defines_cluster_kind:
        item["definesClusterKind"] = "/".join(held.defines_cluster_kind)
    if held.sealed:
        item["sealed"] = held.sealed
    return item


def decode_owner(data: bytes, shared: dict[Any, Any] | None = None) -> OwnerRecord:
    """A record from its JSON. Records decoded with the same `shared` dict share equal
    parts (the objects every request of a promise outputs, the selectors, the names)."""
    raw = json.loads(data)
    known = {} if shared is None else shared
    namespace, _, name = (raw["request"] or "/").partition("/")
    owner = Owner(sys.intern(raw["promise"]), sys.intern(namespace), name,
                  sys.intern(raw["pipeline"]))
    generation = raw.get("generation")

    def same(value: Any) -> Any:
        key = (type(value), json.dumps(value, sort_keys=True))
        return known.setdefault(key, value)

    def held(item: dict[str, Any]) -> Held:
        defines = item.get("definesClusterKind")
        # Only dependencies are worth sharing: a request's own resources are its alone,
        # and remembering each of them would only raise the peak of a load.
        shareable = item["placement"] == layout.DEPENDENCIES or not owner.name
        sealed = item.get("sealed")
        key = (item["id"], item["placement"], item["blob"], generation, defines, sealed)
        found = known.get(key) if shareable else None
        if found is None:
            group, _, kind = defines.partition("/") if defines else ("", "", "")
            found = Held(Identity.from_key(item["id"]), sys.intern(item["placement"]),
                         item["blob"], generation, (group, kind) if defines else None, sealed)
            if shareable:
                known[key] = found
        return found

    return OwnerRecord(
        owner=owner,
        digest=raw["digest"],
        selectors=same(raw["selectors"]),
        serial=raw["serial"],
        generation=generation,
        status=raw.get("status"),
        destinations=same(tuple(raw["destinations"])),
        objects={sys.intern(d): tuple(held(i) for i in items) for d, items in raw["objects"].items()},
        stored_documents=raw.get("storedDocuments", 0),
        dependency_marked=tuple(raw.get("dependencyMarked", ())),
        pending_reason=raw.get("pendingReason"),
        trailers=tuple((str(k), str(v)) for k, v in (raw.get("trailers") or {}).items()),
    )


def _lines_json(record: dict[str, Any]) -> str:
    """JSON with one line per field and per held object. (The json module's own indenting
    encoder is pure Python, and records are written on every change.)"""

    fields = []
    for key in sorted(record):
        value = record[key]
        if key == "objects" and value:
            # the held objects come encoded (`_HELD_LINES`)
            per_destination = [
                f"  {_compact(dest)}: [\n" + ",\n".join(f"   {line}" for line in lines) + "\n  ]"
                for dest, lines in value.items()
            ]
            fields.append(f" {_compact(key)}: {{\n" + ",\n".join(per_destination) + "\n }")
        else:
            fields.append(f" {_compact(key)}: {_compact(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False)


# Every request of a promise holds the same dependencies (the same Held objects): their
# lines are encoded once, not once per record written.
_HELD_LINES: Memo[Held, str] = caches.memo(
    "held lines", lambda held: _compact(_encode_held(held)), caches.HELD_LINES)


# -- destinations, generations, the layout ----------------------------------------------------


def encode_destination(destination: Destination) -> bytes:
    return (json.dumps(destination.as_dict(), indent=1, sort_keys=True) + "\n").encode()


def decode_destination(data: bytes) -> Destination:
    """A destination record, checked as `PUT /v1/destinations` checks one: a record a person
    edited into something else would put paths anywhere."""
    raw = json.loads(data)
    name, labels, path = raw["name"], raw["labels"], raw["path"]
    if not names.is_label(name):
        raise ValueError(f"destination name {quoted(name)} is not a DNS-1123 label")
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError("labels must map strings to strings")
    if not isinstance(path, str) or not layout.is_valid_destination_path(path):
        raise ValueError(f"destination path {quoted(path)} is not 1-8 DNS-1123 labels joined by '/'")
    version = raw.get("kubernetesVersion")
    namespaces = raw.get("namespaces")
    prefix, flux_namespace = flux_settings(raw.get("flux", {}))
    return Destination(
        name, dict(labels), path, _decode_notify(raw.get("notify")),
        recipients=_decode_encryption(raw.get("encryption")),
        kubernetes_version=None if version is None else kubernetes_version(version),
        apis=api_entries(raw.get("apis", [])),
        namespaces=None if namespaces is None else namespace_list(namespaces),
        isolation=isolation(raw.get("isolation", ISOLATION_DESTINATION)),
        flux_prefix=prefix, flux_namespace=flux_namespace)


def _decode_encryption(encryption: object) -> tuple[str, ...]:
    """A record's `encryption` (absent when its Secrets are not encrypted): `{"age": [...]}`."""
    if encryption is None:
        return ()
    if not isinstance(encryption, dict) or set(encryption) != {"age"}:
        raise ValueError("encryption must be {\"age\": [recipients]}")
    try:
        return check_recipients(encryption["age"])
    except ValueError as error:
        raise ValueError(f"encryption.age {error}") from None


def _decode_notify(notify: object) -> str | None:
    """A record's `notify` (absent in records written before it existed): `{"url": ...}`."""
    if notify is None:
        return None
    if not isinstance(notify, dict) or set(notify) != {"url"}:
        raise ValueError("notify must be {\"url\": ...}")
    problem = Destination.notify_url_problem(notify["url"])
    if problem is not None:
        raise ValueError(f"notify.url {problem}")
    url: str = notify["url"]
    return url


def encode_generations(kept: dict[Identity, KeptContent]) -> bytes:
    """A destination's shared objects whose content outlived the owner that wrote it."""
    objects = {identity.key(): {"blob": content.blob, "generation": content.generation}
               for identity, content in kept.items()}
    return (json.dumps({"objects": objects}, indent=1, sort_keys=True) + "\n").encode()


def decode_generations(data: bytes) -> dict[Identity, KeptContent]:
    raw = json.loads(data)
    return {Identity.from_key(key): KeptContent(str(item["blob"]), int(item["generation"]))
            for key, item in raw["objects"].items()}


def layout_version(tree: Tree) -> int:
    """The layout a tree is written in: 0 for an empty store, 1 for a store written before
    layouts were recorded, else what `.statewriter/layout.json` says."""
    data = tree.read(layout.LAYOUT_RECORD)
    if data is None:
        return 1 if tree.is_folder(layout.STATE) else 0
    version = read_record(layout.LAYOUT_RECORD, data, lambda raw: json.loads(raw)["version"])
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptState(f"{layout.LAYOUT_RECORD}: version {quoted(version)} is not an integer")
    return version


def destination_name_of(path: str) -> str:
    """The destination a generations record belongs to, from its path."""
    return path.rpartition("/")[2].removesuffix(".json")


R = TypeVar("R")


def read_record(path: str, data: bytes, decode: Callable[[bytes], R]) -> R:
    try:
        return decode(data)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CorruptState(f"{path}: unreadable state record ({problem_of(error)}); "
                           "repair it: revert the commit that broke it (`statewriter revert` on the "
                           "stopped service's data folder, or git revert on a clone)") from None
