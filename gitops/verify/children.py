"""Invariant 10 (docs/reference.md section 3): a destination isolated by namespace has a resources root
that builds to Flux Kustomizations only, one per namespace of its resources, each exactly as
statewriter writes it; each child's path builds on its own; and every resource sits in the
child of its own namespace, so each identity is in exactly one child's build."""

from __future__ import annotations

from collections.abc import Mapping

from gitops.destination import Destination
from gitops.errors import YamlError
from gitops.flux import child_kustomization, child_name
from gitops.isolation import FLUX_FOLDER
from gitops.layout import KUSTOMIZATION, RESOURCES, SHARED
from gitops.validate.fluxcrd import kustomization_findings
from gitops.verify.builds import Build
from gitops.verify.folders import DestinationFiles, ObjectFile
from gitops.verify.objects import Parsed
from gitops.yamldocs import load_documents


def flux_files(destination: Destination, tree: DestinationFiles) -> list[ObjectFile]:
    """The child Kustomizations' files (not objects any owner holds), taken out of
    `tree.objects`."""
    flux = f"{destination.section(RESOURCES)}/{FLUX_FOLDER}/"
    taken = [item for item in tree.objects if item.path.startswith(flux)]
    tree.objects[:] = [item for item in tree.objects if not item.path.startswith(flux)]
    return taken


def namespaces(destination: Destination, tree: DestinationFiles) -> set[str]:
    """The namespaces that hold resources: each needs a child."""
    resources = destination.section(RESOURCES)
    found = {name for name in tree.folders[resources].folders if not name.startswith("_")}
    found |= {name for name in tree.folders[f"{resources}/{SHARED}"].folders
              if not name.startswith("_")}
    return found


def check(destination: Destination, tree: DestinationFiles, flux: list[ObjectFile],
          objects: list[Parsed], findings: list[str]) -> None:
    resources = destination.section(RESOURCES)
    expected = {f"{resources}/{FLUX_FOLDER}/{child_name(destination.flux_prefix, ns)}.yaml": ns
                for ns in namespaces(destination, tree)}
    for path, _, content in flux:
        namespace = expected.pop(path, None)
        if namespace is None:
            findings.append(f"{path}: not the Kustomization of a namespace holding resources")
            continue
        want = child_kustomization(destination, namespace, f"{resources}/{namespace}")
        try:
            docs = load_documents(content.decode())
        except (UnicodeDecodeError, YamlError):
            docs = []
        if docs != [want]:
            findings.append(f"{path}: not the Kustomization statewriter writes for namespace "
                            f"{namespace}")
        findings.extend(f"{path}: {f.path}: {f.reason}" for f in kustomization_findings(want)
                        if not f.warning)
    for path, namespace in sorted(expected.items(), key=lambda item: item[1]):
        findings.append(f"{path}: missing (namespace {namespace} holds resources)")
    for path, section, doc in objects:
        if section != RESOURCES:
            continue
        where = _namespace_of(resources, path)
        namespace = doc.get("metadata", {}).get("namespace")
        if where != namespace:
            findings.append(f"{path}: a resource of namespace {namespace} in the Kustomization "
                            f"of {where or 'no namespace'} (each must be in its namespace's)")


def _namespace_of(resources: str, path: str) -> str | None:
    first, _, rest = path[len(resources) + 1:].partition("/")
    if first == SHARED:
        first, _, rest = rest.partition("/")
    return first if rest and not first.startswith("_") else None


def builds(destination: Destination, section_files: Mapping[str, bytes],
           tree: DestinationFiles) -> list[Build]:
    """The resources root (to the children's Kustomizations) and each child's path, each
    with only the files it reads."""
    resources = destination.section(RESOURCES)
    root: dict[str, bytes] = {}
    by_namespace: dict[str, dict[str, bytes]] = {ns: {} for ns in namespaces(destination, tree)}
    for path, content in section_files.items():
        first = path[len(resources) + 1:].partition("/")[0]
        if first in (KUSTOMIZATION, FLUX_FOLDER):
            root[path] = content
        elif (namespace := _namespace_of(resources, path)) in by_namespace:
            by_namespace[namespace][path] = content
    jobs = [Build(resources, resources, root, True)]
    for namespace, files in sorted(by_namespace.items()):
        folder = f"{resources}/{namespace}"
        if f"{folder}/{KUSTOMIZATION}" in files:  # else the listing check says so
            jobs.append(Build(resources, folder, files, True))
    return jobs
