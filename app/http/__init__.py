"""The HTTP API (docs/reference.md section 6): the routes (`api` for /v1, `audit` for /v1/history,
`delivery` for Flux's events and the requests' delivery, `ops` for probes and metrics,
`githttp` for /git), the one table from error to status and every answer body (`answers`),
request bodies (`bodies`, `models`), the OpenAPI document (`schemas`), tokens (`auth`),
what a route reads from the app (`state`), request ids, the request log and what observes
it (`requestid`, `access`, `metrics`, `refused`), and the seam to uvicorn (`server`).
`app.main.create_app` assembles them."""
