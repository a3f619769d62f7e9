"""Validation before commit: each object is checked the way the Kubernetes API server checks
it, so that a bundle is refused only when the cluster would certainly refuse it (Flux applies
all of a Kustomization or none of it).

One module per concern:

- `findings`: what a check reports (a field path, a reason, error or warning);
- `schema`: compiled schemas (`Node`), custom resources' structural schemas (`compile_crd`),
  and `check`, which walks a value against a node;
- `builtin`: the schemas of Kubernetes' built-in kinds, per Kubernetes version;
- `formats`, `quantity`, `goregex`: the string rules the API server checks with Go code
  (kube-openapi's formats, resource quantities, RE2 patterns).
"""

from gitops.validate.findings import Finding

__all__ = ["Finding"]
