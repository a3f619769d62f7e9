"""DELETE a request (or a promise's promise-level bundles): remove all it owns."""

from __future__ import annotations

from gitops.errors import NotFound
from gitops.index import Index, OwnerRecord
from gitops.planner.draft import Draft, Plan, Policy, who
from gitops.planner.ownership import set_record
from gitops.planner.results import Deleted
from gitops.planner.retry import retry_after
from gitops.planner.stored import store_documents
from gitops.planner.trailers import owner_trailers
from gitops.tree import Tree


def plan_delete(
    index: Index,
    tree: Tree,
    promise: str,
    namespace: str,
    name: str,
    pipeline: str | None,
    actor: str,
    policy: Policy = Policy(),
) -> Plan:
    """Remove all a request (or, with empty namespace and name, a promise) owns."""
    records = [
        r for r in index.request_owners(promise, namespace, name)
        if pipeline is None or r.owner.pipeline == pipeline
    ]
    what = f"request {namespace}/{name} of promise {promise}" if name else f"promise {promise}"
    if not records:
        suffix = f" (pipeline {pipeline})" if pipeline else ""
        raise NotFound(f"no bundles stored for {what}{suffix}")
    draft = Draft(index, tree, policy)
    for record in records:
        remove_bundle(draft, record)
    owner = records[0].owner
    destinations = sorted(draft.destinations)
    trailers = owner_trailers("delete", owner, destinations, actor,
                              pipelines=[r.owner.pipeline for r in records])
    result = Deleted(tuple(r.owner for r in records), tuple(destinations))
    plan = draft.finish(f"delete {who(owner, pipeline is not None)}", trailers, result)
    plan.follow_up = retry_after(draft, actor)
    return plan


def remove_bundle(draft: Draft, record: OwnerRecord) -> None:
    """Take out all one owner holds: its objects (those others still output stay) and the
    documents kept for it under .statewriter/bundles."""
    store_documents(draft, record.owner, None, record.stored_documents)
    set_record(draft, record.owner, None, {})
