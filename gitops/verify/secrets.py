"""Secrets (docs/reference.md section 9): under a destination that lists age recipients, no value of
a Secret is in clear, whatever else the document carries. A Secret a pipeline encrypted
itself must be a whole SOPS envelope encrypted for every recipient the destination lists;
a `sops` key alone proves nothing."""

from __future__ import annotations

from collections.abc import Iterable

from gitops.destination import Destination
from gitops.secrets.envelope import (
    age_recipients,
    claims_encryption,
    envelope_problem,
    is_secret_document,
    plaintext_fields,
)
from gitops.verify.objects import Parsed


def check(destination: Destination, parsed: Iterable[Parsed], findings: list[str]) -> None:
    if not destination.recipients:
        return
    for path, _, doc in parsed:
        if not is_secret_document(doc):
            continue
        if not claims_encryption(doc):
            clear = plaintext_fields(doc)
            if clear:
                findings.append(f"{path}: a Secret with values in clear ({', '.join(clear[:5])}), "
                                f"though destination {destination.name} lists age recipients "
                                "(Secrets are encrypted for them)")
            continue
        problem = envelope_problem(doc)
        if problem is not None:
            findings.append(f"{path}: a Secret that is no whole SOPS envelope under destination "
                            f"{destination.name}: {problem}")
            continue
        missing = sorted(set(destination.recipients) - age_recipients(doc))
        if missing:
            findings.append(f"{path}: a Secret not encrypted for destination "
                            f"{destination.name}'s recipient(s) {', '.join(missing)}")
