"""Invariant 8 (values survive the trip): no plain scalar in a file under a destination
path that YAML 1.1, YAML 1.2 and Go readers read differently (`08544`, `1e3`, `yes`)."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from gitops.yamlscalars import ambiguous_plain_scalars


def check(files: Mapping[str, bytes], findings: list[str]) -> None:
    """One finding per ambiguous plain scalar in `files` (the object files and
    kustomizations of one destination)."""
    for path, content in files.items():
        if not path.endswith(".yaml"):
            continue  # reported as a file that may not be there
        try:
            text = content.decode()
        except UnicodeDecodeError:
            continue  # reported as an object file that is not UTF-8 text
        try:
            found = ambiguous_plain_scalars(text)
        except yaml.YAMLError:
            continue  # reported as invalid YAML
        for line, scalar in found:
            findings.append(f"{path}: line {line}: plain scalar '{scalar}' reads differently "
                            "under YAML 1.1, YAML 1.2 and Go readers (quote it)")
