"""Git object plumbing shared by both stores: objects staged in memory and written as one
pack per published group, read through a persistent `git cat-file --batch`
(`gitops.git.process.CatFile`), a tree cache, path-local tree rebuilding and a lazy `Tree`
view over a commit. Nothing here uses an index or a work tree."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple, Self

from gitops import caches
from gitops.errors import StoreUnavailable
from gitops.git.process import CATFILE_BATCH, CatFile, environment, run_git
from gitops.lru import LRU, Memo
from gitops.quoting import quoted
from gitops.store.base import Author
from gitops.store.pack import object_id, write_pack
from gitops.store.signing import Signer, sign_commit
from gitops.tree import Changes, Tree

ZERO_SHA = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
TREE_MODE = "40000"
FILE_MODE = "100644"
GITLINK_MODE = "160000"

# Entries in git order: name -> (mode, hex sha).
Entry = tuple[str, str]
Entries = dict[str, Entry]
FileChange = tuple[str, Entry | None, Entry | None]  # path, entry before, entry after
_NOT_FILES = (TREE_MODE, GITLINK_MODE)

_SHA = re.compile(r"[0-9a-f]{40}")
_CRUFT = re.compile(r"tmp_(obj|pack|idx)_.*")
_CACHED_BLOB_BYTES = 8 << 20
_CACHED_TREE_WEIGHT = 100_000
_WRITTEN_FILES = 200_000  # changed files remembered, over the commits written last
_REMEMBERED_FOLDERS = 4096  # folders one tree view keeps at hand
_WRITTEN_CHAIN = 4096  # commits between two tips followed through those records at most


class _Written(NamedTuple):
    parent: str | None
    files: tuple[FileChange, ...]


def check_sha(sha: str) -> str:
    if not _SHA.fullmatch(sha):
        raise ValueError(f"not a full hex object id: {quoted(sha)}")
    return sha


def parse_tree(data: bytes) -> Entries:
    entries: Entries = {}
    i, end = 0, len(data)
    while i < end:
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        name = data[space + 1:nul].decode("utf-8", "surrogateescape")
        entries[name] = (data[i:space].decode(), data[nul + 1:nul + 21].hex())
        i = nul + 21
    return entries


def _git_order(item: tuple[str, tuple[str, str]]) -> bytes:
    name, (mode, _) = item
    key = name.encode("utf-8", "surrogateescape")
    # git compares folder names as if they ended with "/"
    return key + b"/" if mode == TREE_MODE else key


def format_tree(entries: Entries, in_order: bool = False) -> tuple[bytes, Entries]:
    """The tree object's content and its entries in git order (sorted unless `in_order`)."""
    ordered = entries if in_order else dict(sorted(entries.items(), key=_git_order))
    encoded = _ENCODED_ENTRIES
    return b"".join([encoded[item] for item in ordered.items()]), ordered


def _encode_entry(item: tuple[str, tuple[str, str]]) -> bytes:
    name, (mode, sha) = item
    return b"%s %s\0%s" % (mode.encode(), name.encode("utf-8", "surrogateescape"),
                           bytes.fromhex(sha))


_ENCODED_ENTRIES: Memo[tuple[str, tuple[str, str]], bytes] = caches.memo(
    "tree entries", _encode_entry, caches.TREE_ENTRIES)


def _check_path(path: str) -> None:
    for part in path.split("/"):
        if part in ("", ".", "..") or part.lower() == ".git" or "\0" in part:
            raise ValueError(f"invalid path {quoted(path)}")


def _ident(author: Author, when: int) -> str:
    def clean(text: str) -> str:
        return re.sub(r"[<>\n\r\0]", "", text).strip()

    return f"{clean(author.name) or 'unknown'} <{clean(author.email)}> {when} +0000"


class Repository:
    """A bare repository read through cat-file and written with packs."""

    signer: Signer | None = None  # signs every commit written here; closed with the store

    def __init__(self, path: Path, branch: str, env: Mapping[str, str] | None = None,
                 names_head: bool = True) -> None:
        """`names_head`: HEAD names `branch`, the one a clone checks out (the branch the
        service writes; not another it keeps in the same repository)."""
        self.path = path
        self.branch = branch
        self._env = dict(env) if env is not None else environment()
        self._objects = path / "objects"
        remove_stale_files(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Idempotent: also completes an init that was killed half way.
        init = run_git(["init", "--bare", "-q", str(path)], self._env)
        if init.returncode != 0:
            raise StoreUnavailable(f"git init {path} failed: {init.stderr.decode().strip()}")
        if run_git(["check-ref-format", f"refs/heads/{branch}"], self._env).returncode != 0:
            raise ValueError(f"invalid branch name {quoted(branch)}")
        head = path / "HEAD"
        if names_head and head.read_text().strip() != f"ref: refs/heads/{branch}":
            self.git("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        self._reader = CatFile(path, self._env)
        # Bounded by size, not count: the folders of a big namespace hold thousands of
        # entries, most folders a few (weight: entries, plus the cost of a small dict). A
        # write re-reads the folders on its path, so even a huge one is worth keeping.
        self._trees: LRU[str, Entries] = LRU(_CACHED_TREE_WEIGHT, lambda entries: 8 + len(entries),
                                             largest=_CACHED_TREE_WEIGHT // 2)
        self._roots: LRU[str, str] = LRU(1024)  # commit -> root tree
        # Small blobs read one at a time (the planner re-reads the same shared files on
        # every write); keyed by object id, so never stale.
        self._blobs: LRU[str, bytes] = LRU(_CACHED_BLOB_BYTES, len)
        # The files each commit written here changed, with their entries before and after:
        # `changed` between two commits of this process is then a merge of these, not a
        # walk of both trees (the walk re-read through cat-file the folders a commit had
        # just superseded, one round trip each: a fifth of the writer lane, measured).
        # Weight: files; a migration's commit is over `largest` and walks the trees.
        self._written: LRU[str, _Written] = LRU(_WRITTEN_FILES, lambda w: 1 + len(w.files))
        self._write_lock = threading.Lock()
        self._pending: dict[str, tuple[str, bytes]] = {}  # staged objects, by id
        self._held: list[IO[str]] = []

    # -- plumbing -------------------------------------------------------------------

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        proc = run_git([f"--git-dir={self.path}", *args], self._env, input=input)
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise StoreUnavailable(f"git {args[0]} failed: {err}")
        return proc.stdout.decode(errors="replace")

    def read_ref(self, ref: str) -> str | None:
        """A ref's value read straight from the files backend (no process)."""
        if (self.path / "reftable").exists():
            out = self.git("rev-parse", "--verify", "--quiet", ref, check=False).strip()
            return out or None
        try:
            value = (self.path / ref).read_text().strip()
            return value if _SHA.fullmatch(value) else None
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        try:
            packed = (self.path / "packed-refs").read_text()
        except FileNotFoundError:
            return None
        for line in packed.splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _SHA.fullmatch(sha):
                return sha
        return None

    def write_object(self, kind: str, data: bytes) -> str:
        """Stage an object; it reaches the disk, with the rest of its group, at `flush`."""
        sha = object_id(kind, data)
        self._pending[sha] = (kind, data)
        return sha

    def flush(self) -> str | None:
        """Write the staged objects as one pack (the branch may then point at them); returns
        its name, for `discard` when the publish that needed it fails (None when it wrote
        none: a pack already there may be another publish's, and is never discarded)."""
        with self._write_lock:
            if not self._pending:
                return None
            name = write_pack(self._objects / "pack", self._pending)
            self._pending = {}
            return name

    def publish_staged(self, publish: Callable[[], bool]) -> bool:
        """Write the staged objects, then `publish` (a compare-and-swap of the branch, or a
        push with lease); the pack goes again when that does not publish."""
        pack = self.flush()
        try:
            published = publish()
        except BaseException:
            self.discard(pack)
            raise
        if not published:
            self.discard(pack)
        return published

    def discard(self, pack: str | None) -> None:
        """Remove a pack written for a publish that failed: nothing refers to its objects
        (a re-plan stages what it needs again), and a remote outage would otherwise leave
        one pack per attempt. The index goes first: git sees a pack only through it."""
        if pack is None:
            return
        for suffix in ("idx", "pack"):
            (self._objects / "pack" / f"pack-{pack}.{suffix}").unlink(missing_ok=True)
        self._reader.close()  # reopened on the next read, without the pack

    def _read_object(self, sha: str) -> tuple[str, bytes] | None:
        return self._pending.get(sha) or self._reader.read(sha)

    def read_tree(self, sha: str, keep: bool = True) -> Entries:
        """A folder's entries; `keep=False` for bulk walks that would only churn the cache."""
        entries = self._trees.get(sha)
        if entries is None:
            if sha == EMPTY_TREE:
                return {}
            obj = self._read_object(sha)
            if obj is None or obj[0] != "tree":
                raise StoreUnavailable(f"tree {sha} is missing")
            entries = parse_tree(obj[1])
            if keep:
                self._trees.put(sha, entries)
        return entries

    def root_of(self, commit: str) -> str:
        root = self._roots.get(check_sha(commit))
        if root is None:
            obj = self._read_object(commit)
            if obj is None or obj[0] != "commit" or not obj[1].startswith(b"tree "):
                raise ValueError(f"unknown commit {commit}")
            root = obj[1][5:45].decode()
            self._roots.put(commit, root)
        return root

    def read_blob(self, sha: str) -> bytes:
        """One blob, through the cache (which keeps only blobs under an eighth of it)."""
        blob = self._blobs.get(sha)
        if blob is None:
            blob = self.read_blobs([sha])[0]
            self._blobs.put(sha, blob)
        return blob

    def read_blobs(self, shas: Sequence[str]) -> list[bytes]:
        unstaged = [sha for sha in shas if sha not in self._pending]
        stored = dict(zip(unstaged, self._reader.read_many(unstaged), strict=True))
        out = []
        for sha in shas:
            obj = self._pending.get(sha) or stored.get(sha)
            if obj is None:
                raise StoreUnavailable(f"blob {sha} is missing")
            out.append(obj[1])
        return out

    # -- Store API shared by both stores ----------------------------------------------

    def tree(self, commit: str | None) -> Tree:
        return GitTree(self, self.root_of(commit) if commit is not None else None)

    def commit(self, parent: str | None, changes: Changes, message: str, author: Author) -> str:
        for path in changes:
            _check_path(path)
        with self._write_lock:
            base = self.root_of(parent) if parent is not None else None
            files: list[FileChange] = []
            root = self._rebuild(base, changes, "", files) or self.write_object("tree", b"")
            now = int(time.time())
            lines = [f"tree {root}"]
            if parent is not None:
                lines.append(f"parent {parent}")
            lines.append(f"author {_ident(author, now)}")
            lines.append(f"committer {_ident(author, now)}")
            text = "\n".join(lines) + "\n\n" + message.rstrip("\n") + "\n"
            data = text.encode()
            sha = self.write_object("commit", data if self.signer is None
                                    else sign_commit(data, self.signer))
            self._roots.put(sha, root)
            self._written.put(sha, _Written(parent, tuple(files)))
            return sha

    def _rebuild(self, tree: str | None, changes: Mapping[str, bytes | None], at: str,
                 files: list[FileChange]) -> str | None:
        """Apply `changes` (paths relative to this folder, `at`) to `tree`; None when empty.
        Each file that changed is added to `files` with its entry before and after."""
        here: dict[str, bytes | None] = {}
        below: dict[str, dict[str, bytes | None]] = {}
        for path, content in changes.items():
            head, sep, rest = path.partition("/")
            if sep:
                below.setdefault(head, {})[rest] = content
            else:
                here[head] = content
        entries = dict(self.read_tree(tree)) if tree is not None else {}
        in_order = True  # a tree's entries come in git order; replacing one in place keeps it
        for name in here.keys() | below.keys():
            current = entries.get(name)
            is_folder = current is not None and current[0] == TREE_MODE
            content = here.get(name)
            if current is not None and not is_folder and name in below and name not in here:
                raise ValueError(f"{quoted(name)} is a file, cannot hold {', '.join(sorted(below[name]))}")
            sub: str | None = None
            if name in below:
                sub = self._rebuild(current[1] if current and is_folder else None, below[name],
                                    f"{at}{name}/", files)
            elif current is not None and is_folder:
                sub = current[1]  # deleting a "file" that is a folder: nothing to do
            if content is not None and sub is not None:
                raise ValueError(f"{quoted(name)} is a folder, cannot be written as a file")
            entry = ((TREE_MODE, sub) if sub is not None
                     else (FILE_MODE, self.write_object("blob", content)) if content is not None
                     else None)
            was = current if current is not None and current[0] not in _NOT_FILES else None
            now = entry if entry is not None and entry[0] not in _NOT_FILES else None
            if was != now:
                files.append((at + name, was, now))
            if entry is None:
                entries.pop(name, None)
            else:
                # a new name, or a file that became a folder, sorts elsewhere
                in_order = in_order and current is not None and current[0] == entry[0]
                entries[name] = entry
        if not entries:
            return None
        data, ordered = format_tree(entries, in_order)
        sha = self.write_object("tree", data)
        if tree is not None:
            self._trees.discard(tree)  # superseded: room for folders still in use
        self._trees.put(sha, ordered)
        return sha

    def changed(self, old: str | None, new: str | None, prefix: str) -> list[str]:
        """Files below folder `prefix` that differ between commits `old` and `new`.

        From the changes recorded when `new` descends from `old` through commits written
        here; otherwise descending only into folders whose tree ids differ, one cat-file
        round per level. Either way the cost follows the change, not the size of the
        repository."""
        folder = prefix.strip("/")
        recorded = self._recorded_changes(old, new)
        if recorded is not None:
            start = folder + "/" if folder else ""
            return sorted(path for path in recorded if path.startswith(start))
        parts = folder.split("/") if folder else []
        found: list[str] = []
        self._diff([(self._folder(old, parts), self._folder(new, parts), folder)], found)
        return sorted(found)

    def _recorded_changes(self, old: str | None, new: str | None) -> set[str] | None:
        """The files that differ between `old` and `new`, from the records of the commits
        written here between them; None when `new` does not descend from `old` that way."""
        chain: list[_Written] = []
        commit = new
        while commit != old:
            if commit is None or len(chain) >= _WRITTEN_CHAIN:
                return None
            written = self._written.get(commit)
            if written is None:
                return None
            chain.append(written)
            commit = written.parent
        first: dict[str, Entry | None] = {}
        last: dict[str, Entry | None] = {}
        for written in reversed(chain):
            for path, before, after in written.files:
                first.setdefault(path, before)
                last[path] = after
        return {path for path, after in last.items() if first[path] != after}

    def _folder(self, commit: str | None, parts: Sequence[str]) -> str | None:
        tree: str | None = self.root_of(commit) if commit is not None else None
        for part in parts:
            if tree is None:
                return None
            entry = self.read_tree(tree).get(part)
            tree = entry[1] if entry is not None and entry[0] == TREE_MODE else None
        return tree

    def _diff(self, level: list[tuple[str | None, str | None, str]], found: list[str]) -> None:
        """Breadth first: the folders of each level that differ are read in one round."""
        while level:
            self._read_trees({sha for old, new, _ in level if old != new
                              for sha in (old, new) if sha is not None})
            deeper: list[tuple[str | None, str | None, str]] = []
            for old, new, base in level:
                if old == new:
                    continue
                before = self.read_tree(old) if old is not None else {}
                after = self.read_tree(new) if new is not None else {}
                for name in before.keys() | after.keys():
                    a, b = before.get(name), after.get(name)
                    if a == b:
                        continue
                    path = f"{base}/{name}" if base else name
                    a_tree = a[1] if a is not None and a[0] == TREE_MODE else None
                    b_tree = b[1] if b is not None and b[0] == TREE_MODE else None
                    if a_tree is not None or b_tree is not None:
                        deeper.append((a_tree, b_tree, path))
                    if any(e is not None and e[0] not in _NOT_FILES for e in (a, b)):
                        found.append(path)
            level = deeper

    def _read_trees(self, shas: set[str]) -> None:
        """Bring the trees `shas` into the cache, those missing in one cat-file round."""
        for sha, entries in self.read_trees(shas, cached=False).items():
            self._trees.put(sha, entries)

    def read_trees(self, shas: Iterable[str], cached: bool = True) -> dict[str, Entries]:
        """The entries of many folders, those not in the cache read in batched cat-file
        rounds and not kept (bulk walks would only churn the cache); with `cached=False`, only
        those not in the cache."""
        found: dict[str, Entries] = {}
        unstaged: list[str] = []
        for sha in set(shas):
            entries = {} if sha == EMPTY_TREE else self._trees.get(sha)
            if entries is not None:
                if cached:
                    found[sha] = entries
            elif sha in self._pending:
                found[sha] = self._tree_of(sha, self._pending[sha])
            else:
                unstaged.append(sha)
        for sha, obj in zip(unstaged, self._reader.read_many(unstaged), strict=True):
            found[sha] = self._tree_of(sha, obj)
        return found

    @staticmethod
    def _tree_of(sha: str, obj: tuple[str, bytes] | None) -> Entries:
        if obj is None or obj[0] != "tree":
            raise StoreUnavailable(f"tree {sha} is missing")
        return parse_tree(obj[1])

    def maintain(self) -> None:
        """Roll the small packs each publish leaves (and loose objects fetches leave) into
        bigger ones. Geometric: the cost follows what is new, not the repository's size.
        Nothing is dropped (unreachable objects stay packed), so it is safe while the
        writer keeps staging and publishing."""
        self.git("repack", "-d", "-q", "--geometric=2", check=False)
        self._reader.close()  # reopened on the next read: lets go of the packs just removed

    def hold(self, resource: IO[str]) -> None:
        """Keep `resource` open (a lock) until the store is closed."""
        self._held.append(resource)

    def close(self) -> None:
        self._reader.close()
        if self.signer is not None:
            self.signer.close()
        for resource in self._held:
            resource.close()
        self._held.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def remove_stale_files(path: Path) -> None:
    """Drop what a killed git (or we) left behind: ref and config locks, temp objects.

    Assumes this process owns the repository: nothing else writes to it."""
    if not path.is_dir():
        return
    stale = list(path.glob("*.lock"))
    if (path / "refs").is_dir():
        stale += (path / "refs").rglob("*.lock")
    objects = path / "objects"
    if objects.is_dir():
        for folder in (objects, objects / "pack"):
            if folder.is_dir():
                stale += (p for p in folder.iterdir() if _CRUFT.fullmatch(p.name) and p.is_file())
    for file in stale:
        file.unlink(missing_ok=True)


class GitTree:
    """A lazy view of one commit's tree; folder objects come from the store's cache."""

    def __init__(self, repo: Repository, root: str | None) -> None:
        self._repo = repo
        self.root = root
        # folder -> its entries (None: not a folder). A plan asks ~35 paths of one tree, most
        # in the same few folders: walking each from the root through the store's shared,
        # locked cache was 200 lookups per write (4% of the writer lane, measured).
        self._folders: dict[str, Entries | None] = {}

    def _entries(self, parts: Sequence[str]) -> Entries | None:
        if self.root is None:
            return None
        key = "/".join(parts)
        if key in self._folders:
            return self._folders[key]
        if not parts:
            entries: Entries | None = self._repo.read_tree(self.root)
        else:
            parent = self._entries(parts[:-1])
            entry = parent.get(parts[-1]) if parent is not None else None
            entries = (self._repo.read_tree(entry[1])
                       if entry is not None and entry[0] == TREE_MODE else None)
        if len(self._folders) >= _REMEMBERED_FOLDERS:
            self._folders.clear()
        self._folders[key] = entries
        return entries

    def read(self, path: str) -> bytes | None:
        sha = self.blob_id(path)
        return None if sha is None else self._repo.read_blob(sha)

    def blob_id(self, path: str) -> str | None:
        *folders, name = path.strip("/").split("/")
        entries = self._entries(folders)
        entry = entries.get(name) if entries is not None else None
        if entry is None or entry[0] in (TREE_MODE, GITLINK_MODE):
            return None
        return entry[1]

    def is_folder(self, path: str) -> bool:
        path = path.strip("/")
        return bool(path) and self._entries(path.split("/")) is not None

    def listdir(self, path: str) -> dict[str, bool]:
        path = path.strip("/")
        entries = self._entries(path.split("/") if path else [])
        if entries is None:
            return {}
        return {n: m == TREE_MODE for n, (m, _) in entries.items() if m != GITLINK_MODE}

    def files(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        prefix = prefix.strip("/")
        entries = self._entries(prefix.split("/") if prefix else [])
        if entries is None:
            return
        found: list[tuple[str, str]] = []
        self._walk(entries, prefix + "/" if prefix else "", found)
        # Git order of entries is exactly path order, so the walk needs no sorting.
        for i in range(0, len(found), CATFILE_BATCH):
            chunk = found[i:i + CATFILE_BATCH]
            blobs = self._repo.read_blobs([sha for _, sha in chunk])
            yield from zip((p for p, _ in chunk), blobs, strict=True)

    def _walk(self, entries: Entries, start: str, found: list[tuple[str, str]]) -> None:
        # The folders of each level are read in batched rounds first (one cat-file round trip
        # per folder was half of a cold start on 100,000 requests), then walked in git order.
        folders: dict[str, Entries] = {}
        level = [sha for mode, sha in entries.values() if mode == TREE_MODE]
        while level:
            read = self._repo.read_trees(level)
            folders.update(read)
            level = [sha for tree in read.values() for mode, sha in tree.values()
                     if mode == TREE_MODE and sha not in folders]
        self._walk_read(entries, start, folders, found)

    def _walk_read(self, entries: Entries, start: str, folders: Mapping[str, Entries],
                   found: list[tuple[str, str]]) -> None:
        for name, (mode, sha) in entries.items():
            if mode == TREE_MODE:
                self._walk_read(folders[sha], f"{start}{name}/", folders, found)
            elif mode != GITLINK_MODE:
                found.append((start + name, sha))
