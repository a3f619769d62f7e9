"""Documents refused before anything is written (docs/reference.md section 4, "Documents refused"):
valid YAML that kustomize cannot build, that the API server refuses, or that would take over
the destination's own Flux objects. Each refusal names the file, the document and why."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops import kinds
from gitops.bundle import Bundle, Limits, parse_bundle, parse_file
from gitops.destination import Destination
from gitops.errors import InvalidBundle
from gitops.flux import DEFAULT_PREFIX, FLUX_NAMESPACE, flux_manifests, flux_object_identities
from gitops.identity import Identity
from gitops.owner import make_owner
from gitops.rules import document_problem
from gitops.tarbundle import read_tar_bundle
from gitops.yamldocs import ParseLimits, load_documents
from gitops.yamlscalars import YAML_V3, readings
from tests.support import CORPUS

FILE = "out/objects.yaml"
FIRST = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\ndata: {k: v}\n"
LONGEST = ".".join(("a" * 63, "b" * 63, "c" * 63, "d" * 61))  # a 253-character subdomain


def payload(files: dict[str, str], namespace: str | None = "default",
            name: str | None = "example") -> dict[str, Any]:
    request = {"namespace": namespace, "name": name} if name is not None else None
    return {"promise": "elastic-cloud", "request": request, "files": files}


def accepted(*documents: str, namespace: str | None = "default") -> Bundle:
    """The bundle of one file holding `documents`; fails the test if it is refused."""
    return parse_bundle(payload({FILE: "---\n".join(documents)}, namespace,
                                "example" if namespace else None))


def refusal(*documents: str, namespace: str | None = "default") -> InvalidBundle:
    """The refusal of one file holding a valid ConfigMap and then `documents`."""
    with pytest.raises(InvalidBundle) as caught:
        accepted(FIRST, *documents, namespace=namespace)
    return caught.value


def assert_names(error: InvalidBundle, word: str, document: int = 1) -> None:
    assert error.detail["file"] == FILE
    assert error.detail["document"] == document
    assert word in error.detail["reason"]
    assert error.message == f"{FILE}: document {document}: {error.detail['reason']}"


def obj(kind: str, name: object, api: str = "v1", meta: dict[str, Any] | None = None,
        **fields: Any) -> str:
    """A document in JSON (which is YAML), so that every string stays a string."""
    metadata = {"name": name, **(meta or {})}
    return json.dumps({"apiVersion": api, "kind": kind, "metadata": metadata, **fields}) + "\n"


# -- lists --------------------------------------------------------------------------------


@pytest.mark.parametrize("document", [
    "apiVersion: v1\nkind: List\nitems: []\n",
    "apiVersion: v1\nkind: List\nmetadata: {name: x}\n",
    "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n",
    "apiVersion: v1\nkind: ConfigMapList\nmetadata: {name: x}\nitems: {}\n",
    "apiVersion: v1\nkind: ConfigMapList\nmetadata: {name: x}\nitems: nothing\n",
    "apiVersion: v1\nkind: ConfigMapList\nmetadata: {name: x}\nitems:\n",
    "apiVersion: example.com/v1\nkind: WidgetList\nmetadata: {name: x}\nitems: 3\n",
])
def test_lists_are_refused_whatever_their_items(document: str) -> None:
    assert_names(refusal(document), "send the items as documents")


def test_a_kind_ending_in_list_without_items_is_an_object() -> None:
    accepted("apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: x}\nspec: {}\n")


# -- names of built-in kinds ----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "api", "name", "word"), [
    ("ConfigMap", "v1", "Web", "DNS-1123 subdomain"),
    ("Secret", "v1", "a.-b", "DNS-1123 subdomain"),
    ("Deployment", "apps/v1", "web_1", "DNS-1123 subdomain"),
    ("Ingress", "networking.k8s.io/v1", "a" * 254, "DNS-1123 subdomain"),
    ("Ingress", "extensions/v1beta1", "Web", "DNS-1123 subdomain"),
    ("Namespace", "v1", "team.a", "DNS-1123 label"),
    ("Namespace", "v1", "a" * 64, "DNS-1123 label"),
    ("Service", "v1", "1web", "DNS-1035 label"),
    ("Service", "v1", "web.internal", "DNS-1035 label"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", "50%", "'%'"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1", "..", "'..'"),
    ("PodDisruptionBudget", "policy/v1", "a%2F", "'%'"),
    ("CronJob", "batch/v1", "a" * 53, "at most 52"),
    ("Job", "batch/v1", "a" * 64, "at most 63"),
    ("PriorityClass", "scheduling.k8s.io/v1", "system-important", "reserved"),
    ("StorageClass", "storage.k8s.io/v1", "Fast", "DNS-1123 subdomain"),
])
def test_names_that_break_a_builtin_kinds_rule_are_refused(
    kind: str, api: str, name: str, word: str
) -> None:
    error = refusal(obj(kind, name, api))
    assert_names(error, word)
    assert kind in error.detail["reason"]


def test_a_crd_is_named_plural_dot_group() -> None:
    spec = {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced"}
    crd = "apiextensions.k8s.io/v1"
    accepted(obj("CustomResourceDefinition", "widgets.example.com", crd, spec=spec))
    error = refusal(obj("CustomResourceDefinition", "widget.example.com", crd, spec=spec))
    assert_names(error, "'widgets.example.com'")
    assert_names(refusal(obj("CustomResourceDefinition", "widgets.example.com", crd)),
                 "<spec.names.plural>.<spec.group>")


def test_long_job_names_pass_with_a_manual_selector() -> None:
    accepted(obj("Job", "a" * 64, "batch/v1", spec={"manualSelector": True}))
    accepted(obj("CronJob", "a" * 52, "batch/v1"), obj("Job", "a" * 63, "batch/v1"))


def test_a_name_yaml_reads_as_a_number_must_be_quoted() -> None:
    assert_names(refusal("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 2024}\n"), "quote")


@pytest.mark.parametrize(("kind", "api", "name"), [
    ("ConfigMap", "v1", "2024"),
    ("ConfigMap", "v1", "true"),
    ("ConfigMap", "v1", "null"),
    ("ConfigMap", "v1", "1e3"),
    ("Secret", "v1", "0o17"),
    ("Namespace", "v1", "2024"),
    ("Service", "v1", "a" * 63),
    ("ConfigMap", "v1", LONGEST),
    ("ConfigMap", "v1", "a" + "-" * 251 + "b"),  # parts have no limit of their own
    ("Deployment", "apps/v1", "web.v1.example"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", "system:controller:foo"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "system:node-proxier"),
    ("Role", "rbac.authorization.k8s.io/v1", "Leader_Locking"),
    ("PodDisruptionBudget", "policy/v1", "Web_PDB"),
    ("PriorityClass", "scheduling.k8s.io/v1", "system-node-critical"),
    ("ConfigMap", "example.com/v1", "Not_A_Subdomain"),  # another group's ConfigMap
    ("Widget", "example.com/v1", "MyWidget"),
    ("Widget", "example.com/v1", "a:b@c"),
])
def test_strange_but_valid_names_pass(kind: str, api: str, name: str) -> None:
    (document,) = accepted(obj(kind, name, api)).documents
    assert document.doc["metadata"]["name"] == name


def test_the_longest_subdomain_is_253_characters() -> None:
    assert len(LONGEST) == 253
    assert_names(refusal(obj("ConfigMap", LONGEST + "e")), "DNS-1123 subdomain")


# -- labels and annotations -----------------------------------------------------------------


@pytest.mark.parametrize(("metadata", "word"), [
    ("labels: {version: 1.0}", "quote"),
    ("labels: {enabled: true}", "quote"),
    ("labels: {replicas: 3}", "quote"),
    ("labels: {tier: null}", "quote"),
    ("annotations: {retries: 3}", "quote"),
    ("annotations: {example.com/flag: true}", "quote"),
    ("labels: [a, b]", "must be a map"),
    ("labels: {-bad: x}", "qualified name"),
    ("labels: {Example.com/name: x}", "qualified name"),
    ("labels: {a/b/c: x}", "qualified name"),
    (f"labels: {{example.com/{'n' * 64}: x}}", "qualified name"),
    ("labels: {/name: x}", "qualified name"),
    (f"labels: {{app: {'v' * 64}}}", "label value"),
    ("labels: {app: 'has space'}", "label value"),
    ("labels: {app: -x}", "label value"),
    ("annotations: {'a b': x}", "qualified name"),
    ("annotations: {example.com/: x}", "qualified name"),
])
def test_labels_and_annotations_the_api_server_refuses(metadata: str, word: str) -> None:
    document = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  {metadata}\n"
    error = refusal(document)
    assert_names(error, word)
    assert "metadata." in error.detail["reason"]


def test_a_plain_scalar_the_go_readers_disagree_on_is_refused_asking_to_quote_it() -> None:
    document = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations: {a: yes}\n"
    error = refusal(document)
    assert_names(error, "quote it")
    assert "'yes'" in error.detail["reason"]


def test_the_placement_annotation_still_only_says_dependency() -> None:
    document = ("apiVersion: v1\nkind: ConfigMap\n"
                "metadata: {name: x, annotations: {statewriter.dev/placement: resource}}\n")
    assert_names(refusal(document), "may only be 'dependency'")


def annotated(annotations: dict[str, str]) -> str:
    return obj("ConfigMap", "x", meta={"annotations": annotations})


def test_annotations_over_256_kib_are_refused() -> None:
    half = 128 * 1024
    assert_names(refusal(annotated({"a": "x" * half, "b": "y" * half})), "bytes")
    accepted(annotated({"a": "x" * (half - 1), "b": "y" * (half - 1)}))  # 256 KiB exactly


def test_labels_and_annotations_that_pass() -> None:
    document = """apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  labels:
    app.kubernetes.io/name: web
    version: "1.0"
    empty: ""
    a_b.c-d: A_b.c-D
    example.com/Name: v
  annotations:
    Example.com/Mixed_Case: "1.0"
    description: |
      any text, any length: 1.0, true, null
    kustomize.toolkit.fluxcd.io/prune: disabled
    statewriter.dev/placement: dependency
"""
    accepted(document)


# -- the destination's own Flux objects -------------------------------------------------------


def flux_document(identity: Identity, namespace: bool = True, version: str = "v1") -> str:
    api = f"{identity.group}/{version}" if identity.group else version
    meta = {"namespace": identity.namespace} if namespace else {}
    return obj(identity.kind, identity.name, api, meta)


@pytest.mark.parametrize("identity", sorted(flux_object_identities()), ids=str)
def test_objects_that_would_replace_the_destinations_flux_objects_are_refused(
    identity: Identity
) -> None:
    assert_names(refusal(flux_document(identity)), "own Flux objects")


def test_a_request_in_flux_system_cannot_reach_them_without_a_namespace() -> None:
    kustomization = Identity("kustomize.toolkit.fluxcd.io", "Kustomization", FLUX_NAMESPACE,
                             f"{DEFAULT_PREFIX}-resources")
    document = flux_document(kustomization, namespace=False)
    assert_names(refusal(document, namespace=FLUX_NAMESPACE), "own Flux objects")
    accepted(document)  # lands in the request's namespace, default
    accepted(document, namespace=None)  # a promise-level bundle's objects land in default


def test_a_file_parsed_before_is_judged_again_where_it_lands() -> None:
    """Parsing is remembered by file text (`gitops.bundle.parse_file`, from a text's second
    sighting on): the one check that depends on where the objects land is made for every
    bundle, in any order, and a refusal is never remembered as a pass."""
    kustomization = Identity("kustomize.toolkit.fluxcd.io", "Kustomization", FLUX_NAMESPACE,
                             f"{DEFAULT_PREFIX}-resources")
    document = flux_document(kustomization, namespace=False)
    for _ in range(3):
        assert accepted(FIRST, document).documents == accepted(FIRST, document).documents
        assert_names(refusal(document, namespace=FLUX_NAMESPACE), "own Flux objects")
        assert_names(refusal(obj("ConfigMap", "UPPER")), "metadata.name")
    text = FIRST + "---\n" + document
    assert parse_file(text, Limits().parsing) is parse_file(text, Limits().parsing)


def test_other_flux_objects_and_other_versions() -> None:
    other = Identity("kustomize.toolkit.fluxcd.io", "Kustomization", FLUX_NAMESPACE, "apps")
    accepted(flux_document(other))
    beta = flux_document(Identity("source.toolkit.fluxcd.io", "GitRepository", FLUX_NAMESPACE,
                                  DEFAULT_PREFIX), version="v1beta2")
    assert_names(refusal(beta), "own Flux objects")


def test_kratix_worker_flux_sources_are_refused() -> None:
    text = (CORPUS / "kratix-worker-flux-sources.yaml").read_text()
    with pytest.raises(InvalidBundle) as caught:
        parse_bundle(payload({"kratix.yaml": text}, None, None))
    assert caught.value.detail["file"] == "kratix.yaml"
    assert caught.value.detail["document"] == 1  # the Kustomization kratix-workload-resources
    assert "own Flux objects" in caught.value.detail["reason"]


def test_the_identities_cover_what_flux_manifests_renders() -> None:
    secret = f"{DEFAULT_PREFIX}-credentials"
    text = flux_manifests(Destination("worker-1", {}, "worker-1"), "https://git.example/state.git",
                          "main", secret=secret)
    rendered = {Identity(d["apiVersion"].rpartition("/")[0], d["kind"], d["metadata"]["namespace"],
                         d["metadata"]["name"]) for d in yaml.safe_load_all(text)}
    assert len(rendered) == 3
    assert rendered | {Identity("", "Secret", FLUX_NAMESPACE, secret)} <= flux_object_identities()


# -- request names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kustomization.yaml", "kustomization.yml"])
def test_request_names_the_layout_cannot_hold_are_refused(name: str) -> None:
    with pytest.raises(InvalidBundle) as caught:
        make_owner("elastic-cloud", "default", name, None)
    assert caught.value.detail == {"field": "request.name"}
    assert "reserved" in caught.value.message
    with pytest.raises(InvalidBundle) as caught:
        parse_bundle(payload({FILE: FIRST}, "default", name))
    assert caught.value.detail == {"field": "request.name"}


@pytest.mark.parametrize("name", ["a.-b", "a-.b", "a..b", ".a", "a.", "A", "a" * 254])
def test_request_names_are_exact_dns_subdomains(name: str) -> None:
    with pytest.raises(InvalidBundle) as caught:
        make_owner("elastic-cloud", "default", name, None)
    assert caught.value.detail == {"field": "request.name"}


@pytest.mark.parametrize("name", ["2024", "true", "null", "1e3", "kustomization",
                                  "kustomization.yaml.d", LONGEST])
def test_strange_but_valid_request_names_pass(name: str) -> None:
    assert make_owner("elastic-cloud", "default", name, None).name == name


# -- the tar form refuses alike -------------------------------------------------------------------


def tgz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue())


@pytest.mark.parametrize("document", [
    obj("ConfigMap", "Web"),
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: {version: 1.0}}\n",
    flux_document(Identity("kustomize.toolkit.fluxcd.io", "Kustomization", FLUX_NAMESPACE,
                           f"{DEFAULT_PREFIX}-resources"), namespace=False),
])
def test_tar_and_json_refuse_alike(document: str) -> None:
    files = {FILE: FIRST + "---\n" + document}
    with pytest.raises(InvalidBundle) as from_json:
        parse_bundle(payload(files, FLUX_NAMESPACE))
    owner = make_owner("elastic-cloud", FLUX_NAMESPACE, "example", None)
    with pytest.raises(InvalidBundle) as from_tar:
        read_tar_bundle(tgz({f"output/{FILE}": files[FILE]}), owner, Limits())
    assert from_tar.value.detail == from_json.value.detail
    assert from_tar.value.detail["document"] == 1


# -- the naming table against Kubernetes' rules ------------------------------------------------

# The rules stated the way k8s.io/apimachinery/pkg/util/validation states them.
DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = re.compile(DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*")
DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
DNS1035_LABEL = re.compile("[a-z]([-a-z0-9]*[a-z0-9])?")
# statewriter's own rule for every name (it becomes part of a file name)
OBJECT_NAME = re.compile("[A-Za-z0-9]([-A-Za-z0-9_.:@]*[A-Za-z0-9])?")


def k8s_subdomain(name: str) -> bool:
    return len(name) <= 253 and DNS1123_SUBDOMAIN.fullmatch(name) is not None


def k8s_label(name: str) -> bool:
    return len(name) <= 63 and DNS1123_LABEL.fullmatch(name) is not None


def k8s_dns1035(name: str) -> bool:
    return len(name) <= 63 and DNS1035_LABEL.fullmatch(name) is not None


def k8s_path_segment(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "%" not in name


def statewriter_name(name: str) -> bool:
    return len(name) <= 253 and OBJECT_NAME.fullmatch(name) is not None and ".." not in name


SUBDOMAIN_KINDS = (
    "ConfigMap Secret ServiceAccount Pod PodTemplate Endpoints PersistentVolume "
    "PersistentVolumeClaim ReplicationController LimitRange ResourceQuota Node "
    "Deployment.apps StatefulSet.apps DaemonSet.apps ReplicaSet.apps ControllerRevision.apps "
    "Deployment.extensions DaemonSet.extensions ReplicaSet.extensions Ingress.extensions "
    "NetworkPolicy.extensions Job.batch CronJob.batch Ingress.networking.k8s.io "
    "IngressClass.networking.k8s.io NetworkPolicy.networking.k8s.io StorageClass.storage.k8s.io "
    "CSIDriver.storage.k8s.io VolumeAttachment.storage.k8s.io PriorityClass.scheduling.k8s.io "
    "RuntimeClass.node.k8s.io Lease.coordination.k8s.io EndpointSlice.discovery.k8s.io "
    "ValidatingWebhookConfiguration.admissionregistration.k8s.io "
    "MutatingWebhookConfiguration.admissionregistration.k8s.io "
    "CustomResourceDefinition.apiextensions.k8s.io"
)
PATH_SEGMENT_KINDS = ("Role.rbac.authorization.k8s.io ClusterRole.rbac.authorization.k8s.io "
                      "RoleBinding.rbac.authorization.k8s.io "
                      "ClusterRoleBinding.rbac.authorization.k8s.io PodDisruptionBudget.policy")


def group_kind(text: str) -> tuple[str, str]:
    kind, _, group = text.partition(".")
    return group, kind


KUBERNETES_RULES = {
    **{group_kind(k): k8s_subdomain for k in SUBDOMAIN_KINDS.split()},
    **{group_kind(k): k8s_path_segment for k in PATH_SEGMENT_KINDS.split()},
    ("", "Namespace"): k8s_label,
    ("", "Service"): k8s_dns1035,
}
UNKNOWN_KINDS = [("example.com", "Widget"), ("example.com", "ConfigMap"), ("", "Widget"),
                 ("apps", "Widget")]


def k8s_extra_rule(group: str, kind: str, name: str) -> bool:
    if (group, kind) == ("batch", "CronJob"):
        return len(name) <= 52
    if (group, kind) == ("batch", "Job"):
        return len(name) <= 63
    if kind == "CustomResourceDefinition":
        return "." in name  # the document below names plural and group after the name
    if kind == "PriorityClass":
        return not name.startswith("system-") or name in ("system-node-critical",
                                                           "system-cluster-critical")
    return True


def expected(group: str, kind: str, name: str) -> bool:
    rule = KUBERNETES_RULES.get((group, kind))
    k8s = rule is None or (rule(name) and k8s_extra_rule(group, kind, name))
    return k8s and statewriter_name(name)


def named(group: str, kind: str, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": f"{group}/v1" if group else "v1", "kind": kind,
                           "metadata": {"name": name}}
    if kind == "CustomResourceDefinition":
        plural, _, crd_group = name.partition(".")
        doc["spec"] = {"group": crd_group, "names": {"plural": plural}}
    return doc


def test_the_table_is_the_one_stated_here() -> None:
    assert set(kinds.NAME_RULES) == set(KUBERNETES_RULES)


labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
long_parts = st.from_regex(r"[a-z0-9][-a-z0-9]{60,120}[a-z0-9]", fullmatch=True)
subdomains = st.lists(st.one_of(labels, long_parts), min_size=1, max_size=5).map(".".join)
near_limits = st.sampled_from([51, 52, 53, 62, 63, 64, 252, 253, 254]).flatmap(
    lambda n: st.sampled_from(["a" * n, "a" * (n - 2) + ".b" if n > 2 else "a", "1" * n]))
noisy = st.text(alphabet="abz09-._:@/%A Zİ", max_size=70)
broken = st.tuples(st.one_of(labels, subdomains), st.sampled_from(
    ["-", ".", "..", ".-", "-.", "A", "_", ":", "/", "%", "system-"]), st.booleans()).map(
    lambda t: t[1] + t[0] if t[2] else t[0] + t[1])
kubernetes_names = st.one_of(labels, subdomains, near_limits, noisy, broken,
                             st.sampled_from(["system-node-critical", "system-x", "a", "0"]))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(sorted(KUBERNETES_RULES) + UNKNOWN_KINDS), kubernetes_names)
def test_names_agree_with_kubernetes_rules(group_and_kind: tuple[str, str], name: str) -> None:
    group, kind = group_and_kind
    problem = document_problem(named(group, kind, name))
    assert (problem is None) == expected(group, kind, name), problem


QUALIFIED_NAME_PART = re.compile("([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def k8s_qualified_name(key: str) -> bool:
    parts = key.split("/")
    if len(parts) > 2 or (len(parts) == 2 and not k8s_subdomain(parts[0])):
        return False
    return len(parts[-1]) <= 63 and QUALIFIED_NAME_PART.fullmatch(parts[-1]) is not None


def k8s_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and QUALIFIED_NAME_PART.fullmatch(value) is not None)


label_texts = st.one_of(st.text(alphabet="aZ09-_./ ", max_size=70), labels,
                        st.tuples(subdomains, labels).map("/".join))


@settings(max_examples=300, deadline=None)
@given(label_texts, label_texts)
def test_labels_agree_with_kubernetes_rules(key: str, value: str) -> None:
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {key: value}}}
    problem = document_problem(doc)
    assert (problem is None) == (k8s_qualified_name(key) and k8s_label_value(value)), problem
    doc["metadata"] = {"name": "x", "annotations": {key: value}}
    problem = document_problem(doc)
    # and the key must stay a string to kustomize (checked against kustomize itself in
    # tests/test_generative.py): `0`, `1e3` or `true` fail its build
    kustomize_reads_a_string = isinstance(readings(key)[YAML_V3], str)
    assert (problem is None) == (k8s_qualified_name(key.lower()) and kustomize_reads_a_string), \
        problem


# -- real manifests still pass --------------------------------------------------------------------


def corpus_files() -> dict[str, str]:
    paths = [CORPUS / "flux-install.yaml", CORPUS / "redis-operator.yaml",
             *sorted((CORPUS / "nginx-ingress-operator").glob("*.yaml"))]
    return {path.relative_to(CORPUS).as_posix(): path.read_text() for path in paths}


@pytest.mark.parametrize("namespace", [None, "default", FLUX_NAMESPACE])
def test_every_corpus_document_is_accepted(namespace: str | None) -> None:
    files = corpus_files()
    documents = {file: load_documents(text, ParseLimits(max_nodes=10**6)) for file, text in files.items()}
    for file, docs in documents.items():
        for index, doc in enumerate(docs):
            assert document_problem(doc, namespace or "default") is None, (file, index)
    bundle = parse_bundle(payload(files, namespace, "example" if namespace else None))
    assert len(bundle.documents) == sum(map(len, documents.values())) == 53


# -- what kustomize changes whatever the quoting ----------------------------------------------


@pytest.mark.parametrize("text", ["line\x85next", "del\x7f", "c1\x9f"],
                         ids=["NEL", "DEL", "C1"])
@pytest.mark.parametrize("where", ["value", "key"])
def test_control_characters_kustomize_changes_or_refuses(text: str, where: str) -> None:
    data = {"k": text} if where == "value" else {text: "v"}
    error = refusal(obj("ConfigMap", "cm", data=data))
    assert_names(error, "cannot be delivered as sent")


def test_a_quoted_merge_key_is_refused_and_a_real_merge_is_expanded() -> None:
    error = refusal(obj("ConfigMap", "cm", data={"<<": "v"}))
    assert_names(error, "'<<'")
    merged = accepted("base: &base {a: '1'}\napiVersion: v1\nkind: ConfigMap\n"
                      "metadata: {name: cm}\ndata: {<<: *base, b: '2'}\n")
    (doc,) = merged.documents
    assert doc.doc["data"] == {"a": "1", "b": "2"}


@pytest.mark.parametrize(("data", "word"), [
    ("data: {port: 8080}", "quote the value"),
    ("data: {zip: 08544}", "quote the value"),  # as PyYAML writes the string "08544"
    ("data: [a]", "must be a map"),
    ("stringData: {on: 'yes'}", "quote it"),  # a key the Go readers disagree on
])
def test_configmap_and_secret_data_must_be_strings(data: str, word: str) -> None:
    kind = "Secret" if data.startswith("stringData") else "ConfigMap"
    document = f"apiVersion: v1\nkind: {kind}\nmetadata: {{name: x}}\n{data}\n"
    assert_names(refusal(document), word)
