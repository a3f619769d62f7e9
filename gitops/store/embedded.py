"""The embedded store: a bare repository under the data folder is the published state."""

from __future__ import annotations

from pathlib import Path

from gitops.errors import StoreUnavailable
from gitops.store.objects import ZERO_SHA, Repository, check_sha


class EmbeddedStore(Repository):
    def __init__(self, path: Path, branch: str = "main") -> None:
        super().__init__(path, branch)
        self._ref = f"refs/heads/{branch}"

    def tip(self) -> str | None:
        return self.read_ref(self._ref)

    def refresh(self) -> str | None:
        return self.read_ref(self._ref)

    def publish(self, expected: str | None, new: str) -> bool:
        """Compare-and-swap of the branch through `git update-ref` (which locks the ref)."""
        check_sha(new)
        self.flush()
        old = check_sha(expected) if expected is not None else ZERO_SHA
        try:
            self.git("update-ref", "-m", "statewriter: publish", self._ref, new, old)
        except StoreUnavailable:
            if self.read_ref(self._ref) != expected:
                return False
            raise
        return True
