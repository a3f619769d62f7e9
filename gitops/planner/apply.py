"""POST /v1/bundles: a bundle replaces everything its owner wrote before."""

from __future__ import annotations

from gitops.bundle import Bundle
from gitops.index import NO_MATCH, Held, Index, ObjectKey, OwnerRecord
from gitops.planner.draft import Draft, Plan, Policy, unchanged, who
from gitops.planner.holdings import holdings, render_bundle
from gitops.planner.ownership import set_record
from gitops.planner.placing import place_siblings, schedule
from gitops.planner.results import PENDING, SCHEDULED, Applied
from gitops.planner.retry import retry_after
from gitops.planner.sealing import recorded_digest
from gitops.planner.stored import store_documents
from gitops.planner.trailers import owner_trailers, placed_trailers
from gitops.scheduling import matches
from gitops.tree import Tree


def plan_apply(
    index: Index, tree: Tree, bundle: Bundle, actor: str, policy: Policy = Policy()
) -> Plan:
    owner = bundle.owner
    old = index.owners.get(owner)
    digest = recorded_digest(policy, bundle)
    if old and not waiting(old) and (old.digest, old.generation, old.status) == (
        digest, bundle.generation, bundle.status
    ):
        return unchanged(index, applied(index, old))
    draft = Draft(index, tree, policy)
    destinations = schedule(draft.index, owner, bundle.selectors)
    record = write_bundle(draft, bundle, digest, destinations)
    if destinations and not owner.is_promise_level:
        place_siblings(draft, owner, draft.destination(destinations[0]))
    where = f" to {', '.join(destinations)}" if destinations else " (pending)"
    trailers = owner_trailers("apply", owner, sorted(draft.destinations | set(destinations)),
                              actor)
    trailers.append(("Statewriter-Bundle-Digest", digest))
    trailers.extend(bundle.trailers)
    trailers.extend(placed_trailers(draft.notes.placed))
    plan = draft.finish(f"apply {who(owner)}{where}", trailers, applied(draft.index, record))
    plan.follow_up = retry_after(draft, actor)
    return plan


def write_bundle(draft: Draft, bundle: Bundle, digest: str, destinations: list[str]) -> OwnerRecord:
    """`bundle` in place of what its owner held, placed at `destinations` (none: kept under
    .statewriter/bundles until one matches), its record keeping `digest`: the objects
    rendered, checked (conflicts, validation, Secrets) and written as a post of it writes
    them. What `plan_apply` and `plan_rollback` share. Returns the owner's record now."""
    owner = bundle.owner
    old = draft.index.owners.get(owner)
    if not destinations:
        render_bundle(draft, bundle, "")  # an invalid bundle is a 422 now, not when placed
    objects: dict[str, tuple[Held, ...]] = {}
    writes: dict[ObjectKey, bytes] = {}
    for destination in destinations:
        objects[destination], more = holdings(draft, bundle, destination)
        writes.update(more)
    keep_documents = owner.is_promise_level or not destinations
    stored = store_documents(draft, owner, bundle if keep_documents else None,
                             old.stored_documents if old else 0)
    record = OwnerRecord(
        owner=owner,
        digest=digest,
        selectors=bundle.selectors,
        serial=draft.index.serial + 1,
        generation=bundle.generation,
        status=bundle.status,
        destinations=tuple(destinations),
        objects=objects,
        stored_documents=stored.documents,
        dependency_marked=stored.marked,
        pending_reason=None if destinations else NO_MATCH,
        trailers=bundle.trailers,
    )
    if old is not None and record.with_(serial=old.serial) == old:
        record = old  # re-evaluated, still waiting: nothing to commit
    set_record(draft, owner, record, writes)
    return record


def waiting(record: OwnerRecord) -> bool:
    """Re-posting a bundle that waits re-evaluates it (docs/reference.md section 5)."""
    return not record.destinations or record.blocked


def applied(index: Index, record: OwnerRecord) -> Applied:
    misplaced = None
    if record.owner.request and record.destinations:
        destination = index.destinations.get(record.destinations[0])
        misplaced = destination is None or not matches(destination.labels, record.selectors)
    return Applied(record.owner, SCHEDULED if record.destinations else PENDING,
                   record.destinations, misplaced, record.pending_reason)
