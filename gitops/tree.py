"""Read-only views of a repository tree: the planner's only window on the store.

A tree maps slash-separated paths to file contents. `DictTree` is the in-memory form
(tests, the REPL); the git store provides a lazy implementation over a commit; `Overlay`
shows a tree with pending changes applied without copying it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Protocol

Changes = Mapping[str, bytes | None]
"""Path -> new content, or None to delete the file."""


def blob_id(content: bytes) -> str:
    """The git blob id of `content` (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class Tree(Protocol):
    def read(self, path: str) -> bytes | None:
        """Content of the file at `path`, or None when there is none."""
        ...

    def blob_id(self, path: str) -> str | None:
        """The git blob id of the file at `path` (None when there is none), without
        necessarily reading it: what the planner compares to drop no-op changes."""
        ...

    def listdir(self, path: str) -> dict[str, bool]:
        """Entries directly below folder `path` ("" for the root): name -> is a folder."""
        ...

    def is_folder(self, path: str) -> bool:
        """Whether `path` is a folder (git has no empty ones), without listing it."""
        ...

    def files(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Every file below folder `prefix`, with its content, in path order."""
        ...


class DictTree:
    """A tree held as a dict of path -> bytes."""

    def __init__(self, files: Mapping[str, bytes] | None = None) -> None:
        self._files = dict(files or {})

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def blob_id(self, path: str) -> str | None:
        content = self._files.get(path)
        return None if content is None else blob_id(content)

    def listdir(self, path: str) -> dict[str, bool]:
        return _listdir(self._files, path)

    def is_folder(self, path: str) -> bool:
        start = path.rstrip("/") + "/"
        return any(p.startswith(start) for p in self._files)

    def files(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        start = prefix.rstrip("/") + "/" if prefix else ""
        for path in sorted(self._files):
            if path.startswith(start):
                yield path, self._files[path]


def _listdir(paths: Mapping[str, object], folder: str) -> dict[str, bool]:
    start = folder.rstrip("/") + "/" if folder else ""
    entries: dict[str, bool] = {}
    for path in paths:
        if path.startswith(start):
            head, sep, _ = path[len(start):].partition("/")
            entries[head] = entries.get(head, False) or bool(sep)
    return entries


class Overlay:
    """`base` with `changes` applied on top; nothing is copied."""

    def __init__(self, base: Tree, changes: Changes) -> None:
        self.base = base
        self.changes = changes

    def read(self, path: str) -> bytes | None:
        if path in self.changes:
            return self.changes[path]
        return self.base.read(path)

    def blob_id(self, path: str) -> str | None:
        if path in self.changes:
            content = self.changes[path]
            return None if content is None else blob_id(content)
        return self.base.blob_id(path)

    def listdir(self, path: str) -> dict[str, bool]:
        entries = dict(self.base.listdir(path))
        start = path.rstrip("/") + "/" if path else ""
        maybe_emptied: set[str] = set()
        for changed, content in self.changes.items():
            if not changed.startswith(start):
                continue
            head, sep, _ = changed[len(start):].partition("/")
            if not sep:
                if content is None:
                    entries.pop(head, None)
                else:
                    entries[head] = False
            elif content is not None:
                entries[head] = True
            elif entries.get(head):
                maybe_emptied.add(head)
        for head in maybe_emptied:
            if not self.listdir(start + head):
                del entries[head]
        return entries

    def is_folder(self, path: str) -> bool:
        start = path.rstrip("/") + "/"
        touched = [content for changed, content in self.changes.items() if changed.startswith(start)]
        if any(content is not None for content in touched):
            return True
        if not self.base.is_folder(path):
            return False
        return not touched or bool(self.listdir(path))  # only deletions below: did any survive?

    def files(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        start = prefix.rstrip("/") + "/" if prefix else ""
        merged: dict[str, bytes] = dict(self.base.files(prefix))
        for path, content in self.changes.items():
            if not path.startswith(start):
                continue
            if content is None:
                merged.pop(path, None)
            else:
                merged[path] = content
        for path in sorted(merged):
            yield path, merged[path]
