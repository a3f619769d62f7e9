"""Object identity: (API group, kind, namespace, name), the version deliberately left out."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

CRD_KIND = "CustomResourceDefinition"
CRD_GROUP = "apiextensions.k8s.io"

# Kinds Kubernetes itself defines as cluster-scoped, by (group, kind).
BUILTIN_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "ComponentStatus"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        (CRD_GROUP, CRD_KIND),
        ("apiregistration.k8s.io", "APIService"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "IPAddress"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("certificates.k8s.io", "ClusterTrustBundle"),
        ("policy", "PodSecurityPolicy"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("resource.k8s.io", "DeviceClass"),
        ("resource.k8s.io", "ResourceSlice"),
    }
)


@dataclass(frozen=True, order=True, slots=True)
class Identity:
    group: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{kind} {where}{self.name}"

    def key(self) -> str:
        """Stable string form used in the ownership index."""
        return "|".join((self.group, self.kind, self.namespace, self.name))

    @classmethod
    def from_key(cls, key: str) -> Identity:
        group, kind, namespace, name = key.split("|")
        return cls(sys.intern(group), sys.intern(kind), sys.intern(namespace), name)

    @property
    def group_kind(self) -> tuple[str, str]:
        return (self.group, self.kind)


def group_of(api_version: str) -> str:
    """'apps/v1' -> 'apps'; 'v1' -> '' (the core group)."""
    return api_version.rpartition("/")[0]


def identity_of(doc: dict[str, Any]) -> Identity:
    """Identity of a normalised document (namespace already defaulted)."""
    meta = doc["metadata"]
    return Identity(group_of(doc["apiVersion"]), doc["kind"], meta.get("namespace", ""), meta["name"])


def crd_defines(doc: dict[str, Any]) -> tuple[tuple[str, str], bool] | None:
    """For a CRD: ((group, kind) it defines, whether that kind is cluster-scoped)."""
    if doc.get("kind") != CRD_KIND or group_of(str(doc.get("apiVersion", ""))) != CRD_GROUP:
        return None
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return None
    names = spec.get("names")
    group, kind = spec.get("group"), names.get("kind") if isinstance(names, dict) else None
    if not isinstance(group, str) or not isinstance(kind, str):
        return None
    return (group, kind), spec.get("scope") == "Cluster"
