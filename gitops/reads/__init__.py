"""The read side: typed read models of the state, built from the index and the store's reads
(`gitops.store.base.Reads`), as the write side builds typed results. The HTTP API renders
them as JSON, the web pages as HTML, the CLI as text; none of them runs git or knows where
the store keeps its repository.

    requests.py   a request's (or a promise's promise-level) state: pipelines, objects
    summaries.py  destinations with their requests and dependencies, for the pages
    promises.py   one promise: whether anything of it is stored, its namespaces, destinations
    listing.py    a promise's requests with their delivery, filtered and paged
    delivery.py   a request's delivery on each destination (what Flux reported applying)
    search.py     an object's owners on every destination, by kind and name
    history.py    the commits that name one request (its audit trail)
    audit.py      the commits across requests, filtered and paged (`GET /v1/history`)
    query.py      ... the query of them: filters, limit and cursor, read and checked
    commits.py    one commit: its message, trailers, files and diff (Secrets never shown)
    files.py      a commit's files added, changed and removed, the service's records left out
"""
