"""Scheduling rules (docs/reference.md section 5) and the section of a newly seen object (section 4).

Pure functions of names and labels; the planner applies them to the index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from gitops.destination import Destination
from gitops.identity import Identity
from gitops.layout import DEPENDENCIES, RESOURCES
from gitops.owner import Owner


def matches(labels: dict[str, str], selectors: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selectors.items())


def matching(destinations: Iterable[Destination], selectors: dict[str, str]) -> list[Destination]:
    return sorted((d for d in destinations if matches(d.labels, selectors)), key=lambda d: d.name)


def rendezvous(candidates: Iterable[Destination], owner: Owner) -> Destination | None:
    """Highest sha256(destination name + "/" + promise/namespace/name) wins."""
    request = f"{owner.promise}/{owner.namespace}/{owner.name}"

    def score(destination: Destination) -> bytes:
        return hashlib.sha256(f"{destination.name}/{request}".encode()).digest()

    return max(candidates, key=score, default=None)


def initial_section(
    owner: Owner,
    identity: Identity,
    marked_dependency: bool,
    declared_namespaces: frozenset[str],
) -> str:
    """The section an identity not yet stored in the destination goes to."""
    if owner.is_promise_level or marked_dependency or not identity.namespace:
        return DEPENDENCIES
    if identity.namespace in declared_namespaces and identity.namespace != owner.namespace:
        return DEPENDENCIES  # an operator's own namespace, declared by the bundle
    return RESOURCES
