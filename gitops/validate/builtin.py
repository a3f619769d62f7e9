"""The schemas of Kubernetes' built-in kinds, for each supported Kubernetes version.

They come from the `kubernetes-validate` package: `kubernetes-json-schema/v1.NN.0-local-strict/
_definitions.json`, JSON Schema generated from each release's OpenAPI document (`$defs` by Go
type, each kind's definition tagged with x-kubernetes-group-version-kind, `type: [x, "null"]`
for optional fields, `additionalProperties: false` on every object with properties). A version's
file is read (with importlib.resources, about 6 MB) when that version is first asked for, and a
kind's schema compiled when first asked for; both are kept.

That conversion lost or changed some of what the API server does, which the compiled nodes put
back (schema.py says what each special value accepts):

- IntOrString and Quantity became `oneOf` string/number, Time and MicroTime a date-time string:
  they decode with Go code of their own, and so are checked as that code parses them.
- RawExtension and apiextensions' JSON (and JSONSchemaPropsOr*) take any value; an object schema
  without properties (FieldsV1, empty structs) takes any object.
- `format: byte` strings must be base64; int32 and int64 integers must fit, but server-side
  apply converts them with Go's integer conversion (runtime.DefaultUnstructuredConverter), which
  wraps instead of failing: an out-of-range integer is only a warning.
- A JSON null decodes to the Go zero value, so it is accepted wherever a value is optional.
- `required` is what Kubernetes' OpenAPI marks required (no `omitempty`), not what its Go
  validation enforces: NetworkPolicySpec.podSelector (1.25-1.30) and StatefulSetSpec.serviceName
  (before 1.32) are marked required and are not. A missing required field is an error only for
  the fields in `CERTAINLY_REQUIRED`, checked against pkg/apis/*/validation of
  kubernetes/kubernetes; for the others it is a warning. The Go validation requires more than the
  schema says (a container's image, a selector matching the template's labels...): that is not
  checked here.
- `enum` comes from `+enum` Go types, whose constants the Go validation enforces; the empty
  string, which defaulting often replaces, is only warned about.
- `status`: the API server resets it on create and update of kinds that have one, so only what
  server-side apply's typed conversion checks (unknown fields, JSON types) is an error there.

Whether a kind is namespaced is not in these data (its OpenAPI definitions do not say), so this
module does not tell; `gitops.identity` keeps the list of cluster-scoped kinds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from importlib import resources
from typing import Any

from gitops.quoting import quoted
from gitops.validate.schema import (
    ANY,
    BYTES,
    INT32,
    INT64,
    INT_OR_STRING,
    MICRO_TIME,
    OBJECT,
    OPEN,
    QUANTITY,
    REFUSED,
    TIME,
    Node,
)

SUPPORTED: tuple[str, ...] = tuple(f"1.{minor}" for minor in range(25, 38))
NEWEST = SUPPORTED[-1]

_TYPE_BITS: Mapping[str, int] = {"object": 1, "array": 2, "string": 4, "integer": 8, "number": 16,
                                 "boolean": 32}
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = _META + "ObjectMeta"
_SPECIALS: Mapping[str, int] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": INT_OR_STRING,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": QUANTITY,
    _META + "Time": TIME,
    _META + "MicroTime": MICRO_TIME,
    "io.k8s.apimachinery.pkg.runtime.RawExtension": ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": ANY,
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": ANY,
}


def _fields(**by_type: tuple[str, ...]) -> frozenset[str]:
    return frozenset(f"io.k8s.{name.replace('__', '.')}.{field}"
                     for name, fields in by_type.items() for field in fields)


# Required fields whose absence (or zero value) the Go validation refuses in every supported
# version: pkg/apis/{core,apps,batch,networking,rbac,autoscaling,storage}/validation,
# apimachinery's metav1 validation (label selectors, owner references) and apiextensions'.
CERTAINLY_REQUIRED: frozenset[str] = _fields(
    api__apps__v1__Deployment=("spec",), api__apps__v1__DeploymentSpec=("selector", "template"),
    api__apps__v1__StatefulSet=("spec",), api__apps__v1__StatefulSetSpec=("selector", "template"),
    api__apps__v1__DaemonSet=("spec",), api__apps__v1__DaemonSetSpec=("selector", "template"),
    api__apps__v1__ReplicaSet=("spec",), api__apps__v1__ReplicaSetSpec=("selector",),
    api__batch__v1__JobSpec=("template",), api__batch__v1__CronJob=("spec",),
    api__batch__v1__CronJobSpec=("schedule", "jobTemplate"),
    api__core__v1__PodSpec=("containers",), api__core__v1__Container=("name",),
    api__core__v1__EphemeralContainer=("name",), api__core__v1__EnvVar=("name",),
    api__core__v1__Volume=("name",), api__core__v1__VolumeMount=("name", "mountPath"),
    api__core__v1__VolumeDevice=("name", "devicePath"),
    api__core__v1__ContainerPort=("containerPort",), api__core__v1__ServicePort=("port",),
    api__core__v1__KeyToPath=("key", "path"), api__core__v1__ConfigMapKeySelector=("key",),
    api__core__v1__SecretKeySelector=("key",), api__core__v1__ObjectFieldSelector=("fieldPath",),
    api__core__v1__ResourceFieldSelector=("resource",), api__core__v1__HTTPGetAction=("port",),
    api__core__v1__TCPSocketAction=("port",), api__core__v1__GRPCAction=("port",),
    api__core__v1__NodeSelector=("nodeSelectorTerms",),
    api__core__v1__NodeSelectorRequirement=("key", "operator"),
    api__core__v1__PodAffinityTerm=("topologyKey",),
    api__core__v1__WeightedPodAffinityTerm=("weight", "podAffinityTerm"),
    api__core__v1__PreferredSchedulingTerm=("weight",),
    api__core__v1__TopologySpreadConstraint=("maxSkew", "topologyKey", "whenUnsatisfiable"),
    api__core__v1__PersistentVolumeClaimVolumeSource=("claimName",),
    api__core__v1__SeccompProfile=("type",),
    api__networking__v1__HTTPIngressPath=("pathType", "backend"),
    api__networking__v1__HTTPIngressRuleValue=("paths",),
    api__networking__v1__IngressServiceBackend=("name",), api__networking__v1__IPBlock=("cidr",),
    api__rbac__v1__PolicyRule=("verbs",), api__rbac__v1__RoleRef=("kind", "name"),
    api__rbac__v1__Subject=("kind", "name"), api__rbac__v1__RoleBinding=("roleRef",),
    api__rbac__v1__ClusterRoleBinding=("roleRef",),
    api__autoscaling__v2__HorizontalPodAutoscalerSpec=("scaleTargetRef", "maxReplicas"),
    api__autoscaling__v2__CrossVersionObjectReference=("kind", "name"),
    api__autoscaling__v2__MetricSpec=("type",), api__autoscaling__v2__MetricTarget=("type",),
    api__storage__v1__StorageClass=("provisioner",),
    apimachinery__pkg__apis__meta__v1__LabelSelectorRequirement=("key", "operator"),
    apimachinery__pkg__apis__meta__v1__OwnerReference=("apiVersion", "kind", "name", "uid"),
) | frozenset(
    f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.{name}"
    for name in ("CustomResourceDefinition.spec", "CustomResourceDefinitionSpec.group",
                 "CustomResourceDefinitionSpec.names", "CustomResourceDefinitionSpec.scope",
                 "CustomResourceDefinitionSpec.versions", "CustomResourceDefinitionNames.plural",
                 "CustomResourceDefinitionNames.kind", "CustomResourceDefinitionVersion.name")
)


def builtin_kinds(version: str) -> frozenset[tuple[str, str, str]]:
    """(group, version, kind) of every kind Kubernetes `version` defines ("" is the core group),
    alpha and beta APIs included (a cluster serves those only when enabled), lists and the
    meta.k8s.io kinds (Status, WatchEvent, DeleteOptions...) left out."""
    return frozenset(_release(version).kinds)


def builtin_schema(version: str, group: str, api_version_version: str, kind: str) -> Node | None:
    """The compiled schema of kind `kind` of `group`/`api_version_version` in Kubernetes
    `version`, or None when that release has no such kind."""
    return _release(version).kind(group, api_version_version, kind)


def object_meta(version: str) -> Node:
    """ObjectMeta's schema: what `metadata` may hold, for custom resources too
    (schema.compile_crd's `object_meta`)."""
    return _release(version).definition(OBJECT_META)


def _release(version: str) -> _Release:
    release = _RELEASES.get(version)
    if release is None:
        if version not in SUPPORTED:
            raise ValueError(f"Kubernetes {quoted(version)} is not supported: one of "
                             f"{', '.join(SUPPORTED)}")
        with _RELEASES_LOCK:
            release = _RELEASES.setdefault(version, _Release(version))
    return release


class _Release:
    """One Kubernetes version's definitions, read on first use, compiled kind by kind."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._lock = threading.Lock()
        self._definitions: Mapping[str, Any] | None = None
        self._kinds: dict[tuple[str, str, str], str] | None = None
        self._nodes: dict[str, Node] = {}

    @property
    def kinds(self) -> Mapping[tuple[str, str, str], str]:
        if self._kinds is None:
            self._load()
        assert self._kinds is not None
        return self._kinds

    def kind(self, group: str, version: str, kind: str) -> Node | None:
        name = self.kinds.get((group, version, kind))
        return None if name is None else self.definition(name)

    def definition(self, name: str) -> Node:
        node = self._nodes.get(name)
        if node is not None:
            return node
        with self._lock:
            if self._definitions is None:
                self._load_locked()
            assert self._definitions is not None
            compiler = _Compiler(self._definitions, self._nodes)
            node = compiler.reference(name)
            self._nodes.update(compiler.fresh)
            return node

    def _load(self) -> None:
        with self._lock:
            if self._kinds is None:
                self._load_locked()

    def _load_locked(self) -> None:
        if self._definitions is None:
            folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
            text = (folder / f"v{self.version}.0-local-strict" / "_definitions.json").read_text()
            self._definitions = json.loads(text)["$defs"]
        kinds: dict[tuple[str, str, str], str] = {}
        for name, raw in self._definitions.items():
            if name.startswith(_META):
                continue
            for gvk in raw.get("x-kubernetes-group-version-kind", ()):
                if not gvk["kind"].endswith("List"):
                    kinds[(gvk["group"], gvk["version"], gvk["kind"])] = name
        self._kinds = kinds


class _Compiler:
    """Definitions to nodes. A node is registered before it is filled in, so recursive
    definitions (JSONSchemaProps) compile to cycles; the nodes of one compilation are published
    together, once all are complete, for threads that read them without the lock."""

    def __init__(self, definitions: Mapping[str, Any], published: Mapping[str, Node]) -> None:
        self.definitions = definitions
        self.published = published
        self.fresh: dict[str, Node] = {}

    def reference(self, name: str) -> Node:
        node = self.published.get(name) or self.fresh.get(name)
        if node is None:
            node = self.fresh[name] = Node(name)
            node.builtin = True
            self._fill(node, self.definitions.get(name, {}), name)
        return node

    def inline(self, raw: Any, owner: str) -> Node:
        if isinstance(raw, Mapping) and "$ref" in raw:
            return self.reference(str(raw["$ref"]).rpartition("/")[2])
        node = Node(owner)
        node.builtin = True
        self._fill(node, raw if isinstance(raw, Mapping) else {}, owner)
        return node

    def _fill(self, node: Node, raw: Mapping[str, Any], name: str) -> None:
        special = _SPECIALS.get(name, 0)
        if special:
            node.special = special
            node.finish()
            return
        kind = raw.get("type")
        for word in [kind] if isinstance(kind, str) else kind or ():
            node.types |= _TYPE_BITS.get(word, 0)
        node.nullable = True  # a null decodes to the zero value
        if raw.get("enum"):
            node.enum = tuple(value for value in raw["enum"] if value is not None)
        form = raw.get("format")
        if form == "int32":
            node.int_range = INT32
        elif form == "int64":
            node.int_range = INT64
        elif form == "byte" and node.types & ~OBJECT:
            node.special = BYTES
        self._object(node, raw, name)
        if "items" in raw:
            node.items = self.inline(raw["items"], name)
        list_type = raw.get("x-kubernetes-list-type")
        if list_type in ("set", "map"):
            node.list_type = list_type
            node.map_keys = tuple(raw.get("x-kubernetes-list-map-keys", ()))
        node.finish()

    def _object(self, node: Node, raw: Mapping[str, Any], name: str) -> None:
        properties = raw.get("properties")
        if isinstance(properties, Mapping):
            node.properties = {field: self.inline(below, name) for field, below in properties.items()}
        additional = raw.get("additionalProperties")
        if isinstance(additional, Mapping):
            node.additional = self.inline(additional, name)
        node.unknown = REFUSED if node.properties or additional is False else OPEN
        if node.properties and additional is True:
            node.unknown = OPEN
        node.required = tuple(raw.get("required", ()))
        node.required_errors = frozenset(field for field in node.required
                                         if f"{name}.{field}" in CERTAINLY_REQUIRED)
        if raw.get("x-kubernetes-group-version-kind") and "status" in node.properties:
            node.resets = frozenset({"status"})


_RELEASES: dict[str, _Release] = {}
_RELEASES_LOCK = threading.Lock()
