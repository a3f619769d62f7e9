"""One commit as the web pages show it: its message and the service's trailers, the requests
it names, its files with lines added and removed, and the patch of the first of them, bounded
in size. A file whose content before or after the commit holds a Secret (whatever its name),
a pending bundle's documents and a file that cannot be read are never shown: only counted."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitops import layout
from gitops.commitmsg import parse_trailers, trailer_pairs
from gitops.errors import InvalidQuery, NotFound, YamlError
from gitops.quoting import quoted
from gitops.secrets import is_secret_document
from gitops.store.base import FileDiff, Reads
from gitops.yamldocs import ParseLimits, load_documents

MAX_STAT_FILES = 1000  # files listed
MAX_DIFF_FILES = 100  # files whose patch is shown
MAX_DIFF_LINES = 5000  # changed lines (numstat) of the files whose patch is shown
MAX_DIFF_BYTES = 512 * 1024

HIDDEN_NOTES = {
    "bundles": "pending bundle documents under .statewriter/bundles/",
    "secret": "Secret objects",
    "unreadable": "files that cannot be read as YAML (a Secret may be in them)",
}
_PAGE_LIMITS = ParseLimits(max_depth=256, max_nodes=1_000_000, max_documents=1000)
_COMMIT_ID = re.compile(r"[0-9a-f]{4,64}")


@dataclass(frozen=True)
class StatLine:
    path: str
    added: int | None  # None: binary
    removed: int | None
    hidden: str | None  # why its diff is not shown (a key of HIDDEN_NOTES)

    @property
    def bar(self) -> tuple[int, int]:
        """git's +/- bar, at most 40 wide."""
        added, removed = self.added or 0, self.removed or 0
        total = added + removed
        if total <= 40:
            return added, removed
        plus = round(added * 40 / total)
        return plus, 40 - plus


@dataclass(frozen=True)
class DiffLine:
    kind: str  # file, hunk, add, del, meta, context
    text: str


@dataclass(frozen=True)
class CommitView:
    sha: str
    parents: tuple[str, ...]
    author: str
    time: str  # the author date, ISO 8601
    summary: str
    body: str
    requests: tuple[tuple[str, str, str], ...]  # (promise, namespace, name) its trailers name
    trailers: tuple[tuple[str, str], ...]  # the service's own
    stat: tuple[StatLine, ...]  # at most MAX_STAT_FILES
    files: int
    added: int
    removed: int
    diff: tuple[DiffLine, ...]
    diff_files: int  # files whose diff is shown
    diff_cut: bool  # the diff was cut at MAX_DIFF_BYTES
    hidden: tuple[str, ...]  # notes on what is never shown


def commit_view(reads: Reads, tip: str, given: str) -> CommitView:
    """The commit `given` (an id or a prefix of one) of `tip`'s history; NotFound otherwise."""
    sha = reads.resolve_commit(given)
    if sha is None or len(sha) != 40:
        raise NotFound(f"There is no commit {given} in the state store.")
    if not reads.is_ancestor(sha, tip):
        raise NotFound(f"Commit {sha[:12]} is not on the branch.")
    (commit,) = reads.log([sha], walk=False)
    changes = reads.file_changes(sha)
    stat = _stat(reads, changes)
    shown = _shown(stat)
    patch = reads.patch(sha, shown)
    cut = len(patch) > MAX_DIFF_BYTES
    if cut:
        patch = patch[:MAX_DIFF_BYTES].rpartition("\n")[0]
    message = commit.message
    lines = message.strip().split("\n", 1)
    return CommitView(
        sha=sha, parents=commit.parents, author=commit.author, time=commit.authored,
        summary=lines[0], body=lines[1].strip("\n") if len(lines) > 1 else "",
        requests=named_requests(message),
        trailers=tuple((key, value) for key, values in parse_trailers(message).items()
                       for value in values),
        stat=tuple(stat[:MAX_STAT_FILES]), files=len(stat),
        added=sum(s.added or 0 for s in stat), removed=sum(s.removed or 0 for s in stat),
        diff=tuple(_diff_line(text) for text in patch.splitlines()) if shown else (),
        diff_files=len(shown), diff_cut=cut,
        hidden=tuple(sorted({HIDDEN_NOTES[s.hidden] for s in stat if s.hidden})))


def branch_commit(reads: Reads, tip: str | None, given: str, field: str = "commit") -> str:
    """The full id of the commit `given` names (its id, or a prefix of at least 4 hex digits
    that names one commit) when it is `tip` or one of its ancestors; InvalidQuery naming
    `field` otherwise: not an id, no such commit (or a prefix of several), or a commit that
    is not on the branch (another branch's, or one a rewrite of the branch left behind)."""
    text = given.strip().lower()
    if not _COMMIT_ID.fullmatch(text):
        raise InvalidQuery(f"{field} must be a commit id: 4 to 64 hex digits, not {quoted(given[:80])}",
                           field=field)
    sha = reads.resolve_commit(text) if tip is not None else None
    if tip is None or sha is None or not sha.startswith(text):
        raise InvalidQuery(f"{field}: there is no commit {text} in the state store (or it is the "
                           "prefix of several: give more digits)", field=field)
    if not reads.is_ancestor(sha, tip):
        raise InvalidQuery(f"{field}: commit {sha[:12]} is not on the branch's history",
                           field=field)
    return sha


def _stat(reads: Reads, changes: list[FileDiff]) -> list[StatLine]:
    wanted = [oid for change in changes if not _is_bundle(change.path)
              for oid in (change.before, change.after) if oid is not None]
    contents = dict(zip(wanted, reads.blobs(wanted), strict=True))
    found = []
    for change in changes:
        sides = [contents.get(oid) for oid in (change.before, change.after) if oid is not None]
        found.append(StatLine(change.path, change.added, change.removed,
                              _hidden(change.path, [side for side in sides if side is not None])))
    return found


def _is_bundle(path: str) -> bool:
    return path.startswith(layout.BUNDLES_DIR + "/")


def _hidden(path: str, contents: list[bytes]) -> str | None:
    """Whether a file's content stays off the page, from what it holds before and after the
    commit: pending bundles are kept as their documents, and a Secret's values are plaintext
    unless the destination encrypts them (`is_secret_document` decides, whatever the file's
    name; a file that cannot be read is not shown either)."""
    if _is_bundle(path):
        return "bundles"
    for content in contents:
        try:
            docs = load_documents(content.decode(), _PAGE_LIMITS)
        except (UnicodeDecodeError, YamlError):
            return "unreadable"
        if any(is_secret_document(doc) for doc in docs):
            return "secret"
    return None


def _shown(stat: list[StatLine]) -> list[str]:
    """The files whose patch is shown: the first ones, within the file and line budgets."""
    shown: list[str] = []
    budget = MAX_DIFF_LINES
    for line in stat:
        if line.hidden or line.added is None or line.removed is None:
            continue
        changed = line.added + line.removed
        if len(shown) >= MAX_DIFF_FILES or (shown and changed > budget):
            break
        shown.append(line.path)
        budget -= changed
    return shown


def _diff_line(text: str) -> DiffLine:
    if text.startswith("diff --git"):
        return DiffLine("file", text)
    if text.startswith("@@"):
        return DiffLine("hunk", text)
    if text.startswith(("+++", "---", "index ", "new file", "deleted file", "old mode",
                        "new mode", "similarity", "Binary files")):
        return DiffLine("meta", text)
    if text.startswith("+"):
        return DiffLine("add", text)
    if text.startswith("-"):
        return DiffLine("del", text)
    return DiffLine("context", text)


def named_requests(message: str) -> tuple[tuple[str, str, str], ...]:
    """(promise, namespace, name) of each trailer group that names a request."""
    found: list[tuple[str, str, str]] = []
    promise = None
    for key, value in trailer_pairs(message):
        if key == "Statewriter-Promise":
            promise = value
        elif key == "Statewriter-Request" and promise:
            namespace, slash, name = value.partition("/")
            if slash and (promise, namespace, name) not in found:
                found.append((promise, namespace, name))
    return tuple(found)
