"""The naming rules the API server applies to `metadata.name` of Kubernetes' built-in kinds.

Where the table comes from: for each kind, the name function its `Validate<Kind>` passes to
`ValidateObjectMeta` in kubernetes/kubernetes (pkg/apis/core/validation: ValidatePodName,
ValidateServiceName, ValidateNamespaceName, ...; pkg/apis/{apps,batch,networking,storage,
scheduling,node,coordination,discovery,admissionregistration,rbac}/validation; and
apiextensions-apiserver's ValidateCustomResourceDefinition). PodDisruptionBudget's validation
names no rule, so it gets the one every create applies: path.ValidatePathSegmentName
(k8s.io/apiserver/pkg/registry/rest/create.go, BeforeCreate).

Kinds are keyed by (API group, kind): a `ConfigMap` of another group is not Kubernetes' own,
and kinds this table does not know keep statewriter's generic object-name rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gitops import names
from gitops.identity import CRD_GROUP, CRD_KIND
from gitops.quoting import quoted

SUBDOMAIN = "subdomain"
LABEL = "label"
DNS1035_LABEL = "dns1035"
PATH_SEGMENT = "path-segment"

_CHECKS: Mapping[str, Callable[[object], bool]] = {
    SUBDOMAIN: names.is_subdomain,
    LABEL: names.is_label,
    DNS1035_LABEL: names.is_dns1035_label,
    PATH_SEGMENT: names.is_path_segment,
}

_EXPLAINED: Mapping[str, str] = {
    SUBDOMAIN: "must be a DNS-1123 subdomain: at most 253 characters, dot-separated parts of "
               "lowercase letters, digits and '-' that start and end with a letter or digit",
    LABEL: "must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
           "starting and ending with a letter or digit",
    DNS1035_LABEL: "must be a DNS-1035 label: at most 63 lowercase letters, digits and '-', "
                   "starting with a letter and ending with a letter or digit",
    PATH_SEGMENT: "may not be '.' or '..' and may not contain '/' or '%'",
}


def _rule(rule: str, group: str, *kinds: str) -> dict[tuple[str, str], str]:
    return {(group, kind): rule for kind in kinds}


NAME_RULES: Mapping[tuple[str, str], str] = {
    **_rule(SUBDOMAIN, "", "ConfigMap", "Secret", "ServiceAccount", "Pod", "PodTemplate",
            "Endpoints", "PersistentVolume", "PersistentVolumeClaim", "ReplicationController",
            "LimitRange", "ResourceQuota", "Node"),
    **_rule(LABEL, "", "Namespace"),
    **_rule(DNS1035_LABEL, "", "Service"),
    **_rule(SUBDOMAIN, "apps", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
            "ControllerRevision"),
    # served until Kubernetes 1.16 (workloads) and 1.22 (Ingress), validated the same way
    **_rule(SUBDOMAIN, "extensions", "Deployment", "DaemonSet", "ReplicaSet", "Ingress",
            "NetworkPolicy"),
    **_rule(SUBDOMAIN, "batch", "Job", "CronJob"),
    **_rule(SUBDOMAIN, "networking.k8s.io", "Ingress", "IngressClass", "NetworkPolicy"),
    **_rule(PATH_SEGMENT, "policy", "PodDisruptionBudget"),
    **_rule(SUBDOMAIN, "storage.k8s.io", "StorageClass", "CSIDriver", "VolumeAttachment"),
    **_rule(SUBDOMAIN, "scheduling.k8s.io", "PriorityClass"),
    **_rule(SUBDOMAIN, "node.k8s.io", "RuntimeClass"),
    **_rule(SUBDOMAIN, "coordination.k8s.io", "Lease"),
    **_rule(SUBDOMAIN, "discovery.k8s.io", "EndpointSlice"),
    **_rule(SUBDOMAIN, "admissionregistration.k8s.io", "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration"),
    **_rule(SUBDOMAIN, CRD_GROUP, CRD_KIND),
    **_rule(PATH_SEGMENT, "rbac.authorization.k8s.io", "Role", "ClusterRole", "RoleBinding",
            "ClusterRoleBinding"),
}

CRONJOB_NAME_MAX = 52  # ValidateCronJob: its Jobs are named <name>-<11 characters>
JOB_NAME_MAX = 63  # the Job's name becomes the value of its pods' job-name label
SYSTEM_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})


def _cronjob(name: str, doc: Mapping[str, Any]) -> str | None:
    if len(name) > CRONJOB_NAME_MAX:
        return f"must be at most {CRONJOB_NAME_MAX} characters"
    return None


def _job(name: str, doc: Mapping[str, Any]) -> str | None:
    # Unless the selector is manual, the API server adds the labels job-name and
    # batch.kubernetes.io/job-name with the name as value to the pod template, and refuses
    # the Job when that value is longer than a label value may be.
    if len(name) > JOB_NAME_MAX and _field(doc, "spec", "manualSelector") is not True:
        return f"must be at most {JOB_NAME_MAX} characters (unless spec.manualSelector is true)"
    return None


def _crd(name: str, doc: Mapping[str, Any]) -> str | None:
    plural, group = _field(doc, "spec", "names", "plural"), _field(doc, "spec", "group")
    required = f"{plural}.{group}" if isinstance(plural, str) and isinstance(group, str) else None
    if name != required:
        return f"must be <spec.names.plural>.<spec.group> ({quoted(required)})"
    return None


def _priority_class(name: str, doc: Mapping[str, Any]) -> str | None:
    if name.startswith("system-") and name not in SYSTEM_PRIORITY_CLASSES:
        return "may not start with 'system-' (reserved for Kubernetes' own priority classes)"
    return None


_EXTRA_RULES: Mapping[tuple[str, str], Callable[[str, Mapping[str, Any]], str | None]] = {
    ("batch", "CronJob"): _cronjob,
    ("batch", "Job"): _job,
    (CRD_GROUP, CRD_KIND): _crd,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
}


def _field(doc: Mapping[str, Any], *path: str) -> object:
    value: object = doc
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def name_problem(group: str, kind: str, name: str, doc: Mapping[str, Any]) -> str | None:
    """Why the API server would refuse `name` for this built-in kind, or None (also for kinds
    this table does not know)."""
    rule = NAME_RULES.get((group, kind))
    if rule is None:
        return None
    problem = None if _CHECKS[rule](name) else _EXPLAINED[rule]
    extra = _EXTRA_RULES.get((group, kind))
    if problem is None and extra is not None:
        problem = extra(name, doc)
    return f"metadata.name {quoted(name)} of a {kind} {problem}" if problem else None
