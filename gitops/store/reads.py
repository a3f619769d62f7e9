"""What readers need of a state store's repository: its log, one commit's changes and
patch, blobs, and where a branch or a commit id points. Both stores are read this way (they
keep a bare repository), and so is any repository on disk (`open_repository`: what
`statewriter history --repo` reads); the read models in `gitops.reads` see only these
methods, so a store kept elsewhere needs only its own implementation of them.

Every answer is bounded in time (git is stopped after TIMEOUT seconds); a repository that is
not one is NotFound, any other failure StoreUnavailable.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from gitops.errors import NotFound, StoreUnavailable
from gitops.git.process import CatFile, environment, run_git
from gitops.history import git_records
from gitops.quoting import quoted
from gitops.store.base import FileChange, FileDiff, LogEntry

TIMEOUT = 300.0
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
NO_BLOB = re.compile(r"0+")


class GitReads:
    """Reads of the repository at `git_dir` (a bare repository, or a checkout's `.git`)."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = Path(git_dir)
        # git here and never in a repository above it, with no variable of the caller's
        # pointing it elsewhere
        self._read_env = environment(repository=self.git_dir)

    # -- where things point -------------------------------------------------------------

    def resolve_branch(self, branch: str) -> str | None:
        """The commit `branch` points at; None when the repository has no commit at all
        (NotFound when it has commits, but not this branch)."""
        candidates = [f"refs/heads/{branch}"] + ([branch] if not branch.startswith("-") else [])
        for candidate in candidates:
            code, out = self._git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
            if code == 0:
                return out.strip()
        if not self._output("rev-list", "--max-count=1", "--all").strip():
            return None
        raise NotFound(f"no branch {quoted(branch)} in {self.git_dir}")

    def resolve_commit(self, given: str) -> str | None:
        """The full id of the commit `given` (an id or a prefix of one) names, or None."""
        code, out = self._git("rev-parse", "--verify", "--quiet", f"{given}^{{commit}}")
        sha = out.strip()
        return sha if code == 0 and _SHA.fullmatch(sha) else None

    def is_ancestor(self, commit: str, of: str) -> bool:
        """Whether `commit` is `of` or one of its ancestors."""
        code, _ = self._git("merge-base", "--is-ancestor", commit, of)
        return code == 0

    # -- the log ----------------------------------------------------------------------------

    def log(
        self,
        revisions: Sequence[str],
        *,
        grep: Sequence[str] = (),
        files: bool = False,
        trailers_only: bool = False,
        walk: bool = True,
        topo_order: bool = False,
        grep_any: bool = False,
    ) -> Iterator[LogEntry]:
        """The commits of `revisions` (a walk from each, or with `walk=False` exactly those,
        in the order given), newest first; `grep`: only commits whose message holds every
        one of these texts (with `grep_any`, any one of them; git's fixed-string match: a
        first filter, callers check exactly). Read as git writes it: a long log is never
        held whole."""
        body = "%(trailers:only,unfold)" if trailers_only else "%B"
        # Fields end with NUL, the one byte no commit message holds (any other could be in
        # a message a person wrote): every token is then one field, a file's status or path.
        args = ["log", "-z", "--no-color", "--no-renames",
                f"--format=%x00%H%x00%ct%x00%P%x00%an <%ae>%x00%aI%x00%s%x00{body}%x00"]
        if files:
            args += ["--name-status", "--diff-merges=first-parent", "--root"]
        if grep:
            args += ["--fixed-strings", *(() if grep_any else ("--all-match",)),
                     *(f"--grep={text}" for text in grep)]
        if not walk:
            args.append("--no-walk=unsorted")
        if topo_order:
            args.append("--topo-order")
        yield from _entries(git_records(self.git_dir, *args, *revisions, "--"), files)

    def first_parents(self, tip: str, since: str | None = None) -> list[tuple[str, int]]:
        """The commits from `tip` down its first parents to `since` (excluded; None: the
        root), newest first, each with its commit time."""
        args = ["rev-list", "--first-parent", "--timestamp", tip]
        if since is not None:
            args.append(f"^{since}")
        found = []
        for line in self._output(*args).splitlines():
            time, _, sha = line.partition(" ")
            found.append((sha, int(time)))
        return found

    def last_changes(self, tip: str, paths: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The newest commit on `tip`'s first parents that changed each of `paths` (absent:
        none did), with its time. Reads the log only as far back as the oldest of them."""
        wanted = set(paths)
        if not wanted:
            return {}
        args = ["log", "-z", "--first-parent", "--no-renames", "--name-only",
                "--format=%x00%H %ct", tip, "--", *(f":(literal){path}" for path in sorted(wanted))]
        with contextlib.closing(git_records(self.git_dir, *args)) as records:
            return self._first_of(records, wanted)

    @staticmethod
    def _first_of(records: Iterator[str], wanted: set[str]) -> dict[str, tuple[str, int]]:
        """The first commit each wanted path follows in `git log --name-only -z` tokens."""
        found: dict[str, tuple[str, int]] = {}
        commit: tuple[str, int] | None = None
        for token in records:
            token = token.strip("\n")
            if not token:
                continue
            head, _, time = token.partition(" ")
            if _SHA.fullmatch(head) and time.isdigit():
                commit = (head, int(time))
            elif commit is not None and token in wanted:
                wanted.discard(token)
                found[token] = commit
                if not wanted:
                    break
        return found

    # -- one commit -----------------------------------------------------------------------------

    def file_changes(self, commit: str) -> list[FileDiff]:
        """Every file `commit` changed against its first parent, in git's order."""
        _, raw = self._git("diff-tree", "-r", "--root", "--no-commit-id", "--no-renames", "-z",
                           commit)
        tokens = raw.split("\0")
        blobs: dict[str, tuple[str | None, str | None]] = {}
        for meta, path in zip(tokens[0::2], tokens[1::2], strict=False):
            fields = meta.split()
            if len(fields) >= 4 and path:
                blobs[path] = (None if NO_BLOB.fullmatch(fields[2]) else fields[2],
                               None if NO_BLOB.fullmatch(fields[3]) else fields[3])
        _, numstat = self._git("diff-tree", "-r", "--root", "--no-commit-id", "--no-renames",
                               "--numstat", "-z", commit)
        found = []
        for entry in numstat.split("\0"):
            added, tab, rest = entry.partition("\t")
            removed, tab2, path = rest.partition("\t")
            if tab and tab2:
                old, new = blobs.get(path, (None, None))
                found.append(FileDiff(path, old, new,
                                      int(added) if added.isdigit() else None,
                                      int(removed) if removed.isdigit() else None))
        return found

    def patch(self, commit: str, paths: Sequence[str]) -> str:
        """The patch of `commit` against its first parent, for `paths` only."""
        if not paths:
            return ""
        _, out = self._git("diff-tree", "-p", "-r", "--root", "--no-commit-id", "--no-renames",
                           "--no-color", commit, "--", *(f":(literal){path}" for path in paths))
        return out

    def blobs(self, oids: Sequence[str]) -> list[bytes | None]:
        """The content of each blob (None: no such object)."""
        reader = CatFile(self.git_dir, self._read_env)
        try:
            return [found[1] if found is not None else None for found in reader.read_many(oids)]
        finally:
            reader.close()

    # -- git ----------------------------------------------------------------------------------

    def _git(self, *args: str) -> tuple[int, str]:
        try:
            proc = run_git(["-C", str(self.git_dir), "-c", "log.showSignature=false",
                            "-c", "core.quotePath=false", *args], self._read_env, timeout=TIMEOUT)
        except OSError as error:
            raise StoreUnavailable(f"git {args[0]} in {self.git_dir} failed: {error}") from None
        err = proc.stderr.decode("utf-8", errors="replace")
        if proc.returncode != 0 and "not a git repository" in err:
            raise NotFound(f"{self.git_dir} is not a git repository")
        return proc.returncode, proc.stdout.decode("utf-8", errors="replace")

    def _output(self, *args: str) -> str:
        code, out = self._git(*args)
        if code != 0:
            raise StoreUnavailable(f"git {args[0]} in {self.git_dir} failed (exit {code})")
        return out


_STATUS = re.compile(r"\n?[ACDMTUXB][0-9]*")
_FIELDS = 6  # after the id: time, parents, author, author date, subject, body


def _entries(tokens: Iterator[str], files: bool) -> Iterator[LogEntry]:
    """Commits from the NUL-separated tokens of `log`'s format: each record is empty tokens,
    the id and its fields, then (with files) pairs of a status and a path, then empty tokens
    again; a status is never empty, so an empty token where one would be ends the files."""
    token = next(tokens, None)
    while token is not None:
        if token == "":
            token = next(tokens, None)
            continue
        sha = token.lstrip("\n")
        fields = [next(tokens, "") for _ in range(_FIELDS)]
        time, parents, author, authored, subject, body = fields
        if not _SHA.fullmatch(sha) or not time.isdigit():
            raise StoreUnavailable(f"git log gave an unexpected record {quoted(sha[:100])}")
        changes: list[FileChange] = []
        token = next(tokens, None)
        while token == "":  # between the fields and the files
            token = next(tokens, None)
        while token is not None and _STATUS.fullmatch(token):
            changes.append(FileChange(token.lstrip("\n")[:1], next(tokens, "")))
            token = next(tokens, None)
        yield LogEntry(sha, int(time), tuple(parents.split()), author, authored, subject, body,
                       tuple(changes) if files else None)


def open_repository(path: Path) -> GitReads:
    """Reads of the repository at `path`: a bare repository, or a checkout (its `.git`)."""
    path = Path(path)
    if not path.is_dir():
        raise NotFound(f"no repository at {path}")
    git_dir = path / ".git" if (path / ".git").exists() else path
    return GitReads(git_dir)
