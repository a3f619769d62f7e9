"""Secrets (CONTRACT section 9): under a destination that lists age recipients, no Secret
with values is in clear. A Secret a pipeline encrypted itself (its own `sops` block) is
written as sent, so any `sops` block passes; whether it decrypts is for sops to say."""

from __future__ import annotations

from collections.abc import Iterable

from gitops.layout import Destination
from gitops.verify.objects import Parsed


def check(destination: Destination, parsed: Iterable[Parsed], findings: list[str]) -> None:
    if not destination.recipients:
        return
    for path, _, doc in parsed:
        if doc.get("kind") != "Secret" or doc.get("apiVersion") != "v1":
            continue
        if isinstance(doc.get("sops"), dict) or not (doc.get("data") or doc.get("stringData")):
            continue
        findings.append(f"{path}: a Secret in clear, though destination {destination.name} "
                        "lists age recipients (CONTRACT section 9)")
