"""The embedded store: a bare repository under the data folder is the published state."""

from __future__ import annotations

import os
from pathlib import Path

from gitops.errors import StoreUnavailable
from gitops.store.base import DEFAULT_BRANCH
from gitops.store.objects import ZERO_SHA, Repository, check_sha
from gitops.store.reads import GitReads


class EmbeddedStore(Repository, GitReads):
    def __init__(self, path: Path, branch: str = DEFAULT_BRANCH, names_head: bool = True) -> None:
        Repository.__init__(self, path, branch, names_head=names_head)
        GitReads.__init__(self, path)
        self._ref = f"refs/heads/{branch}"

    def for_branch(self, branch: str) -> EmbeddedStore:
        """The same repository, written on another branch (HEAD still names this one's: a
        clone of the store checks out the branch Flux follows, not the delivery book)."""
        return EmbeddedStore(self.path, branch, names_head=False)

    def tip(self) -> str | None:
        return self.read_ref(self._ref)

    def refresh(self) -> str | None:
        return self.read_ref(self._ref)

    def publish(self, expected: str | None, new: str) -> bool:
        """Compare-and-swap of the branch under git's own ref lock (`<ref>.lock`), so a
        person pushing to this repository meanwhile is serialised the way git does it."""
        check_sha(new)
        try:
            self.root_of(new)
        except ValueError:
            raise StoreUnavailable(f"cannot publish {new}: no such commit") from None
        return self.publish_staged(lambda: self._swap(expected, new))

    def _swap(self, expected: str | None, new: str) -> bool:
        if (self.path / "reftable").exists():
            return self._publish_with_git(expected, new)
        ref = self.path / self._ref
        lock = ref.with_name(ref.name + ".lock")
        ref.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False  # someone else is updating the branch: the writer re-reads and retries
        try:
            try:
                current = self.read_ref(self._ref)
                if current == expected:
                    os.write(fd, f"{new}\n".encode())
                    os.fsync(fd)
            finally:
                os.close(fd)
            if current != expected:
                lock.unlink()
                return False
            os.replace(lock, ref)
        except BaseException:
            lock.unlink(missing_ok=True)
            raise
        return True

    def _publish_with_git(self, expected: str | None, new: str) -> bool:
        old = check_sha(expected) if expected is not None else ZERO_SHA
        try:
            self.git("update-ref", "-m", "statewriter: publish", self._ref, new, old)
        except StoreUnavailable:
            if self.read_ref(self._ref) != expected:
                return False
            raise
        return True
