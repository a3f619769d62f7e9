"""An in-memory state store (`gitops.store.base.Store`) for tests of the writer lane where
git itself is not what is tested: no repository, no git process, the same answers.

`FakeRemote` is where a branch is published (its commits and its branch tips); each
`FakeStore` is one service's view of it (a replica), with commits staged until `publish`,
which is a compare-and-swap of the branch, as the real stores' are. Commits keep their
parent, message, author, time and whole file map; trees are `gitops.tree.DictTree`s.
tests/test_fakes.py runs the behaviours the writer relies on against this store and
`gitops.store.EmbeddedStore` alike.
"""

from __future__ import annotations

import difflib
import hashlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gitops.commitmsg import trailer_pairs
from gitops.errors import NotFound, StoreUnavailable
from gitops.store.base import Author, FileChange, FileDiff, LogEntry
from gitops.tree import Changes, DictTree, Tree, blob_id


@dataclass(frozen=True)
class FakeCommit:
    sha: str
    parent: str | None
    message: str
    files: Mapping[str, bytes]  # every file of the commit's tree: path -> content
    author: Author
    time: int  # seconds since the epoch


@dataclass
class FakeRemote:
    """Where the branch is published: shared by the stores (replicas) that publish to it."""

    commits: dict[str, FakeCommit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _check_path(path: str) -> None:
    """What the real stores refuse to write (gitops.store.objects): empty, `.` and `..`
    segments, `.git`, NUL."""
    for part in path.split("/"):
        if part in ("", ".", "..") or part.lower() == ".git" or "\0" in part:
            raise ValueError(f"invalid path {path!r}")


def _check_shape(files: Mapping[str, bytes], changes: Changes) -> None:
    """A file is never also a folder: what git's trees cannot hold, the real stores refuse."""
    folders = {path[:at] for path in files for at in range(len(path)) if path[at] == "/"}
    for path, content in changes.items():
        if content is None:
            continue
        if path in folders:
            raise ValueError(f"{path!r} is a folder, cannot be written as a file")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise ValueError(f"{parts[depth - 1]!r} is a file, cannot hold {path!r}")


def _ident(author: Author) -> str:
    return f"{author.name} <{author.email}>"


class FakeStore:
    """One service's store over `remote` (a new one when not given): see the module."""

    def __init__(self, remote: FakeRemote | None = None, branch: str = "main", path: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.remote = remote if remote is not None else FakeRemote()
        self.branch = branch
        # the folder whose disk the lane's readiness checks (a real store's repository)
        self.path = path if path is not None else Path(tempfile.gettempdir())
        self.clock = clock
        self.maintained = 0  # `maintain` calls
        self.closed = False
        self._staged: dict[str, FakeCommit] = {}
        self._staged_blobs: dict[str, bytes] = {}
        self._trees: dict[str, DictTree] = {}
        self._lock = threading.Lock()
        with self.remote.lock:
            self._tip: str | None = self.remote.branches.get(branch)

    # -- the writer's side ---------------------------------------------------------------------

    def tip(self) -> str | None:
        return self._tip

    def tree(self, commit: str | None) -> Tree:
        if commit is None:
            return DictTree()
        tree = self._trees.get(commit)
        if tree is None:
            tree = self._trees[commit] = DictTree(self._commit(commit).files)
        return tree

    def commit(self, parent: str | None, changes: Changes, message: str, author: Author) -> str:
        for path in changes:
            _check_path(path)
        with self._lock:
            files = dict(self._commit(parent).files) if parent is not None else {}
            _check_shape(files, changes)
            for path, content in changes.items():
                if content is None:
                    files.pop(path, None)
                else:
                    files[path] = content
                    self._staged_blobs[blob_id(content)] = content
            when = int(self.clock())
            identity = hashlib.sha1(repr((parent, message, _ident(author), when,
                                          sorted((p, blob_id(c)) for p, c in files.items())))
                                    .encode()).hexdigest()
            self._staged[identity] = FakeCommit(identity, parent, message, files, author, when)
            return identity

    def publish(self, expected: str | None, new: str) -> bool:
        with self._lock:
            staged, blobs = self._staged, self._staged_blobs
            self._staged, self._staged_blobs = {}, {}  # published, or dropped as a failed pack is
        with self.remote.lock:
            if new not in staged and new not in self.remote.commits:
                raise StoreUnavailable(f"cannot publish {new}: no such commit")
            if self.remote.branches.get(self.branch) != expected:
                return False
            self.remote.commits.update(staged)
            self.remote.blobs.update(blobs)
            self.remote.branches[self.branch] = new
            self._tip = new
            return True

    def refresh(self) -> str | None:
        with self.remote.lock:
            self._tip = self.remote.branches.get(self.branch)
        return self._tip

    def changed(self, old: str | None, new: str | None, prefix: str) -> list[str]:
        before, after = self._files(old), self._files(new)
        folder = prefix.strip("/")
        start = folder + "/" if folder else ""
        return sorted(path for path in before.keys() | after.keys()
                      if path.startswith(start) and before.get(path) != after.get(path))

    def maintain(self) -> None:
        self.maintained += 1

    def close(self) -> None:
        self.closed = True

    # -- the readers' side ---------------------------------------------------------------------

    def resolve_branch(self, branch: str) -> str | None:
        with self.remote.lock:
            tip = self.remote.branches.get(branch)
            anything = bool(self.remote.commits)
        if tip is not None:
            return tip
        found = self.resolve_commit(branch)
        if found is not None:
            return found
        if not anything:
            return None
        raise NotFound(f"no branch {branch!r}")

    def resolve_commit(self, given: str) -> str | None:
        if len(given) < 4 or any(c not in "0123456789abcdef" for c in given):
            return None
        with self.remote.lock:
            known = set(self.remote.commits) | set(self._staged)
        matches = [sha for sha in known if sha.startswith(given)]
        return matches[0] if len(matches) == 1 else None

    def is_ancestor(self, commit: str, of: str) -> bool:
        return commit in self._history(of)

    def log(self, revisions: Sequence[str], *, grep: Sequence[str] = (), files: bool = False,
            trailers_only: bool = False, walk: bool = True,
            topo_order: bool = False, grep_any: bool = False) -> Iterator[LogEntry]:
        """As `git log` (gitops.store.reads.GitReads.log): each revision a commit, a branch
        or `old..new`; newest first (a fake's history has no merges: topo order is the same)."""
        if walk:
            shas: list[str] = []
            for revision in revisions:
                old, dots, new = revision.partition("..")
                excluded = set(self._history(self._resolve(old))) if dots else set()
                shas += [sha for sha in self._history(self._resolve(new if dots else revision))
                         if sha not in excluded and sha not in shas]
        else:
            shas = [self._resolve(revision) for revision in revisions]
        for sha in shas:
            commit = self._commit(sha)
            if grep and not (any if grep_any else all)(text in commit.message for text in grep):
                continue
            message = (commit.message if not trailers_only else
                       "".join(f"{key}: {value}\n" for key, value in trailer_pairs(commit.message)))
            changes = tuple(FileChange(diff.status, diff.path) for diff in self._diff(commit))
            yield LogEntry(sha, commit.time, (commit.parent,) if commit.parent else (),
                           _ident(commit.author),
                           datetime.fromtimestamp(commit.time, UTC).isoformat(),
                           commit.message.split("\n", 1)[0], message, changes if files else None)

    def file_changes(self, commit: str) -> list[FileDiff]:
        found = []
        for diff in self._diff(self._commit(commit)):
            before, after = diff.before, diff.after
            binary = any(b"\0" in content for content in (before, after) if content is not None)
            added = removed = None
            if not binary:
                lines = difflib.SequenceMatcher(
                    None, (before or b"").splitlines(), (after or b"").splitlines(), autojunk=False)
                added = sum(j2 - j1 for tag, _, _, j1, j2 in lines.get_opcodes() if tag != "equal")
                removed = sum(i2 - i1 for tag, i1, i2, _, _ in lines.get_opcodes() if tag != "equal")
            found.append(FileDiff(diff.path, blob_id(before) if before is not None else None,
                                  blob_id(after) if after is not None else None, added, removed))
        return found

    def patch(self, commit: str, paths: Sequence[str]) -> str:
        out: list[str] = []
        for diff in self._diff(self._commit(commit)):
            if diff.path not in paths:
                continue
            out.append(f"diff --git a/{diff.path} b/{diff.path}\n")
            before = (diff.before or b"").decode(errors="replace").splitlines(keepends=True)
            after = (diff.after or b"").decode(errors="replace").splitlines(keepends=True)
            out += difflib.unified_diff(before, after,
                                        "/dev/null" if diff.before is None else f"a/{diff.path}",
                                        "/dev/null" if diff.after is None else f"b/{diff.path}")
        return "".join(out)

    def blobs(self, oids: Sequence[str]) -> list[bytes | None]:
        with self.remote.lock:
            known = {**self.remote.blobs, **self._staged_blobs}
        return [known.get(oid) for oid in oids]

    # -- inside -----------------------------------------------------------------------------------

    def _commit(self, sha: str) -> FakeCommit:
        with self.remote.lock:
            commit = self._staged.get(sha) or self.remote.commits.get(sha)
        if commit is None:
            raise ValueError(f"unknown commit {sha}")
        return commit

    def _files(self, sha: str | None) -> Mapping[str, bytes]:
        return self._commit(sha).files if sha is not None else {}

    def _resolve(self, revision: str) -> str:
        sha = self.resolve_branch(revision)
        if sha is None:
            raise NotFound(f"no commit {revision!r}")
        return sha

    def _history(self, sha: str) -> list[str]:
        """`sha` and its ancestors, newest first."""
        found: list[str] = []
        at: str | None = sha
        while at is not None:
            found.append(at)
            at = self._commit(at).parent
        return found

    def _diff(self, commit: FakeCommit) -> list[_Diff]:
        """What `commit` changed against its parent, in path order."""
        before = self._files(commit.parent)
        return [_Diff(path, before.get(path), commit.files.get(path))
                for path in sorted(before.keys() | commit.files.keys())
                if before.get(path) != commit.files.get(path)]


@dataclass(frozen=True)
class _Diff:
    path: str
    before: bytes | None
    after: bytes | None

    @property
    def status(self) -> str:
        return "A" if self.before is None else "D" if self.after is None else "M"
