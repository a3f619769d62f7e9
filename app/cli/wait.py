"""`statewriter push --wait`: after the push, poll the request until Flux on every
destination it is placed on reports its commit applied (exit 0) or failed (exit 1, with
Flux's message), or `--timeout` seconds pass (exit 1, saying what it still waits for)."""

from __future__ import annotations

import sys
import time
from typing import Any

from app.cli.client import auth_headers, call, json_body, print_refusal

POLL_FIRST, POLL_MAX = 1.0, 10.0  # seconds between polls: doubling from the first
EXIT_APPLIED, EXIT_NOT_APPLIED = 0, 1


def wait_for_delivery(base: str, promise: str, namespace: str, name: str, timeout: float,
                      retries: int) -> int:
    url = f"{base}/v1/promises/{promise}/requests/{namespace}/{name}"
    deadline = time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        response = call("push", "GET", url, retries, headers=auth_headers())
        if response is None:
            return EXIT_NOT_APPLIED
        if not response.is_success:
            return print_refusal("push", response)
        body = json_body(response)
        delivery: dict[str, Any] = body.get("delivery") or {}
        state = delivery.get("state")
        destinations: list[dict[str, Any]] = delivery.get("destinations") or []
        if state == "Applied":
            for found in destinations:
                print(f"  applied: {found.get('destination')} at {found.get('applied')}")
            return EXIT_APPLIED
        if state == "Failed":
            for found in destinations:
                if found.get("state") == "Failed":
                    print(f"statewriter: push: not applied on {found.get('destination')}: "
                          f"{found.get('kustomization')}: {found.get('reason')}: "
                          f"{' '.join(str(found.get('message')).split())}", file=sys.stderr)
            return EXIT_NOT_APPLIED
        if state == "Unknown":
            print("statewriter: push: --wait: the service has no delivery events configured "
                  "(delivery.hmacTokenFile), so it cannot tell when Flux applied the commit",
                  file=sys.stderr)
            return EXIT_NOT_APPLIED
        if time.monotonic() + delay > deadline:
            print(f"statewriter: push: --wait: not applied after {timeout:g}s: "
                  f"{_waiting(body, destinations)}", file=sys.stderr)
            return EXIT_NOT_APPLIED
        time.sleep(delay)
        delay = min(POLL_MAX, delay * 2)


def _waiting(body: dict[str, Any], destinations: list[dict[str, Any]]) -> str:
    if body.get("state") == "Pending" and not destinations:
        reasons = {p.get("reason") for p in body.get("pipelines", []) if p.get("reason")}
        return "the request is not placed" + (f" ({'; '.join(sorted(reasons))})" if reasons else "")
    pending = [f"{d.get('destination')} waits for {d.get('kustomization')}"
               + (" (overdue: look at that Kustomization on the worker)" if d.get("overdue") else "")
               for d in destinations if d.get("state") == "Pending"]
    return "; ".join(pending) or "still pending"
