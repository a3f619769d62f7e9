"""CustomResourceDefinitions: the kinds one defines (group, kind, scope, and each served
version's compiled schema), and the checks the API server makes of a CRD itself
(apiextensions-apiserver pkg/apis/apiextensions/validation/validation.go,
ValidateCustomResourceDefinition): names, scope, versions, and the structural-schema rules
that are certain. What cannot be decided is a warning, never a refusal."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitops import caches
from gitops.frozen import FrozenDict
from gitops.lru import LRU
from gitops.validate import builtin
from gitops.validate.findings import Finding
from gitops.validate.schema import Node, cached_crd

CRD_GROUP = "apiextensions.k8s.io"
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SCOPES = ("Namespaced", "Cluster")
# A node whose `type` may be empty in a structural schema (apiextensions schema/validation.go)
_UNTYPED_OK = ("x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")


@dataclass(frozen=True)
class Version:
    """One version a CRD serves."""

    name: str
    schema: Node  # compiled for the destination's Kubernetes version
    raw: Mapping[str, Any]  # its openAPIV3Schema, which the CEL rules walk
    has_rules: bool  # any x-kubernetes-validations in it


@dataclass(frozen=True)
class CustomKind:
    """A kind a CRD defines, as the API server serves it."""

    crd: str  # the CRD's name (<plural>.<group>)
    group: str
    kind: str
    cluster_scoped: bool
    served: Mapping[str, Version]  # served versions by name
    versions: tuple[str, ...]  # every version it lists, served or not


def custom_kind(crd: Mapping[str, Any], kubernetes: str) -> CustomKind | None:
    """The kind `crd` defines, for an API server of `kubernetes` (None: it defines none that
    can be told, such as a malformed CRD, which `crd_problems` reports)."""
    key = (_digest(crd), kubernetes)
    found = _KINDS.get(key)
    if found is None:
        found = _custom_kind(crd, kubernetes)
        if found is not None:
            _KINDS.put(key, found)
    return found


def _custom_kind(crd: Mapping[str, Any], kubernetes: str) -> CustomKind | None:
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return None
    names, group = spec.get("names"), spec.get("group")
    kind = names.get("kind") if isinstance(names, Mapping) else None
    versions = spec.get("versions")
    if not isinstance(group, str) or not isinstance(kind, str) or not isinstance(versions, list):
        return None
    minor = int(kubernetes.partition(".")[2])
    served: dict[str, Version] = {}
    listed: list[str] = []
    for version in versions:
        if not isinstance(version, Mapping) or not isinstance(version.get("name"), str):
            continue
        listed.append(version["name"])
        if version.get("served") is not True:
            continue
        raw = _schema_of(version)
        subresources = version.get("subresources")
        status = isinstance(subresources, Mapping) and "status" in subresources
        node = cached_crd(raw, (1, minor), status_subresource=status,
                          object_meta=builtin.object_meta(kubernetes))
        served[version["name"]] = Version(version["name"], node, raw, _has_rules(raw))
    name = crd.get("metadata", {}).get("name") if isinstance(crd.get("metadata"), Mapping) else None
    return CustomKind(str(name or ""), group, kind, spec.get("scope") == "Cluster", served,
                      tuple(listed))


def _schema_of(version: Mapping[str, Any]) -> Mapping[str, Any]:
    schema = version.get("schema")
    raw = schema.get("openAPIV3Schema") if isinstance(schema, Mapping) else None
    return raw if isinstance(raw, Mapping) else {}


def _has_rules(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return "x-kubernetes-validations" in schema or any(_has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_rules(item) for item in schema)
    return False


def _digest(value: Any) -> bytes:
    """What identifies a CRD's content. A frozen one (the parse cache shares it between
    bundles, and no one can change it) is hashed once: every request of a promise sends the
    same CRDs, and hashing a large one costs more than checking the objects of its kinds."""
    if isinstance(value, FrozenDict):
        known = _FROZEN_DIGESTS.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        digest = _hash(value)
        _FROZEN_DIGESTS.put(id(value), (value, digest))  # holding it keeps its id its own
        return digest
    return _hash(value)


def _hash(value: Any) -> bytes:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).digest()


_FROZEN_DIGESTS: LRU[int, tuple[FrozenDict, bytes]] = caches.lru("frozen CRD digests",
                                                                  caches.CUSTOM_KINDS)


_KINDS: LRU[tuple[bytes, str], CustomKind] = caches.lru("custom kinds", caches.CUSTOM_KINDS)


# -- a CRD, as the API server checks it --------------------------------------------------------


def crd_problems(crd: Mapping[str, Any]) -> list[Finding]:
    """What the API server refuses in a CustomResourceDefinition (apiextensions.k8s.io/v1)."""
    found: list[Finding] = []
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return [Finding("spec", "Required value: a CustomResourceDefinition needs a spec")]
    group, names = spec.get("group"), spec.get("names")
    if not isinstance(group, str) or group.count(".") < 1:
        found.append(Finding("spec.group", "should be a domain with at least one dot"))
    if not isinstance(names, Mapping):
        found.append(Finding("spec.names", "Required value"))
        names = {}
    plural, kind = names.get("plural"), names.get("kind")
    if not isinstance(plural, str) or not _DNS1035.fullmatch(plural):
        found.append(Finding("spec.names.plural", "must be a lowercase DNS-1035 label"))
    if not isinstance(kind, str) or not kind:
        found.append(Finding("spec.names.kind", "Required value"))
    name = crd.get("metadata", {}).get("name") if isinstance(crd.get("metadata"), Mapping) else None
    if isinstance(plural, str) and isinstance(group, str) and name != f"{plural}.{group}":
        found.append(Finding("metadata.name", f"must be spec.names.plural+\".\"+spec.group "
                                              f"({plural}.{group})"))
    if spec.get("scope") not in _SCOPES:
        found.append(Finding("spec.scope", "Unsupported value: must be Namespaced or Cluster"))
    if spec.get("preserveUnknownFields") is True:
        found.append(Finding("spec.preserveUnknownFields", "cannot be true in apiextensions.k8s.io"
                                                           "/v1: set x-kubernetes-preserve-unknown"
                                                           "-fields in the version's schema"))
    found.extend(_version_problems(spec.get("versions")))
    return found


def _version_problems(versions: object) -> list[Finding]:
    if not isinstance(versions, list) or not versions:
        return [Finding("spec.versions", "Required value: at least one version")]
    found: list[Finding] = []
    seen: set[str] = set()
    storage = served = 0
    for i, version in enumerate(versions):
        where = f"spec.versions[{i}]"
        if not isinstance(version, Mapping):
            found.append(Finding(where, "must be an object"))
            continue
        name = version.get("name")
        if not isinstance(name, str) or not _DNS1035.fullmatch(name):
            found.append(Finding(f"{where}.name", "must be a DNS-1035 label"))
        elif name in seen:
            found.append(Finding(f"{where}.name", f"Duplicate value: {name}"))
        else:
            seen.add(name)
        storage += version.get("storage") is True
        served += version.get("served") is True
        schema = version.get("schema")
        raw = schema.get("openAPIV3Schema") if isinstance(schema, Mapping) else None
        if not isinstance(raw, Mapping):
            found.append(Finding(f"{where}.schema.openAPIV3Schema", "Required value: schemas are "
                                                                   "required"))
        else:
            found.extend(_structural(raw, f"{where}.schema.openAPIV3Schema", root=True))
    if storage != 1:
        found.append(Finding("spec.versions", "must have exactly one version marked as storage "
                                              f"version (has {storage})"))
    if not served:
        found.append(Finding("spec.versions", "no version is served: its objects cannot be "
                                              "created", warning=True))
    return found


def _structural(schema: Mapping[str, Any], path: str, root: bool = False) -> list[Finding]:
    """The structural-schema rules that are certain: a root of type object, and a type on
    every property and item schema (but int-or-string and preserve-unknown-fields nodes)."""
    found: list[Finding] = []
    kind = schema.get("type")
    if root and kind != "object" and not schema.get("x-kubernetes-preserve-unknown-fields"):
        found.append(Finding(f"{path}.type", "Required value: must be object at the root"))
    elif not root and not kind and not any(schema.get(flag) for flag in _UNTYPED_OK):
        found.append(Finding(f"{path}.type", "Required value: must not be empty for specified "
                                             "object fields"))
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            if isinstance(sub, Mapping):
                found.extend(_structural(sub, f"{path}.properties[{name}]"))
    items = schema.get("items")
    if isinstance(items, Mapping):
        found.extend(_structural(items, f"{path}.items"))
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        found.extend(_structural(additional, f"{path}.additionalProperties"))
    return found
