"""The git trailers of statewriter's commits (docs/reference.md section 7)."""

from __future__ import annotations

from gitops.index import OwnerRecord
from gitops.owner import Owner
from gitops.planner.draft import Trailers


def owner_trailers(
    action: str, owner: Owner, destinations: list[str], actor: str,
    pipelines: list[str] | None = None,
) -> Trailers:
    trailers = [("Statewriter-Action", action), ("Statewriter-Promise", owner.promise)]
    if owner.request:
        trailers.append(("Statewriter-Request", owner.request))
    for pipeline in pipelines or [owner.pipeline]:
        trailers.append(("Statewriter-Pipeline", pipeline))
    trailers.extend(("Statewriter-Destination", d) for d in destinations)
    trailers.append(("Statewriter-Actor", actor))
    return trailers


def placed_trailers(records: list[OwnerRecord]) -> Trailers:
    """One group per bundle a commit places besides its own (history pairs them in order)."""
    trailers: Trailers = []
    for record in records:
        owner = record.owner
        trailers.append(("Statewriter-Promise", owner.promise))
        if owner.request:
            trailers.append(("Statewriter-Request", owner.request))
        trailers.append(("Statewriter-Pipeline", owner.pipeline))
        trailers.append(("Statewriter-Bundle-Digest", record.digest))
        trailers.extend(record.trailers)
    return trailers


def rollback_trailers(
    commit: str, records: list[OwnerRecord], removed: list[Owner], destinations: list[str],
    actor: str,
) -> Trailers:
    """A rollback of one request: the commit it goes back to, one group per pipeline written
    as it stood then (with the digest and the bundle's own trailers it had then), one per
    pipeline removed, then the destinations and the actor."""
    trailers: Trailers = [("Statewriter-Action", "rollback"), ("Statewriter-Rollback-To", commit)]
    trailers.extend(placed_trailers(records))
    for owner in removed:
        trailers.append(("Statewriter-Promise", owner.promise))
        if owner.request:
            trailers.append(("Statewriter-Request", owner.request))
        trailers.append(("Statewriter-Pipeline", owner.pipeline))
    trailers.extend(("Statewriter-Destination", d) for d in destinations)
    trailers.append(("Statewriter-Actor", actor))
    return trailers
