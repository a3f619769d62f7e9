"""Changes Kubernetes refuses: fields of built-in kinds that cannot change once the object
exists, compared between the stored object and the one that replaces it (the API server's
ValidateXUpdate functions: pkg/apis/apps/validation, batch, core, rbac, storage, networking;
apiextensions' CRD scope). Flux recreates an object that carries
`kustomize.toolkit.fluxcd.io/force: enabled` instead of updating it, so such objects are not
checked.

Manifests are compared, not the objects the cluster holds: a field one side sets and the
other leaves out may only be a default made explicit (the API server would then see no
change), so such a difference is a warning; a value both sides set, differently, is certain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.validate.findings import Finding

FORCE_ANNOTATION = "kustomize.toolkit.fluxcd.io/force"

_CERTAIN, _MAYBE = 2, 1

# (group, kind) -> the fields (paths of keys) that cannot change: each with the default that
# leaving it out means (None: none), and whether it is compared whole (a map of labels or
# names, where any key one side lacks is a change) or as a structure (where a key one side
# leaves out may be a default the API server fills in)
_WHOLE, _STRUCTURE = True, False
_IMMUTABLE: Mapping[tuple[str, str], tuple[tuple[tuple[str, ...], object, bool], ...]] = {
    ("apps", "Deployment"): ((("spec", "selector"), None, _WHOLE),),
    ("apps", "ReplicaSet"): ((("spec", "selector"), None, _WHOLE),),
    ("apps", "DaemonSet"): ((("spec", "selector"), None, _WHOLE),),
    ("apps", "StatefulSet"): (
        (("spec", "selector"), None, _WHOLE), (("spec", "serviceName"), "", _WHOLE),
        (("spec", "volumeClaimTemplates"), None, _STRUCTURE),
        (("spec", "podManagementPolicy"), "OrderedReady", _WHOLE),
    ),
    ("batch", "Job"): ((("spec", "selector"), None, _WHOLE),
                       (("spec", "template"), None, _STRUCTURE)),
    ("", "Service"): ((("spec", "clusterIP"), None, _WHOLE),),
    ("", "PersistentVolumeClaim"): (
        (("spec", "storageClassName"), None, _WHOLE), (("spec", "accessModes"), None, _WHOLE),
        (("spec", "volumeMode"), "Filesystem", _WHOLE), (("spec", "selector"), None, _WHOLE),
        (("spec", "dataSource"), None, _WHOLE),
    ),
    ("rbac.authorization.k8s.io", "RoleBinding"): ((("roleRef",), None, _WHOLE),),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ((("roleRef",), None, _WHOLE),),
    ("storage.k8s.io", "StorageClass"): (
        (("provisioner",), None, _WHOLE), (("parameters",), None, _WHOLE),
        (("reclaimPolicy",), "Delete", _WHOLE), (("volumeBindingMode",), "Immediate", _WHOLE),
    ),
    ("networking.k8s.io", "IngressClass"): ((("spec", "controller"), None, _WHOLE),),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): ((("spec", "scope"), None, _WHOLE),),
}
# ConfigMaps and Secrets marked `immutable: true` keep their data
_DATA_FIELDS = {("", "ConfigMap"): ("data", "binaryData"), ("", "Secret"): ("data", "stringData")}
_MISSING = object()


def immutable_findings(group: str, kind: str, new: Mapping[str, Any],
                       old: Mapping[str, Any]) -> list[Finding]:
    """What in `new` changes a field of the stored `old` that Kubernetes keeps as it is."""
    if _forced(new):
        return []
    found: list[Finding] = []
    for path, default, whole in _IMMUTABLE.get((group, kind), ()):
        before, after = _at(old, path), _at(new, path)
        if before is _MISSING and after is _MISSING:
            continue
        if default is not None:
            before = default if before is _MISSING else before
            after = default if after is _MISSING else after
        elif whole and _MISSING in (before, after):
            continue  # set once where it was left out (a selector is required, a volume
            # name may be set later): the API server decides, not a comparison of manifests
        found.extend(_finding(".".join(path), _difference(before, after, whole)))
    fields = _DATA_FIELDS.get((group, kind))
    if fields and old.get("immutable") is True:
        if new.get("immutable") is not True:
            found.append(Finding("immutable", "field is immutable when `immutable` is set"
                                              + _HINT))
        for field in fields:
            found.extend(_finding(field, _difference(old.get(field, _MISSING),
                                                     new.get(field, _MISSING), whole=True)))
    return found


_HINT = (": Flux's apply of it would fail; to replace the object, give it the annotation "
         f"{FORCE_ANNOTATION}: enabled (Flux then deletes and recreates it)")


def _finding(path: str, difference: int) -> list[Finding]:
    if difference == _CERTAIN:
        return [Finding(path, "field is immutable" + _HINT)]
    if difference == _MAYBE:
        return [Finding(path, "field is immutable, and this manifest sets it differently from "
                              "the stored one where one leaves out what the other sets: the "
                              "cluster refuses the change unless that is only a default",
                        warning=True)]
    return []


def _forced(doc: Mapping[str, Any]) -> bool:
    meta = doc.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return isinstance(annotations, Mapping) and annotations.get(FORCE_ANNOTATION) == "enabled"


def _at(doc: Mapping[str, Any], path: tuple[str, ...]) -> object:
    value: object = doc
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return _MISSING if value is None else value


def _difference(before: object, after: object, whole: bool = False) -> int:
    """0: the same; _CERTAIN: a value both set differs; _MAYBE: only keys one side leaves
    out differ (a default, perhaps). With `whole`, any difference is certain (data)."""
    if before == after or (_same_number(before, after)):
        return 0
    if whole:
        return _CERTAIN
    if before is _MISSING or after is _MISSING:
        return _MAYBE
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        worst = 0
        for key in before.keys() | after.keys():
            worst = max(worst, _difference(before.get(key, _MISSING), after.get(key, _MISSING)))
            if worst == _CERTAIN:
                break
        return worst
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return _CERTAIN
        return max((_difference(a, b) for a, b in zip(before, after, strict=True)), default=0)
    return _CERTAIN


def _same_number(before: object, after: object) -> bool:
    numbers = (int, float)
    return (isinstance(before, numbers) and isinstance(after, numbers)
            and not isinstance(before, bool) and not isinstance(after, bool) and before == after)
