"""One object checked the way the destination's API server checks it (docs/reference.md section 11):
is its apiVersion and kind served there, does it validate against that schema (and its CRD's
CEL rules), does it change a field Kubernetes keeps, does its namespace exist. The
destination is a `Target`: what its cluster serves and holds, and the custom kinds it and the
bundle define. Every check reports findings; errors refuse, warnings never do."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitops.secrets.envelope import ENCRYPTED_FIELDS, claims_encryption
from gitops.validate import builtin
from gitops.validate.cel import check_rules
from gitops.validate.crds import CRD_GROUP, CustomKind, crd_problems
from gitops.validate.findings import Finding
from gitops.validate.immutable import immutable_findings
from gitops.validate.schema import check

# Namespaces every cluster has (docs/reference.md section 11), besides the Flux namespace
ALWAYS_THERE = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
FLUX_NAMESPACE = "flux-system"
# Flux's own APIs: every destination is a Flux worker (source, kustomize, helm and
# notification are the default install's controllers)
FLUX_GROUPS = frozenset({"source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io",
                         "helm.toolkit.fluxcd.io", "notification.toolkit.fluxcd.io"})


@dataclass(frozen=True)
class Target:
    """What validation knows of one destination."""

    name: str
    kubernetes: str  # a version of builtin.SUPPORTED
    apis: frozenset[str]  # API groups and group/version/Kind served without statewriter
    namespaces: frozenset[str] | None  # declared by its owner (None: not declared)
    flux_namespace: str
    custom_kind: Callable[[str, str], CustomKind | None]  # (group, kind): defined by a CRD?
    namespace_created: Callable[[str], bool]  # a Namespace object statewriter writes there


def check_object(doc: Mapping[str, Any], target: Target,
                 old: Mapping[str, Any] | None = None) -> list[Finding]:
    """Every finding for `doc` (normalised: its namespace set when it is namespaced) in
    `target`; `old` is the object it replaces there (None: it is new)."""
    doc, old = as_applied(doc), None if old is None else as_applied(old)
    api_version, kind = str(doc["apiVersion"]), str(doc["kind"])
    group, _, version = api_version.rpartition("/")
    found: list[Finding] = []
    custom = target.custom_kind(group, kind)
    if (group, version, kind) in builtin.builtin_kinds(target.kubernetes):
        schema = builtin.builtin_schema(target.kubernetes, group, version, kind)
        if schema is not None:
            found.extend(check(doc, schema))
        if "alpha" in version:
            found.append(Finding("apiVersion", f"{api_version} is an alpha API: a cluster serves "
                                               "it only when it was enabled", warning=True))
    elif custom is not None and version in custom.served:
        served = custom.served[version]
        found.extend(check(doc, served.schema))
        if served.has_rules:
            found.extend(check_rules(doc, served.raw, old))
    elif custom is not None:
        listed = ", ".join(sorted(custom.served)) or "none"
        found.append(Finding("apiVersion", f"{api_version} is not a version its CRD {custom.crd} "
                                           f"serves (served: {listed})"))
    elif not _listed(target.apis, group, version, kind):
        found.append(Finding("apiVersion", _not_served(target, api_version, kind, group)))
    if group == CRD_GROUP and kind == "CustomResourceDefinition":
        found.extend(crd_problems(doc))
    if old is not None:
        found.extend(immutable_findings(group, kind, doc, old))
    found.extend(_namespace(doc, target))
    return found


def _listed(apis: frozenset[str], group: str, version: str, kind: str) -> bool:
    return group in apis or f"{group}/{version}/{kind}" in apis


def _not_served(target: Target, api_version: str, kind: str, group: str) -> str:
    if group == "" or any(g == group for g, _, _ in builtin.builtin_kinds(target.kubernetes)):
        return (f"{kind} of {api_version} is not served by Kubernetes {target.kubernetes} "
                f"(destination {target.name}'s kubernetesVersion, or the newest statewriter knows "
                "when it declares none)")
    return (f"{kind} of {api_version} is not served by destination {target.name}: no CRD there "
            f"defines it and its apis do not list {group} (add the group to the destination's "
            "apis if its cluster serves it without statewriter)")


def _namespace(doc: Mapping[str, Any], target: Target) -> list[Finding]:
    namespace = doc.get("metadata", {}).get("namespace")
    if not isinstance(namespace, str) or not namespace:
        return []
    if (namespace in ALWAYS_THERE or namespace == target.flux_namespace
            or target.namespace_created(namespace)
            or (target.namespaces is not None and namespace in target.namespaces)):
        return []
    if target.namespaces is not None:
        return [Finding("metadata.namespace", f"namespace {namespace} does not exist in "
                                              f"destination {target.name}: nothing creates it "
                                              "and its namespaces do not list it")]
    return [Finding("metadata.namespace", f"namespace {namespace} is not created by statewriter "
                                          f"in destination {target.name}, which declares no "
                                          "namespaces: the apply fails unless it exists there",
                    warning=True)]


def as_applied(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """What of `doc` the API server sees: a SOPS-encrypted document (a Secret its pipeline
    encrypted, or one statewriter did) is decrypted by Flux first, so its `sops` block never
    reaches the cluster and its encrypted values are not what the cluster checks."""
    if not claims_encryption(doc):
        return doc
    return {key: value for key, value in doc.items() if key not in _ENCRYPTED_PARTS}


_ENCRYPTED_PARTS = frozenset({"sops", *ENCRYPTED_FIELDS})
