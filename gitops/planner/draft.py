"""A plan in the making: a child layer of the index plus an overlay of file changes on the
tip's tree, and `finish`, which turns it into a `Plan`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gitops import isolation, layout
from gitops.commitmsg import commit_message
from gitops.destination import Destination
from gitops.identity import Identity
from gitops.index import Index, KeptContent, OwnerRecord, encode_generations
from gitops.normalize import DEFAULT_PROTECTED
from gitops.owner import Owner
from gitops.planner.results import FileChanges, Notes, NotPlaced, Result
from gitops.secrets import Sealer
from gitops.tree import Overlay, Tree, blob_id

Changes = dict[str, bytes | None]  # path -> new content, None to delete
Trailers = list[tuple[str, str]]


@dataclass(frozen=True)
class Policy:
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED
    # The service's age identity (config `secrets`): Secrets are encrypted with it, for the
    # destinations that list recipients and for bundles kept under .statewriter/bundles.
    # The one impure input: encryption draws random keys (planning stays deterministic
    # because keyed digests decide when a committed ciphertext is kept).
    secrets: Sealer | None = None


@dataclass
class Plan:
    """What an operation turns into. `changes` empty means: nothing to commit."""

    changes: Changes
    index: Index
    message: str
    result: Result
    files: FileChanges = field(default_factory=FileChanges)
    notes: Notes = field(default_factory=Notes)
    # Run by the writer right after this plan's commit, in the same publish: placing
    # bundles that a conflict kept out of a destination this plan freed objects in.
    follow_up: Callable[[Index, Tree], Plan] | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def unchanged(index: Index, result: Result) -> Plan:
    return Plan({}, index.child(), "", result)


@dataclass
class DraftNotes:
    replaced: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    placed: list[OwnerRecord] = field(default_factory=list)
    not_placed: list[NotPlaced] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def mark(self) -> tuple[int, int, int]:
        return len(self.replaced), len(self.kept), len(self.warnings)

    def rewind(self, mark: tuple[int, int, int]) -> None:
        """Forget the notes taken since `mark` (a placement that was refused after all)."""
        del self.replaced[mark[0]:], self.kept[mark[1]:], self.warnings[mark[2]:]

    def warn(self, warning: str) -> None:
        """What the answer should tell the client besides the result (each once)."""
        if warning not in self.warnings:
            self.warnings.append(warning)


class Draft:
    def __init__(self, index: Index, tree: Tree, policy: Policy) -> None:
        self.base = tree
        self.index = index.child()
        self.changes: Changes = {}
        self.tree = Overlay(tree, self.changes)
        self.policy = policy
        self.sections: dict[str, str] = {}  # touched object path -> its section folder
        self.destinations: set[str] = set()  # destinations whose objects changed
        self.retired: set[str] = set()  # section folders of a destination that is going away
        self.kept_changed: set[str] = set()  # destinations whose kept generations changed
        # destinations isolated by namespace whose every child Kustomization is rewritten
        # (new, or what they hold changed), and those that stopped being isolated
        self.isolation_changed: set[str] = set()
        self.notes = DraftNotes()

    def write(self, path: str, content: bytes, section: str | None = None) -> None:
        self.changes[path] = content
        if section:
            self.sections[path] = section

    def delete(self, path: str, section: str | None = None) -> None:
        self.changes[path] = None
        if section:
            self.sections[path] = section

    def destination(self, name: str) -> Destination:
        destination = self.index.destinations.get(name)
        assert destination is not None, name
        return destination

    # -- finishing ----------------------------------------------------------------------

    def finish(self, summary: str, trailers: Trailers, result: Result, list_files: bool = True,
               notes: Sequence[str] = ()) -> Plan:
        """The plan: generations records and kustomizations brought up to date, no-op
        changes dropped, the commit message written (with every file, or with `notes` and
        the number of files when there are too many to list)."""
        self._write_generations()
        self._write_kustomizations()
        self._write_children()
        if self.changes and self.base.blob_id(layout.LAYOUT_RECORD) is None:
            self.changes[layout.LAYOUT_RECORD] = layout.layout_record()
        files = self._drop_unchanged()
        taken = Notes(tuple(self.notes.replaced), tuple(self.notes.kept),
                      tuple(self.notes.not_placed), tuple(r.owner for r in self.notes.placed),
                      tuple(self.notes.warnings))
        lines = [*notes, *_message_notes(taken)]
        if list_files:
            listed = (list(files.added), list(files.changed), list(files.removed))
        else:
            listed = ([], [], [])
            lines.append(f"Files: {len(files.added)} added, {len(files.changed)} changed, "
                         f"{len(files.removed)} removed.")
        message = commit_message(summary, *listed, lines, trailers) if self.changes else ""
        return Plan(self.changes, self.index, message, result, files, taken)

    def _write_generations(self) -> None:
        for destination in sorted(self.kept_changed):
            kept: dict[Identity, KeptContent] = {
                key.identity: content for key, content in self.index.kept.items()
                if key.destination == destination}
            path = layout.generations_record_path(destination)
            if kept:
                self.write(path, encode_generations(dict(sorted(kept.items()))))
            else:
                self.delete(path)

    def _write_kustomizations(self) -> None:
        """Rewrite the kustomizations of folders whose entries came or went."""
        touched: dict[str, set[str]] = {}  # folder -> its entries on changed paths
        for path, section in self.sections.items():
            for folder in layout.folders_between(section, path):
                touched.setdefault(folder, set()).add(path[len(folder) + 1:].partition("/")[0])
        sections = set(self.sections.values())
        for folder in sorted(touched, key=lambda f: (-f.count("/"), f)):
            target = f"{folder}/{layout.KUSTOMIZATION}"
            if folder in self.retired:
                self.changes[target] = None
                continue
            # Listing a folder is O(its entries): a write inside one of many request
            # folders must not list them all when none came or went.
            if not self._entries_changed(folder, touched[folder]) and not (
                folder in sections and self.tree.blob_id(target) is None
            ):
                continue
            entries = [e for e in self.tree.listdir(folder) if e != layout.KUSTOMIZATION]
            self.changes[target] = (
                layout.kustomization(entries) if entries or folder in sections else None
            )

    def _write_children(self) -> None:
        """The child Kustomizations of destinations isolated by namespace whose namespaces
        were written to (after the folders' kustomizations, which they may replace)."""
        isolated = {d.section(layout.RESOURCES): d for d in self.index.destinations.values()
                    if d.isolated and d.section(layout.RESOURCES) not in self.retired}
        touched: dict[str, set[str]] = {}
        for path, section in self.sections.items():
            destination = isolated.get(section)
            if destination is not None:
                found = isolation.touched_children(section, (path,))
                touched.setdefault(destination.name, set()).update(found)
        for name in sorted(self.isolation_changed):
            destination = self.index.destinations.get(name)
            if destination is None:
                continue
            resources = destination.section(layout.RESOURCES)
            if destination.isolated:
                touched.setdefault(name, set()).update(isolation.all_children(self.tree, resources))
            else:
                self.changes.update(isolation.undo(self.tree, destination))
        for name, children in sorted(touched.items()):
            self.changes.update(isolation.rewrite(self.tree, self.destination(name), children))

    def _entries_changed(self, folder: str, names: set[str]) -> bool:
        """Whether any of `names` appeared in or went from `folder`."""
        for name in names - {layout.KUSTOMIZATION}:
            path = f"{folder}/{name}"
            before = self.base.blob_id(path) is not None or self.base.is_folder(path)
            after = self.tree.blob_id(path) is not None or self.tree.is_folder(path)
            if before != after:
                return True
        return False

    def _drop_unchanged(self) -> FileChanges:
        added, changed, removed = [], [], []
        for path in sorted(self.changes):
            before = self.base.blob_id(path)
            after = self.changes[path]
            if before == (None if after is None else blob_id(after)):
                del self.changes[path]
                continue
            if after is not None:
                _check_segments(path)
            if before is None:
                added.append(path)
            elif after is None:
                removed.append(path)
            else:
                changed.append(path)
        return FileChanges(tuple(added), tuple(changed), tuple(removed))


def _check_segments(path: str) -> None:
    """The layout keeps every segment checkable-out (docs/reference.md invariant 7); a longer one is
    a bug here, and must fail this change alone rather than reach the branch."""
    for segment in path.split("/"):
        if len(segment.encode()) > layout.MAX_SEGMENT:
            raise RuntimeError(f"path segment over {layout.MAX_SEGMENT} bytes: {path}")


def _message_notes(notes: Notes) -> list[str]:
    lines: list[str] = []
    if notes.replaced:
        lines.append("Replaced shared dependencies:")
        lines.extend(f"  {line}" for line in notes.replaced)
    if notes.kept:
        lines.append("Kept at a newer promise generation:")
        lines.extend(f"  {line}" for line in notes.kept)
    if notes.not_placed:
        # never silent: a promise's dependencies missing from a destination break its requests
        lines.append("Not placed (refused):")
        lines.extend(f"  {who(item.owner)} in {item.destination}: {item.reason}"
                     for item in notes.not_placed)
    return lines


def who(owner: Owner, with_pipeline: bool = True) -> str:
    """An owner as commit summaries name it."""
    what = f"{owner.promise} {owner.request}" if owner.request else f"{owner.promise} (promise)"
    return f"{what} pipeline {owner.pipeline}" if with_pipeline else what
