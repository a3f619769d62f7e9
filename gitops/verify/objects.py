"""Objects: each file holds one object statewriter could have written, with its namespace
(invariant 3) and prune annotation (invariant 5), each identity once per destination
(invariant 2), and the files match what the owners in the index hold (invariant 4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from gitops import layout
from gitops.destination import Destination
from gitops.errors import YamlError
from gitops.identity import BUILTIN_CLUSTER_SCOPED, Identity, crd_defines, group_of
from gitops.index import Holders, Index, ObjectKey
from gitops.layout import RESOURCES, SECTIONS
from gitops.normalize import PRUNE_ANNOTATION
from gitops.quoting import quoted
from gitops.rules import document_problem
from gitops.tree import blob_id
from gitops.verify.folders import ObjectFile
from gitops.yamldocs import ParseLimits, load_documents

# Generous but bounded: a repository under verification is not trusted either.
_PARSE_LIMITS = ParseLimits(max_depth=256, max_nodes=5_000_000, max_documents=10_000)


class Parsed(NamedTuple):
    path: str
    section: str
    doc: dict[str, Any]


class Placed(NamedTuple):
    path: str
    section: str
    api_version: str


class Seen(NamedTuple):
    """The objects of one destination by identity, and what cannot be told."""

    where: dict[Identity, list[Placed]]  # every file holding each identity, in file order
    at: dict[str, set[Identity]]  # the identities each file holds
    unknown: set[str]  # files whose objects cannot be told (unreadable, namespace missing)


def parse(
    files: Iterable[ObjectFile], findings: list[str]
) -> tuple[list[Parsed], set[str], list[Parsed]]:
    """Every object statewriter could have written, the files that hold none, and every
    mapping in the files (objects or not: what the Secret check reads)."""
    parsed: list[Parsed] = []
    unreadable: set[str] = set()
    mappings: list[Parsed] = []
    for path, section, content in files:
        try:
            docs = load_documents(content.decode(), _PARSE_LIMITS)
        except UnicodeDecodeError:
            findings.append(f"{path}: not UTF-8 text")
            unreadable.add(path)
            continue
        except YamlError as error:
            findings.append(f"{path}: document {error.document}: {error.reason}")
            unreadable.add(path)
            continue
        if len(docs) != 1:
            findings.append(f"{path}: holds {len(docs)} documents (an object file holds "
                            "exactly one)")
        for number, doc in enumerate(docs):
            if isinstance(doc, dict):
                mappings.append(Parsed(path, section, doc))
            problem = document_problem(doc)
            if problem:
                findings.append(f"{path}: document {number} is not an object statewriter "
                                f"writes: {problem}")
                unreadable.add(path)
                continue
            parsed.append(Parsed(path, section, doc))
    return parsed, unreadable, mappings


def identify(
    destination: Destination, objects: list[Parsed], unreadable: set[str], index: Index,
    protected: frozenset[str], findings: list[str],
) -> Seen:
    """Invariants 2, 3 and 5, and every object owned by someone in the index."""
    cluster_scoped = set(BUILTIN_CLUSTER_SCOPED)
    for obj in objects:
        defined = crd_defines(obj.doc)
        if defined and defined[1]:
            cluster_scoped.add(defined[0])
    seen = Seen(defaultdict(list), defaultdict(set), set(unreadable))
    for path, section, doc in objects:
        meta = doc["metadata"]
        kind, group = doc["kind"], group_of(doc["apiVersion"])
        namespace = meta.get("namespace")
        shown = f"{kind}.{group}" if group else kind
        if (group, kind) in cluster_scoped:
            if namespace:
                findings.append(f"{path}: cluster-scoped {shown} {meta['name']} has "
                                f"metadata.namespace {quoted(namespace)}")
            namespace = ""
        elif not namespace:
            findings.append(f"{path}: namespaced {shown} {meta['name']} has no "
                            "metadata.namespace")
            seen.unknown.add(path)
            continue
        identity = Identity(group, kind, namespace, meta["name"])
        if kind in protected:
            annotations = meta.get("annotations") or {}
            if annotations.get(PRUNE_ANNOTATION) != "disabled":
                findings.append(f"{path}: {identity} lacks the annotation "
                                f"{PRUNE_ANNOTATION}: disabled")
        if seen.where[identity]:
            first = seen.where[identity][0]
            findings.append(f"{path}: {identity} ({doc['apiVersion']}) is already at "
                            f"{first.path} ({first.api_version}); an identity may appear "
                            "only once per destination, whatever its version")
        seen.where[identity].append(Placed(path, section, doc["apiVersion"]))
        seen.at[path].add(identity)
        if ObjectKey(destination.name, identity) not in index.objects:
            findings.append(f"{path}: {identity} is not owned by any owner in the index")
    return seen


def check_holdings(
    destination: Destination, index: Index, seen: Seen, files: Mapping[str, bytes],
    paths_known: bool, findings: list[str],
) -> None:
    """Every owner's objects are present, in the section they were placed in: at the path
    the layout gives them, or, with `paths_known` false (an older layout, whose paths
    statewriter moves at start-up), anywhere in that section."""
    for identity, holders in _held_in(index, destination.name):
        sections = sorted({held.section for held in holders.values()})
        owners = ", ".join(str(owner) for owner in sorted(holders))
        if len(sections) > 1 or sections[0] not in SECTIONS:
            findings.append(f"{destination.path}: owners of {identity} disagree on or name "
                            f"an unknown placement ({', '.join(sections)}): {owners}")
            continue
        section = sections[0]
        found = seen.where.get(identity, [])
        if paths_known:
            expected = layout.object_path(destination, section, identity, holders)
            if expected in seen.unknown:
                continue
            if identity in seen.at.get(expected, ()):
                _compare(expected, files[expected], section, holders, owners, findings)
                continue
        else:
            expected = ""
            here = [placed for placed in found if placed.section == section]
            if here:
                _compare(here[0].path, files[here[0].path], section, holders, owners, findings)
                continue
            if seen.unknown:
                continue  # it may be in a file that cannot be read
        _misplaced(destination, identity, section, expected, found, owners, findings)


def _compare(
    path: str, content: bytes, section: str, holders: Holders, owners: str, findings: list[str]
) -> None:
    # A resource is written only by owners that output it identically (anything else is a
    # conflict); a shared dependency may hold an older or newer owner's rendering (promise
    # upgrades), so only resources are compared.
    blob = blob_id(content)
    if section == RESOURCES and any(held.blob != blob for held in holders.values()):
        findings.append(f"{path}: content differs from what its owners wrote (edited "
                        f"outside statewriter?): {owners}")


def _misplaced(
    destination: Destination, identity: Identity, section: str, expected: str,
    found: list[Placed], owners: str, findings: list[str],
) -> None:
    """Findings for an identity that is not where its owners put it ("" when unknown)."""
    if not found:
        where = expected or destination.section(section)
        findings.append(f"{where}: missing; {identity} is held by {owners}")
    at = f" (expected at {expected})" if expected else ""
    for placed in found:
        if placed.section != section:
            findings.append(f"{placed.path}: {identity} is in {placed.section} but its owners "
                            f"placed it in {section}{at}")
        else:
            findings.append(f"{placed.path}: {identity} belongs at {expected} "
                            f"(owners: {owners})")


def _held_in(index: Index, destination: str) -> list[tuple[Identity, Holders]]:
    held = [(key.identity, holders) for key, holders in index.objects.items()
            if key.destination == destination]
    return sorted(held, key=lambda item: item[0])
