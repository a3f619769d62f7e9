"""Planning: (index, tip tree, request) -> (changes, commit message, typed result). Pure.

Nothing here touches git or the network; the inputs are never mutated. Every operation
works on a `Draft`: a child layer of the index plus an overlay of file changes on the
tree. The object files of a destination are a function of the index: each object lives
at `layout.object_path(section, identity, owners)`, so every change is "update who holds
what, then move or write the affected files, then rewrite the kustomizations of the
folders touched". One module per operation:

    apply.py         POST /v1/bundles
    delete.py        DELETE a request or a promise's promise-level bundles
    rollback.py      a request's output as it stood at an earlier commit, written again
    destinations.py  PUT and DELETE /v1/destinations/{name}
    retry.py         placing what a conflict kept out, once it is gone (a follow-up)
    migrate.py       bringing an older layout to the current one (at start-up)
    check.py         a bundle planned against one destination, nothing written (validate)

and the parts they share: `draft.py` (Draft, Plan, Policy), `holdings.py` (a bundle
rendered for a destination, conflicts), `ownership.py` (who holds what, and the files that
follow), `placing.py` (scheduling and waiting bundles), `stored.py` (bundles kept under
`.statewriter/bundles`), `sealing.py` (Secrets encrypted for their destination, the last
step of rendering), `validating.py` (what the destination's API server would refuse),
`trailers.py`, and `results.py` (the typed results).
"""

from gitops.planner.apply import plan_apply
from gitops.planner.delete import plan_delete
from gitops.planner.destinations import plan_delete_destination, plan_put_destination
from gitops.planner.draft import Draft, Plan, Policy
from gitops.planner.migrate import needs_migration, plan_migrate
from gitops.planner.retry import plan_retry_blocked
from gitops.planner.rollback import plan_rollback
from gitops.planner.stored import stored_bundle

__all__ = [
    "Draft", "Plan", "Policy", "needs_migration", "plan_apply", "plan_delete",
    "plan_delete_destination", "plan_migrate", "plan_put_destination", "plan_retry_blocked",
    "plan_rollback", "stored_bundle",
]
