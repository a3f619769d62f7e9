"""The seed scenario's ECK bundle (`examples/elastic-cloud/example`, the README walkthrough)
as JSON: the documented example of `POST /v1/bundles`. tests/test_openapi.py keeps it equal
to the example folder."""

from __future__ import annotations

from typing import Any

_ELASTIC_CRDS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: agents.agent.k8s.elastic.co
  labels:
    app.kubernetes.io/version: 2.8.0
spec:
  group: agent.k8s.elastic.co
  names:
    kind: Agent
    listKind: AgentList
    plural: agents
    singular: agent
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: beats.beat.k8s.elastic.co
  labels:
    app.kubernetes.io/version: 2.8.0
spec:
  group: beat.k8s.elastic.co
  names:
    kind: Beat
    listKind: BeatList
    plural: beats
    singular: beat
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: elasticsearches.elasticsearch.k8s.elastic.co
  labels:
    app.kubernetes.io/version: 2.8.0
spec:
  group: elasticsearch.k8s.elastic.co
  names:
    kind: Elasticsearch
    listKind: ElasticsearchList
    plural: elasticsearches
    singular: elasticsearch
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: kibanas.kibana.k8s.elastic.co
  labels:
    app.kubernetes.io/version: 2.8.0
spec:
  group: kibana.k8s.elastic.co
  names:
    kind: Kibana
    listKind: KibanaList
    plural: kibanas
    singular: kibana
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""

_ELASTIC_OPERATOR = """\
apiVersion: v1
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

_ELASTICSEARCH = """\
apiVersion: elasticsearch.k8s.elastic.co/v1
kind: Elasticsearch
metadata:
  name: example
spec:
  version: 8.9.0
  nodeSets:
  - name: default
    count: 1
"""

_KIBANA = """\
apiVersion: kibana.k8s.elastic.co/v1
kind: Kibana
metadata:
  name: example
spec:
  version: 8.9.0
  count: 1
  elasticsearchRef:
    name: example
"""

_BEATS = """\
apiVersion: beat.k8s.elastic.co/v1beta1
kind: Beat
metadata:
  name: example
spec:
  type: metricbeat
  version: 8.9.0
  elasticsearchRef:
    name: example
"""

BUNDLE: dict[str, Any] = {
    "promise": "elastic-cloud",
    "request": {"namespace": "default", "name": "example"},
    "destinationSelectors": {"environment": "dev"},
    "files": {
        "elastic-crds.yaml": _ELASTIC_CRDS,
        "elastic-operator.yaml": _ELASTIC_OPERATOR,
        "elasticsearch.yaml": _ELASTICSEARCH,
        "kibana.yaml": _KIBANA,
        "beats.yaml": _BEATS,
    },
}
