"""Invariant 9 (docs/reference.md section 3): every object is one the destination's API server serves
and accepts: its kind built into the destination's Kubernetes version (or the version asked
for), defined by a served version of a CRD in the tree, or listed in the destination's
`apis`; it validates against that schema. Only errors are findings: what could not be told
is no finding here (the service warned of it when it was written)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gitops.destination import Destination
from gitops.identity import CRD_GROUP, CRD_KIND
from gitops.validate import builtin
from gitops.validate.crds import CustomKind, custom_kind
from gitops.validate.objects import FLUX_GROUPS, Target, check_object
from gitops.verify.objects import Parsed


def check(destination: Destination, parsed: Iterable[Parsed], kubernetes: str | None,
          findings: list[str]) -> None:
    objects = list(parsed)
    version = kubernetes or destination.kubernetes_version or builtin.NEWEST
    crds: dict[str, list[Mapping[str, Any]]] = {}
    namespaces: set[str] = set()
    for _, _, doc in objects:
        if doc["kind"] == CRD_KIND and str(doc["apiVersion"]).rpartition("/")[0] == CRD_GROUP:
            group = (doc.get("spec") or {}).get("group")
            if isinstance(group, str):
                crds.setdefault(group, []).append(doc)
        elif doc["kind"] == "Namespace" and doc["apiVersion"] == "v1":
            namespaces.add(str(doc["metadata"]["name"]))

    def kind_of(group: str, kind: str) -> CustomKind | None:
        for crd in crds.get(group, ()):
            found = custom_kind(crd, version)
            if found is not None and found.kind == kind:
                return found
        return None

    target = Target(destination.name, version, FLUX_GROUPS | frozenset(destination.apis),
                    None if destination.namespaces is None else frozenset(destination.namespaces),
                    destination.flux_namespace, kind_of, namespaces.__contains__)
    for path, _, doc in objects:
        for finding in check_object(doc, target):
            if not finding.warning:
                findings.append(f"{path}: {finding.path or '(the object)'}: {finding.reason} "
                                f"(Kubernetes {version})")
