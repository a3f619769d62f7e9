"""What every check reports: plain strings, one per problem, each starting with the
repository path it is about, so a CI log reads like a compiler's."""

from __future__ import annotations


def first_line(text: str) -> str:
    """The first line of a tool's message that says anything."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
