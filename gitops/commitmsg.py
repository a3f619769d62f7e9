"""Commit messages: a summary, the files added/changed/removed, and git trailers."""

from __future__ import annotations

from gitops.layout import STATE


def commit_message(
    summary: str,
    added: list[str],
    changed: list[str],
    removed: list[str],
    notes: list[str],
    trailers: list[tuple[str, str]],
) -> str:
    body: list[str] = []
    state = 0
    for title, paths in (("Added", added), ("Changed", changed), ("Removed", removed)):
        shown = [p for p in paths if not p.startswith(STATE + "/")]
        state += len(paths) - len(shown)
        if shown:
            body.append(f"{title}:")
            body.extend(f"  {path}" for path in shown)
    if state:
        body.append(f"State: {state} file(s) under {STATE}/")
    body.extend(notes)
    lines = [summary, "", *body, ""] if body else [summary, ""]
    lines.extend(f"{key}: {value}" for key, value in trailers)
    return "\n".join(lines) + "\n"


def parse_trailers(message: str) -> dict[str, list[str]]:
    """Trailers of a statewriter commit message (the last paragraph)."""
    paragraph = message.strip().split("\n\n")[-1]
    trailers: dict[str, list[str]] = {}
    for line in paragraph.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Statewriter-"):
            trailers.setdefault(key, []).append(value.strip())
    return trailers
