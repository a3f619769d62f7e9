"""A bundle rendered for one destination: what its owner will hold there, what to write,
and the conflicts that refuse it (docs/reference.md section 4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from gitops import layout
from gitops.bundle import Bundle, SourceDocument
from gitops.errors import Conflict, InvalidBundle
from gitops.flux import is_destinations_own
from gitops.identity import BUILTIN_CLUSTER_SCOPED, CRD_KIND, Identity, crd_defines, group_of
from gitops.index import Held, Holders, ObjectKey
from gitops.layout import DEPENDENCIES
from gitops.normalize import Rendering, render, wants_dependency
from gitops.owner import DEFAULT_NAMESPACE
from gitops.planner.draft import Draft
from gitops.planner.sealing import for_destination
from gitops.planner.validating import Written, check_written
from gitops.scheduling import initial_section


class Rendered(NamedTuple):
    rendering: Rendering
    marked_dependency: bool
    source: SourceDocument


class Holdings(NamedTuple):
    holds: tuple[Held, ...]  # what the owner holds in the destination
    writes: dict[ObjectKey, bytes]  # contents to write


def scopes(draft: Draft, bundle: Bundle, destination: str) -> Callable[[SourceDocument], bool]:
    """Whether a document's kind is cluster-scoped: built in, defined so by a CRD of the
    bundle, or by one another owner holds in `destination` ("" for none). The CRDs this
    owner held before do not count: the bundle replaces them, and a kind scoped by a CRD the
    same write removes would leave its objects without a scope anyone can tell."""
    bundle_scopes = {defined[0]: defined[1]
                     for d in bundle.documents if (defined := crd_defines(d.doc))}
    record = draft.index.owners.get(bundle.owner)
    own = Counter(held.defines_cluster_kind for held in
                  (record.objects.get(destination, ()) if record else ())
                  if held.defines_cluster_kind)

    def is_cluster_scoped(source: SourceDocument) -> bool:
        group_kind = (group_of(source.doc["apiVersion"]), source.doc["kind"])
        if group_kind in BUILTIN_CLUSTER_SCOPED:
            return True
        if group_kind in bundle_scopes:
            return bundle_scopes[group_kind]
        held = draft.index.cluster_kinds.get((destination, *group_kind)) or 0
        return held > own[group_kind]

    return is_cluster_scoped


def render_bundle(draft: Draft, bundle: Bundle, destination: str) -> list[Rendered]:
    """Each object of the bundle once, normalised for `destination` ("" for none)."""
    is_cluster_scoped = scopes(draft, bundle, destination)
    default_namespace = bundle.owner.namespace or DEFAULT_NAMESPACE
    rendered: dict[Identity, Rendered] = {}
    for source in bundle.documents:
        rendering = render(source, default_namespace, is_cluster_scoped(source),
                           draft.policy.protect_from_prune)
        item = Rendered(rendering, wants_dependency(source.doc), source)
        twin = rendered.get(rendering.identity)
        if twin is not None and twin.rendering.content != rendering.content:
            raise InvalidBundle(
                f"{rendering.identity} is defined twice with different content: "
                f"{twin.source.file} document {twin.source.index} and {source.file} "
                f"document {source.index}",
                file=source.file, document=source.index, object=str(rendering.identity),
            )
        rendered.setdefault(rendering.identity, item)
    return list(rendered.values())


def _declared_namespaces(bundle: Bundle) -> frozenset[str]:
    return frozenset(
        d.doc["metadata"]["name"]
        for d in bundle.documents
        if d.doc["kind"] == "Namespace" and d.doc["apiVersion"] == "v1"
    )


def holdings(draft: Draft, bundle: Bundle, destination: str) -> Holdings:
    """What `bundle`'s owner will hold in `destination`, and the contents to write.

    Raises Conflict when an object collides with another owner's."""
    owner = bundle.owner
    declared = _declared_namespaces(bundle)
    holds: list[Held] = []
    writes: dict[ObjectKey, bytes] = {}
    written: list[Written] = []  # what the destination's API server will see anew
    new_paths: set[str] = set()
    for item in render_bundle(draft, bundle, destination):
        rendering = item.rendering
        key = ObjectKey(destination, rendering.identity)
        holders = draft.index.objects.get(key)
        _check_not_flux(draft, key)
        _check_scope(draft, key, rendering, holders)
        if holders:
            section = holders.section
        else:
            section = initial_section(owner, rendering.identity, item.marked_dependency, declared)
            _check_free(draft, key, section, bundle, new_paths)
        # the last step: a Secret encrypted for the destination (never re-serialised after)
        rendering, sealed = for_destination(draft, key, rendering, holders, item.source)
        held = Held(rendering.identity, section, rendering.blob, bundle.generation,
                    rendering.defines_cluster_kind, sealed)
        if holders:  # every request of a promise holds the same CRDs: keep one Held for all
            first = next(iter(holders.values()))
            held = first if first == held else held
        holds.append(held)
        kept = draft.index.kept.get(key)
        path = (layout.object_path(draft.destination(destination), section, rendering.identity,
                                   holders) if holders else None)
        if (not holders or len(holders) - (owner in holders) == 0) and kept is None:
            if path is None or draft.tree.blob_id(path) != rendering.blob:
                written.append(Written(item.source, rendering.identity, path))
            writes[key] = rendering.content
            continue
        path = path or layout.object_path(draft.destination(destination), section,
                                          rendering.identity, ())
        current_blob = draft.tree.blob_id(path)
        if current_blob == rendering.blob:
            continue
        if _stored_content_stays(draft, bundle, key, holders, current_blob):
            continue
        written.append(Written(item.source, rendering.identity,
                               path if current_blob is not None else None))
        writes[key] = rendering.content
    check_written(draft, bundle, destination, written)
    return Holdings(tuple(holds), writes)


def _stored_content_stays(
    draft: Draft, bundle: Bundle, key: ObjectKey, holders: Holders | None,
    current_blob: str | None,
) -> bool:
    """Content differs from what is stored: refuse it (another owner's object), keep it
    (True: a newer promise generation wrote it) or replace it (False: a promise upgrade
    rolling through its requests)."""
    owner = bundle.owner
    # Content differs from another owner's: the rare path may look at every holder.
    others = {o: h for o, h in (holders or {}).items() if o != owner}
    writers = {o: h for o, h in others.items() if h.blob == current_blob}
    section = holders.section if holders else DEPENDENCIES
    if others and (section != DEPENDENCIES or any(o.promise != owner.promise for o in others)):
        reason = ("another promise's dependency" if section == DEPENDENCIES
                  else "owned by another request or pipeline")
        raise Conflict(
            f"{key.identity} in destination {key.destination} differs from the stored "
            f"object ({reason}); owners: {', '.join(str(o) for o in sorted(others))}",
            object=str(key.identity), destination=key.destination,
            owners=tuple(sorted(others)), reason=reason,
        )
    generations = [h.generation for h in writers.values() if h.generation is not None]
    kept = draft.index.kept.get(key)
    if kept is not None and kept.blob == current_blob:
        generations.append(kept.generation)  # its writer left; its generation still counts
    newest = max(generations, default=None)
    if newest is not None and bundle.generation is not None and bundle.generation < newest:
        draft.notes.kept.append(f"{key.identity} (generation {newest})")
        return True
    if writers:
        draft.notes.replaced.append(
            f"{key.identity} previously written by " + ", ".join(str(o) for o in sorted(writers)))
    return False


def _check_not_flux(draft: Draft, key: ObjectKey) -> None:
    """An object may not take the place of the destination's own Flux objects (its prefix and
    namespace may differ from the defaults that bundles are checked against on arrival)."""
    if not is_destinations_own(draft.destination(key.destination), key.identity):
        return
    reason = ("would replace the destination's own Flux objects (those GET "
              "/v1/destinations/{name}/flux renders, and the Kustomizations statewriter "
              "writes for each namespace)")
    raise Conflict(f"{key.identity} in destination {key.destination} {reason}",
                   object=str(key.identity), destination=key.destination, owners=(),
                   reason=reason)


def _check_scope(
    draft: Draft, key: ObjectKey, rendering: Rendering, holders: Holders | None
) -> None:
    """A CRD may not change the scope of its kind while objects of that kind are stored
    (Kubernetes refuses it, and stored objects would be left with or without a namespace):
    neither a stored CRD nor a new one (objects stored without a CRD are namespaced)."""
    if rendering.defines is None or rendering.identity.kind != CRD_KIND:
        return
    # O(1), not a walk over the holders: every request of a promise holds its CRDs
    stored = draft.index.is_cluster_scoped_in(key.destination, rendering.defines)
    if stored == rendering.defines_cluster_scoped:
        return
    if not draft.index.holds_kind(key.destination, rendering.defines):
        return
    group, kind = rendering.defines
    scope = {True: "Cluster", False: "Namespaced"}
    reason = (f"changes the scope of {kind}.{group} from {scope[stored]} to "
              f"{scope[rendering.defines_cluster_scoped]} while objects of that kind are "
              f"stored in destination {key.destination}")
    raise Conflict(f"{key.identity} {reason}", object=str(key.identity),
                   destination=key.destination, owners=tuple(sorted(holders or ())),
                   reason=reason)


def _check_free(
    draft: Draft, key: ObjectKey, section: str, bundle: Bundle, taken: set[str]
) -> None:
    """A new object's file must be free: two long names may shorten to the same file name
    (docs/reference.md section 2) only by a collision of their hashes, and then the first one stays."""
    path = layout.object_path(draft.destination(key.destination), section, key.identity,
                              (bundle.owner,))
    if draft.tree.blob_id(path) is None and path not in taken:
        taken.add(path)
        return
    reason = "its file name, shortened, is the same as another object's"
    raise Conflict(f"{key.identity} in destination {key.destination}: {reason} ({path})",
                   object=str(key.identity), destination=key.destination, owners=(),
                   reason=reason)
