"""The resources of a destination isolated by namespace (docs/reference.md section 2, invariant 10): one
Flux Kustomization per namespace of its resources, which the destination's resources
Kustomization applies.

    <resources>/kustomization.yaml          lists only _flux
    <resources>/_flux/<child>.yaml          one Flux Kustomization per child, listed beside it
    <resources>/<namespace>/kustomization.yaml   its requests' folders and ../_shared/<namespace>
    <resources>/_shared/<namespace>/...     its objects several owners hold, or that a request
                                            of another namespace holds

(Resources are namespaced: a cluster-scoped object is always a dependency.)
A child's path builds on its own and holds only objects of its namespace, so one object the
API server refuses stops its namespace alone, and Flux builds one namespace at a time. A child
exists while its namespace holds a resource: the resources Kustomization prunes it with the
last one, and Flux then removes what it applied."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gitops import layout
from gitops.destination import Destination
from gitops.flux import child_kustomization, child_name
from gitops.layout import KUSTOMIZATION, SHARED
from gitops.tree import Tree
from gitops.validate.fluxcrd import kustomization_findings
from gitops.yamldocs import dump_document

FLUX_FOLDER = "_flux"  # no namespace starts with "_"
Changes = dict[str, bytes | None]


def touched_children(resources: str, paths: Iterable[str]) -> set[str]:
    """The namespaces whose children paths changed below `resources` belong to."""
    found: set[str] = set()
    for path in paths:
        first, _, rest = path[len(resources) + 1:].partition("/")
        if first == SHARED:
            first, _, rest = rest.partition("/")
        if rest and not first.startswith("_"):
            found.add(first)
    return found


def all_children(tree: Tree, resources: str) -> set[str]:
    """Every namespace that has a folder below `resources`, a child or not."""
    found = {name for name, is_folder in tree.listdir(resources).items() if is_folder}
    found.update(name for name, is_folder in tree.listdir(f"{resources}/{SHARED}").items()
                 if is_folder)
    return {name for name in found if not name.startswith("_")}


def rewrite(tree: Tree, destination: Destination, children: Iterable[str]) -> Changes:
    """What the children of namespaces `children` need written in `tree` (the files as they
    will be, but for these): each namespace folder's kustomization, each child's Flux
    Kustomization, and the lists above them."""
    resources = destination.section(layout.RESOURCES)
    flux = f"{resources}/{FLUX_FOLDER}"
    changes: Changes = {f"{resources}/{KUSTOMIZATION}": layout.kustomization([FLUX_FOLDER])}
    came_or_went = False
    for child in sorted(children):
        entries = list(_entries(tree, resources, child))
        folder = f"{resources}/{child}"
        changes[f"{folder}/{KUSTOMIZATION}"] = layout.kustomization(entries) if entries else None
        file = f"{flux}/{child_name(destination.flux_prefix, child)}.yaml"
        had = tree.blob_id(file) is not None
        if entries:
            changes[file] = dump_document(_checked(child_kustomization(destination, child, folder)))
        else:
            changes[file] = None
        came_or_went |= had != bool(entries)
    listing = f"{flux}/{KUSTOMIZATION}"
    if came_or_went or tree.blob_id(listing) is None:
        names = {name for name, is_folder in tree.listdir(flux).items()
                 if not is_folder and name != KUSTOMIZATION}
        for path, content in changes.items():
            if path.startswith(flux + "/") and path != listing:
                name = path.rpartition("/")[2]
                (names.add if content is not None else names.discard)(name)
        changes[listing] = layout.kustomization(names)
    return changes


def _checked(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` if Flux's CRD takes it: a Kustomization Flux would refuse would stop the
    destination's every namespace, so it is never written."""
    errors = [f for f in kustomization_findings(doc) if not f.warning]
    if errors:
        raise RuntimeError(f"{doc['metadata']['name']}: " + "; ".join(
            f"{f.path}: {f.reason}" for f in errors))
    return doc


def _entries(tree: Tree, resources: str, child: str) -> Iterator[str]:
    """What a namespace's kustomization lists: its folder's entries, and its shared objects'
    folder."""
    yield from (name for name in tree.listdir(f"{resources}/{child}") if name != KUSTOMIZATION)
    if any(name != KUSTOMIZATION for name in tree.listdir(f"{resources}/{SHARED}/{child}")):
        yield f"../{SHARED}/{child}"


def undo(tree: Tree, destination: Destination) -> Changes:
    """What leaving isolation by namespace removes (the destination holds no resources then):
    the child Kustomizations and their list; the resources list written as any folder's."""
    resources = destination.section(layout.RESOURCES)
    changes: Changes = dict.fromkeys(flux_files(tree, destination))
    entries = [name for name in tree.listdir(resources)
               if name not in (KUSTOMIZATION, FLUX_FOLDER)]
    changes[f"{resources}/{KUSTOMIZATION}"] = layout.kustomization(entries)
    return changes


def flux_files(tree: Tree, destination: Destination) -> list[str]:
    """The files of its namespaces' Kustomizations and their list."""
    flux = f"{destination.section(layout.RESOURCES)}/{FLUX_FOLDER}"
    return [f"{flux}/{name}" for name, is_folder in tree.listdir(flux).items() if not is_folder]
