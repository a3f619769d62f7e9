"""Commit messages: a summary, the files added/changed/removed, and git trailers."""

from __future__ import annotations

import re

from gitops.layout import STATE

# Every `Statewriter-Action` a commit of the service names (docs/reference.md section 7): a
# bundle or a delete, a rollback to an earlier commit, the revert of a commit, a change of
# destinations (and the placements it brings), the migration of the layout
ACTIONS = ("apply", "delete", "rollback", "revert", "destination", "migrate")
ACTION_NAMES = ", ".join(ACTIONS[:-1]) + " or " + ACTIONS[-1]  # as the API's docs list them


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


_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def trailer_pairs(message: str) -> list[tuple[str, str]]:
    """The trailers of a commit message (its last paragraph), in order, read as git reads
    them: lines are split on line feeds only, a line is `Key: value` with a key of letters,
    digits and `-`, and a line that starts with a space or a tab continues the one before.
    Every reader of trailers goes through here (or `trailer_block_pairs` for git's own
    `%(trailers)` output), so a value can never become a line of its own."""
    paragraph = message.strip("\n").rpartition("\n\n")[2]
    return trailer_block_pairs(paragraph)


def trailer_block_pairs(block: str) -> list[tuple[str, str]]:
    """`Key: value` lines of a trailer block, split on line feeds only (see `trailer_pairs`)."""
    pairs: list[tuple[str, str]] = []
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and pairs:
            key, value = pairs[-1]
            pairs[-1] = (key, f"{value} {line.strip()}".strip())
            continue
        key, sep, value = line.partition(":")
        if sep and _TRAILER_KEY.fullmatch(key.strip()):
            pairs.append((key.strip(), value.strip()))
    return pairs


def parse_trailers(message: str) -> dict[str, list[str]]:
    """The service's own trailers (`Statewriter-*`) of a commit message, by key."""
    trailers: dict[str, list[str]] = {}
    for key, value in trailer_pairs(message):
        if key.startswith("Statewriter-"):
            trailers.setdefault(key, []).append(value)
    return trailers
