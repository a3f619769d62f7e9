"""`POST /v1/destinations/{name}/validate` and `statewriter validate`: a bundle planned
against one destination as if it were placed there now (its objects checked as the
destination's API server checks them, its conflicts with what others hold found), nothing
written. Pure, like every operation: it reads the index and the tree."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from gitops.bundle import Bundle
from gitops.errors import NotFound
from gitops.index import Index
from gitops.planner.apply import plan_apply
from gitops.planner.destinations import Cluster, plan_put_destination
from gitops.planner.draft import Draft, Plan, Policy
from gitops.planner.holdings import holdings
from gitops.quoting import quoted
from gitops.tree import DictTree, Tree


@dataclass(frozen=True)
class Checked:
    """A bundle the destination would take: what the answer warns about."""

    destination: str
    objects: int
    warnings: tuple[str, ...]


def check_bundle(index: Index, tree: Tree, bundle: Bundle, destination: str,
                 policy: Policy = Policy()) -> Checked:
    """Raises what placing `bundle` in `destination` would be refused with (InvalidObject,
    InvalidBundle, Conflict); NotFound for a destination that does not exist."""
    if destination not in index.destinations:
        raise NotFound(f"no destination {quoted(destination)}")
    draft = Draft(index, tree, policy)
    holds, _ = holdings(draft, bundle, destination)
    return Checked(destination, len(holds), tuple(draft.notes.warnings))


def check_offline(bundle: Bundle, crds: Bundle | None, cluster: Cluster,
                  policy: Policy = Policy()) -> Checked:
    """`check_bundle` against a destination that exists only here: a cluster as `cluster`
    declares it, holding the CRDs of `crds` (a promise-level bundle) and nothing else."""
    index, tree = Index(), DictTree()
    for plan in _offline_destination(index, tree, cluster, crds, policy):
        tree = _applied(tree, plan.changes)
        plan.index.merge_down()
        index = plan.index
    return check_bundle(index, tree, bundle, OFFLINE, policy)


OFFLINE = "offline"


def _offline_destination(index: Index, tree: Tree, cluster: Cluster, crds: Bundle | None,
                         policy: Policy) -> Iterator[Plan]:
    put = plan_put_destination(index, tree, OFFLINE, {}, None, OFFLINE, policy, cluster=cluster)
    yield put
    if crds is not None:
        yield plan_apply(put.index, _applied(tree, put.changes), crds, OFFLINE, policy)


def _applied(tree: Tree, changes: Mapping[str, bytes | None]) -> DictTree:
    files = dict(tree.files(""))
    for path, content in changes.items():
        if content is None:
            files.pop(path, None)
        else:
            files[path] = content
    return DictTree(files)
