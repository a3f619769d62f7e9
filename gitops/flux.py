"""The Flux objects a worker cluster applies to follow its destination (CONTRACT section 2)."""

from __future__ import annotations

from typing import Any

import yaml

from gitops.layout import DEPENDENCIES, RESOURCES, Destination


def flux_manifests(
    destination: Destination,
    url: str,
    branch: str,
    prefix: str = "kratix-workload",
    secret: str | None = None,
    namespace: str = "flux-system",
) -> str:
    """One GitRepository and two Kustomizations: dependencies first, then resources."""
    source: dict[str, Any] = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": prefix, "namespace": namespace},
        "spec": {"interval": "30s", "url": url, "ref": {"branch": branch}},
    }
    if secret:
        source["spec"]["secretRef"] = {"name": secret}

    def kustomization(section: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": f"{prefix}-{section}", "namespace": namespace},
            "spec": {
                "interval": "1m",
                "sourceRef": {"kind": "GitRepository", "name": prefix},
                "path": f"./{destination.section(section)}",
                "prune": True,
                **extra,
            },
        }

    docs = [
        source,
        kustomization(DEPENDENCIES, {"wait": True}),
        kustomization(RESOURCES, {"dependsOn": [{"name": f"{prefix}-{DEPENDENCIES}"}]}),
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)
