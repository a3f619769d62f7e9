"""The seed scenario's ECK pipeline output (CRDs, operator, per-request stack), as in the seed
workshop. `BUNDLE` (the README walkthrough's `examples/elastic-cloud/example`, as JSON) is the
documented example of `POST /v1/bundles`; tests/test_openapi.py keeps it equal to the example
folder, and the tests and benches build their ECK bundles with the same functions
(tests/fixtures/eck.py)."""

from __future__ import annotations

from typing import Any

CRD_NAMES = {
    "agents": ("agent.k8s.elastic.co", "Agent"),
    "beats": ("beat.k8s.elastic.co", "Beat"),
    "elasticsearches": ("elasticsearch.k8s.elastic.co", "Elasticsearch"),
    "kibanas": ("kibana.k8s.elastic.co", "Kibana"),
}
# the version each CRD serves, as ECK's own CRDs serve them (a Beat is beat.k8s.elastic.co/v1beta1)
CRD_VERSIONS = {"agents": "v1alpha1", "beats": "v1beta1", "elasticsearches": "v1", "kibanas": "v1"}


def crds(version: str = "2.8.0") -> str:
    docs = []
    for plural, (group, kind) in CRD_NAMES.items():
        docs.append(f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
  labels:
    app.kubernetes.io/version: {version}
spec:
  group: {group}
  names:
    kind: {kind}
    listKind: {kind}List
    plural: {plural}
    singular: {kind.lower()}
  scope: Namespaced
  versions:
  - name: {CRD_VERSIONS[plural]}
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
""")
    return "---\n".join(docs)


OPERATOR = """apiVersion: v1
kind: Namespace
metadata:
  name: elastic-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: elastic-operator
  namespace: elastic-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: elastic-operator
  namespace: elastic-system
data:
  eck.yaml: |-
    log-verbosity: 0
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: elastic-operator
rules:
- apiGroups: ["elasticsearch.k8s.elastic.co"]
  resources: ["elasticsearches"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: elastic-operator
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: elastic-operator
subjects:
- kind: ServiceAccount
  name: elastic-operator
  namespace: elastic-system
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: elastic-operator
  namespace: elastic-system
spec:
  selector:
    matchLabels: {control-plane: elastic-operator}
  serviceName: elastic-operator
  template:
    metadata:
      labels: {control-plane: elastic-operator}
    spec:
      serviceAccountName: elastic-operator
      containers:
      - name: manager
        image: docker.elastic.co/eck/eck-operator:2.8.0
"""


def stack(name: str) -> dict[str, str]:
    """What `helm template eck-stack` renders for one request (namespace left unset)."""
    return {
        "elasticsearch.yaml": f"""apiVersion: elasticsearch.k8s.elastic.co/v1
kind: Elasticsearch
metadata:
  name: {name}
spec:
  version: 8.9.0
  nodeSets:
  - name: default
    count: 1
""",
        "kibana.yaml": f"""apiVersion: kibana.k8s.elastic.co/v1
kind: Kibana
metadata:
  name: {name}
spec:
  version: 8.9.0
  count: 1
  elasticsearchRef:
    name: {name}
""",
        "beats.yaml": f"""apiVersion: beat.k8s.elastic.co/v1beta1
kind: Beat
metadata:
  name: {name}
spec:
  type: metricbeat
  version: 8.9.0
  elasticsearchRef:
    name: {name}
""",
    }


def request_files(name: str) -> dict[str, str]:
    return {"elastic-crds.yaml": crds(), "elastic-operator.yaml": OPERATOR, **stack(name)}


def request_bundle(name: str, namespace: str = "default", **extra: object) -> dict[str, object]:
    return {
        "promise": "elastic-cloud",
        "request": {"namespace": namespace, "name": name},
        "files": request_files(name),
        **extra,
    }


BUNDLE: dict[str, Any] = request_bundle("example", destinationSelectors={"environment": "dev"})
