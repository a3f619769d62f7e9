"""PUT and DELETE /v1/destinations/{name}: register, update or remove a worker cluster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gitops import isolation, layout, names
from gitops.bundle import check_selectors
from gitops.destination import (
    ISOLATION_DESTINATION,
    Destination,
    api_entries,
    flux_settings,
    kubernetes_version,
    namespace_list,
)
from gitops.destination import isolation as check_isolation
from gitops.errors import Conflict, EncryptionRequired, InvalidDestination, NotFound
from gitops.index import Index, encode_destination
from gitops.planner.draft import Draft, Plan, Policy, unchanged
from gitops.planner.placing import place_waiting_bundles, refuse_if_requests, withdraw_promise_bundles
from gitops.planner.results import DestinationDeleted, DestinationSaved
from gitops.planner.sealing import reseal_destination
from gitops.planner.trailers import placed_trailers
from gitops.quoting import quoted
from gitops.secrets import check_recipients
from gitops.tree import Tree


def plan_put_destination(
    index: Index,
    tree: Tree,
    name: str,
    labels: object,
    path: object,
    actor: str,
    policy: Policy = Policy(),
    notify_url: object = None,
    recipients: object = None,
    cluster: object = None,
    isolation: object = None,
    flux: object = None,
) -> Plan:
    """Register or update a destination, then write what now belongs there. `notify_url`
    (None: none, also removing one it had) is POSTed after each push that changes it. Its
    Secrets are encrypted for `recipients` (age; an empty list: written in clear; None: the
    ones it had, so that an update that forgets them never writes Secrets in clear); a
    change of them re-encrypts every Secret already there in the same commit. `cluster`
    says what its cluster serves and holds besides what statewriter writes (`Cluster`;
    None: nothing declared), which objects are validated against. `isolation` (`destination`,
    the default, or `namespace`) and `flux` (`{"prefix", "namespace"}` of its Flux objects)
    change only while it holds no requests; None keeps what it had (the defaults when new)."""
    if not names.is_label(name):
        raise InvalidDestination(f"destination name {quoted(name)} is not a DNS-1123 label", field="name")
    labels = check_selectors(labels, "labels", InvalidDestination)
    path = name if path is None else path
    if not isinstance(path, str) or not layout.is_valid_destination_path(path):
        raise InvalidDestination(
            f"destination path {quoted(path)} must be 1-8 DNS-1123 labels joined by '/'", field="path"
        )
    url: str | None = None
    if notify_url is not None:
        problem = Destination.notify_url_problem(notify_url)
        if problem is not None:  # never the URL itself: it may carry a credential
            raise InvalidDestination(f"notify.url {problem}", field="notify.url")
        assert isinstance(notify_url, str)
        url = notify_url
    keys: tuple[str, ...] = ()
    if recipients is not None:
        try:
            keys = check_recipients(recipients)
        except ValueError as error:
            raise InvalidDestination(f"encryption.age {error}", field="encryption.age") from None
        if keys and policy.secrets is None:
            raise EncryptionRequired("encryption needs the service's own age identity: set "
                                     "secrets.identityFile in its config", field="encryption")
    for other in index.destinations.values():
        if other.name != name and layout.paths_overlap(other.path, path):
            raise Conflict(f"path {quoted(path)} overlaps destination {quoted(other.name)} at "
                           f"{quoted(other.path)}", destination=other.name)
    declared = _cluster(cluster)
    old = index.destinations.get(name)
    # left out: kept as they are (like recipients), since changing them moves its resources
    split = _checked("isolation", isolation, check_isolation) if isolation is not None else (
        old.isolation if old else ISOLATION_DESTINATION)
    prefix, flux_namespace = _checked("flux", flux, flux_settings) if flux is not None else (
        (old.flux_prefix, old.flux_namespace) if old else flux_settings({}))
    if recipients is None and old is not None:
        keys = old.recipients
    new = Destination(name, dict(sorted(labels.items())), path, url, recipients=keys,
                      kubernetes_version=declared.kubernetes_version, apis=declared.apis,
                      namespaces=declared.namespaces, isolation=split, flux_prefix=prefix,
                      flux_namespace=flux_namespace)
    if old == new:
        return unchanged(index, DestinationSaved(new))
    draft = Draft(index, tree, policy)
    if old and (old.isolation, old.flux_prefix, old.flux_namespace) != (
            new.isolation, new.flux_prefix, new.flux_namespace):
        # Flux garbage-collects by inventory: moving live objects into other Kustomizations
        # would delete and recreate them
        refuse_if_requests(draft.index, name, "change its isolation or Flux names")
    if (new.isolated and old is None) or (old and (
            old.isolation != new.isolation or old.flux_prefix != new.flux_prefix
            or (new.isolated and bool(old.recipients) != bool(new.recipients)))):
        draft.isolation_changed.add(name)
    if old and old.path != path:
        refuse_if_requests(draft.index, name, "change its path")
        withdraw_promise_bundles(draft, name, only_unmatched=False, labels=labels)
        _retire_sections(draft, old)
    draft.index.destinations[name] = new
    draft.write(layout.destination_record_path(name), encode_destination(new))
    draft.destinations.add(name)
    for section in layout.SECTIONS:
        folder = new.section(section)
        draft.sections.setdefault(f"{folder}/{layout.KUSTOMIZATION}", folder)
    if old and old.path == path:
        withdraw_promise_bundles(draft, name, only_unmatched=True, labels=labels)
        if old.recipients != new.recipients:
            reseal_destination(draft, new)
    place_waiting_bundles(draft, new)
    trailers = [("Statewriter-Action", "destination"), *placed_trailers(draft.notes.placed),
                ("Statewriter-Destination", name), ("Statewriter-Actor", actor)]
    verb = "update" if old else "register"
    return draft.finish(f"{verb} destination {name}", trailers, DestinationSaved(new))


@dataclass(frozen=True)
class Cluster:
    """What a destination's cluster serves and holds without statewriter, as a client sends
    it (`kubernetesVersion`, `apis`, `namespaces`; checked when planned)."""

    kubernetes_version: object = None
    apis: object = None
    namespaces: object = None


@dataclass(frozen=True)
class _Declared:
    kubernetes_version: str | None
    apis: tuple[str, ...]
    namespaces: tuple[str, ...] | None


def _cluster(cluster: object) -> _Declared:
    given = cluster if isinstance(cluster, Cluster) else Cluster()
    return _Declared(_field("kubernetesVersion", given.kubernetes_version, kubernetes_version),
                     _field("apis", given.apis, api_entries) or (),
                     _field("namespaces", given.namespaces, namespace_list))


T = TypeVar("T")


def _field(name: str, value: object, check: Callable[[object], T]) -> T | None:
    return None if value is None else _checked(name, value, check)


def _checked(name: str, value: object, check: Callable[[object], T]) -> T:
    try:
        return check(value)
    except ValueError as error:
        raise InvalidDestination(f"{name} {error}", field=name) from None


def plan_delete_destination(
    index: Index, tree: Tree, name: str, actor: str, policy: Policy = Policy()
) -> Plan:
    """Remove a destination that holds no requests, with its promise-level dependencies."""
    destination = index.destinations.get(name)
    if destination is None:
        raise NotFound(f"no destination {quoted(name)}")
    draft = Draft(index, tree, policy)
    refuse_if_requests(draft.index, name, "delete it")
    withdraw_promise_bundles(draft, name, only_unmatched=False, labels={})
    draft.index.destinations.pop(name)
    draft.delete(layout.destination_record_path(name))
    _retire_sections(draft, destination)
    trailers = [("Statewriter-Action", "destination"), ("Statewriter-Destination", name),
                ("Statewriter-Actor", actor)]
    return draft.finish(f"delete destination {name}", trailers, DestinationDeleted(name))


def _retire_sections(draft: Draft, destination: Destination) -> None:
    for path in isolation.flux_files(draft.tree, destination):  # the list of no children
        draft.delete(path)
    for section in layout.SECTIONS:
        folder = destination.section(section)
        draft.retired.add(folder)
        draft.delete(f"{folder}/{layout.KUSTOMIZATION}", folder)
