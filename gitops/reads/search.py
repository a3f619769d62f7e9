"""Which owners hold an object, found by its kind and name (and namespace) on every
destination: the pages' search (docs/reference.md section 10). A dependency that several
owners output is one object with several owners, and each of them is listed.

Built from the index alone (no git): one pass over the objects it holds."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitops import layout, names
from gitops.errors import InvalidQuery
from gitops.identity import Identity
from gitops.index import Index
from gitops.owner import Owner
from gitops.quoting import quoted

MAX_OBJECTS = 200  # objects one search lists; the rest are counted
MAX_OWNERS = 100  # owners listed per object; the rest are counted
MAX_KIND = 317  # a kind (63) and its API group (253), with the dot between
# `Kind` or `Kind.group`, as the pages print an object's kind
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}(\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?)?")


@dataclass(frozen=True)
class ObjectQuery:
    kind: str  # "" for any kind; else Kind or Kind.group, in any case
    name: str  # "" for any name; else the exact name
    namespace: str | None  # None for any namespace


@dataclass(frozen=True)
class FoundObject:
    identity: Identity
    destination: str
    section: str  # layout.DEPENDENCIES or layout.RESOURCES
    path: str  # its file in the state store
    owners: tuple[Owner, ...]  # promise-level owners first, at most MAX_OWNERS
    count: int  # all its owners


@dataclass(frozen=True)
class SearchResult:
    objects: tuple[FoundObject, ...]
    total: int  # every object that matched, listed or not


def parse_search(kind: str | None = None, name: str | None = None,
                 namespace: str | None = None) -> ObjectQuery | None:
    """The search the URL asks for: None when it asks for none (every term empty), else a
    query; InvalidQuery naming a term that names no object (so nothing is searched)."""
    kind, name, namespace = (kind or "").strip(), (name or "").strip(), (namespace or "").strip()
    if not (kind or name or namespace):
        return None
    if kind and (len(kind) > MAX_KIND or not _KIND.fullmatch(kind)):
        raise InvalidQuery(f"kind {quoted(kind[:64])} is not a kind (Kind or Kind.group, e.g. "
                           "CustomResourceDefinition or Elasticsearch.elasticsearch.k8s.elastic.co)",
                           field="kind")
    if name and (len(name) > names.SUBDOMAIN_MAX
                 or any(c.isspace() or not c.isprintable() or c == "/" for c in name)):
        raise InvalidQuery(f"name {quoted(name[:64])} is not an object's name (at most "
                           f"{names.SUBDOMAIN_MAX} characters, no spaces or slashes)", field="name")
    if namespace and not names.is_label(namespace):
        raise InvalidQuery(f"namespace {quoted(namespace[:64])} is not a DNS-1123 label",
                           field="namespace")
    if not (kind or name):
        raise InvalidQuery("give a kind or a name to search for (a namespace alone matches "
                           "too much)", field="name")
    return ObjectQuery(kind, name, namespace or None)


def find_objects(index: Index, query: ObjectQuery) -> SearchResult:
    """The objects `query` matches on every destination, by destination and identity, with
    their owners. Read it through `gitops.reads.summaries.consistent`: the index may change
    under it."""
    kind = query.kind.lower()
    found = []
    for key, holders in index.objects.items():
        identity = key.identity
        if ((query.name and identity.name != query.name)
                or (query.namespace is not None and identity.namespace != query.namespace)
                or (kind and kind not in (identity.kind.lower(),
                                          f"{identity.kind}.{identity.group}".lower()))):
            continue
        found.append((key.destination, identity, holders))
    found.sort(key=lambda item: (item[0], item[1]))
    objects = []
    for destination_name, identity, holders in found[:MAX_OBJECTS]:
        destination = index.destinations.get(destination_name)
        if destination is None:
            continue
        owners = sorted(holders, key=lambda o: (not o.is_promise_level, o))
        objects.append(FoundObject(
            identity, destination_name, holders.section,
            layout.object_path(destination, holders.section, identity, holders),
            tuple(owners[:MAX_OWNERS]), len(owners)))
    return SearchResult(tuple(objects), len(found))
