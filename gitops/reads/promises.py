"""One promise as its page shows it beside its requests (`gitops.reads.listing` lists those):
whether anything of it is stored, how many requests it has, and the namespaces and
destinations they are in (what the page's filters offer). A promise exists for the pages
when it has requests or promise-level bundles. Built from the index alone (no git)."""

from __future__ import annotations

from dataclasses import dataclass

from gitops.index import Index


@dataclass(frozen=True)
class PromiseOverview:
    promise: str
    requests: int
    namespaces: tuple[str, ...]  # of its requests
    destinations: tuple[str, ...]  # its requests are placed on
    promise_level: bool  # it has promise-level bundles


def promise_overview(index: Index, promise: str) -> PromiseOverview | None:
    """`promise` as the index holds it; None when it holds nothing of it. Read it through
    `gitops.reads.summaries.consistent`: the index may change under it."""
    requests = 0
    namespaces: set[str] = set()
    destinations: set[str] = set()
    promise_level = False
    for (owner_promise, namespace, name), owners in index.requests.items():
        if owner_promise != promise:
            continue
        if not name:
            promise_level = True
            continue
        requests += 1
        namespaces.add(namespace)
        for owner in owners:
            record = index.owners.get(owner)
            if record is not None:
                destinations.update(record.destinations)
    if not requests and not promise_level:
        return None
    return PromiseOverview(promise, requests, tuple(sorted(namespaces)),
                           tuple(sorted(destinations)), promise_level)
