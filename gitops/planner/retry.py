"""Placing the bundles a conflict kept out of a destination, once that conflict is gone: a
commit of its own (action `destination`) right after the change that freed the objects."""

from __future__ import annotations

import functools
from collections.abc import Callable

from gitops.index import Index
from gitops.planner.draft import Draft, Plan, Policy, unchanged
from gitops.planner.placing import place_waiting_bundles
from gitops.planner.results import Retried
from gitops.planner.trailers import placed_trailers
from gitops.tree import Tree


def plan_retry_blocked(
    index: Index, tree: Tree, destinations: tuple[str, ...], actor: str,
    policy: Policy = Policy(),
) -> Plan:
    """Place the bundles a conflict kept out of `destinations`, where it is gone. Nothing is
    committed while the conflicts stay."""
    blocked = sorted((record for owner, _ in index.blocked.items()
                      if (record := index.owners.get(owner))), key=lambda r: r.serial)
    draft = Draft(index, tree, policy)
    for name in destinations:
        destination = draft.index.destinations.get(name)
        if destination is not None:
            place_waiting_bundles(draft, destination, [record.owner for record in blocked])
    if not draft.notes.placed:
        return unchanged(index, Retried())
    placed = sorted({d for record in draft.notes.placed for d in record.destinations})
    trailers = [("Statewriter-Action", "destination"), *placed_trailers(draft.notes.placed)]
    trailers += [("Statewriter-Destination", d) for d in placed] + [("Statewriter-Actor", actor)]
    return draft.finish(f"place waiting bundles in {', '.join(placed)}", trailers, Retried())


def retry_after(draft: Draft, actor: str) -> Callable[[Index, Tree], Plan] | None:
    """The follow-up of a change that touched destinations while bundles wait on conflicts."""
    if not draft.destinations or next(draft.index.blocked.items(), None) is None:
        return None
    return functools.partial(plan_retry_blocked, destinations=tuple(sorted(draft.destinations)),
                             actor=actor, policy=draft.policy)
