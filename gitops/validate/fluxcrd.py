"""The Flux Kustomizations statewriter writes itself, checked against Flux's own CRD (its v1
version, kept in `data/`) as any object of a destination is."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

from gitops.validate import builtin
from gitops.validate.crds import CustomKind, custom_kind
from gitops.validate.findings import Finding
from gitops.validate.objects import Target, check_object

GROUP, KIND = "kustomize.toolkit.fluxcd.io", "Kustomization"


@functools.cache
def _crd() -> Mapping[str, Any]:
    text = resources.files("gitops.validate").joinpath("data/flux-kustomization-v1.yaml").read_text()
    crd: Mapping[str, Any] = yaml.safe_load(text)
    return crd


def kustomization_findings(doc: Mapping[str, Any], kubernetes: str = builtin.NEWEST) -> list[Finding]:
    """What the API server (with Flux installed) would say of Kustomization `doc`."""
    kind = custom_kind(_crd(), kubernetes)

    def kind_of(group: str, name: str) -> CustomKind | None:
        return kind if (group, name) == (GROUP, KIND) else None

    namespace = str(doc.get("metadata", {}).get("namespace", ""))
    target = Target("flux", kubernetes, frozenset(), None, namespace, kind_of, lambda _: True)
    return check_object(doc, target)
