"""Statewriter's own repository format, generated in bulk for benchmarks.

Each request is planned by the real planner against an index that holds only the
destination (so planning stays O(1) per request), then the per-request files are merged
and every kustomization is recomputed from the final file set. The result is the tree the
service would have produced by applying the same bundles one by one (owner records get
increasing serials, as in the service). `StateModel.add` returns what one more request
changes, so the naive writer and the fast-import stream write the very same files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from gitops import layout, planner
from gitops.bundle import parse_bundle
from gitops.index import Index, decode_owner, encode_owner
from gitops.isolation import FLUX_FOLDER
from gitops.tree import DictTree
from tests.fixtures.eck import request_bundle

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "var" / "bench-seeds"
Payload = Callable[[str, str], dict[str, object]]  # (namespace, name) -> POST /v1/bundles body

DESTINATION = "worker-1"
LABELS = {"environment": "bench"}
ACTOR = "bench"
PROMISE = "elastic-cloud"


def request_names(count: int, start: int = 0, namespaces: int = 100, tag: str = "r") -> list[tuple[str, str]]:
    """`count` distinct (namespace, name) pairs spread over `namespaces` namespaces."""
    return [(f"team-{i % namespaces:03d}", f"{tag}{i:06d}") for i in range(start, start + count)]


def bundle_json(namespace: str, name: str) -> dict[str, object]:
    """The POST /v1/bundles body for one ECK request."""
    return request_bundle(name, namespace, destinationSelectors=dict(LABELS))


class StateModel:
    """The files of the state branch, kept in memory with each folder's entries."""

    def __init__(self, payload: Payload | None = None, isolation: str = "destination") -> None:
        """`payload`: the bundle of each request (default: an ECK request, `bundle_json`);
        `isolation`: the destination's (`namespace`: a Flux Kustomization per namespace)."""
        self._payload = payload or bundle_json
        self.files: dict[str, bytes] = {}
        self.children: dict[str, set[str]] = {}
        self.serial = 0
        self._base = Index()
        plan = planner.plan_put_destination(self._base, DictTree(), DESTINATION, LABELS, None, ACTOR,
                                            isolation=isolation)
        self._isolated = isolation == "namespace"
        plan.index.merge_down()
        self._base_files = {p: c for p, c in plan.changes.items() if c is not None}
        self._base_tree = DictTree(self._base_files)
        self._put(self._base_files)

    def copy(self) -> StateModel:
        twin = StateModel.__new__(StateModel)
        twin.__dict__.update(self.__dict__)
        twin.files = dict(self.files)
        twin.children = {folder: set(entries) for folder, entries in self.children.items()}
        return twin

    def _put(self, changes: dict[str, bytes]) -> set[str]:
        """Store files; returns the folders that gained an entry."""
        grown: set[str] = set()
        for path, content in changes.items():
            self.files[path] = content
            folder, _, name = path.rpartition("/")
            while True:
                entries = self.children.setdefault(folder, set())
                if name in entries:
                    break
                entries.add(name)
                grown.add(folder)
                if not folder:
                    break
                folder, _, name = folder.rpartition("/")
        return grown

    def _request_files(self, namespace: str, name: str) -> dict[str, bytes]:
        bundle = parse_bundle(self._payload(namespace, name))
        plan = planner.plan_apply(self._base, self._base_tree, bundle, ACTOR)
        assert plan.changed, plan.result
        self.serial += 1
        files: dict[str, bytes] = {}
        record_path = layout.owner_record_path(bundle.owner)
        for path, content in plan.changes.items():
            assert content is not None
            if path == record_path:
                content = encode_owner(decode_owner(content).with_(serial=self.serial))
            elif path.endswith("/" + layout.KUSTOMIZATION) or path in self.files:
                continue  # recomputed from the final listing; shared files already there
            files[path] = content
        return files

    def _kustomizations(self, folders: Iterable[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for folder in folders:
            if not folder.startswith(DESTINATION + "/") or folder.count("/") < 1:
                continue
            entries = [e for e in self.children.get(folder, ()) if e != layout.KUSTOMIZATION]
            if self._isolated and folder == f"{DESTINATION}/{layout.RESOURCES}":
                entries = [FLUX_FOLDER]  # the namespaces' Kustomizations only (ECK's
                # requests share nothing in their own namespaces: no ../_shared listings)
            out[f"{folder}/{layout.KUSTOMIZATION}"] = layout.kustomization(entries)
        return out

    def populate(self, names: Iterable[tuple[str, str]]) -> None:
        """Add many requests at once (kustomizations computed once at the end)."""
        grown: set[str] = set()
        for namespace, name in names:
            grown |= self._put(self._request_files(namespace, name))
        self._put(self._kustomizations(grown))

    def add(self, namespace: str, name: str) -> dict[str, bytes]:
        """Add one request; returns the files it adds or changes (one commit's worth)."""
        files = self._request_files(namespace, name)
        grown = self._put(files)
        folders = {f for path in files for f in _section_folders(path)}
        kustomizations = {p: c for p, c in self._kustomizations(folders | grown).items()
                          if self.files.get(p) != c}
        self._put(kustomizations)
        return {**files, **kustomizations}


def _section_folders(path: str) -> Iterator[str]:
    parts = path.split("/")
    if parts[0] != DESTINATION or len(parts) < 3:
        return
    for end in range(2, len(parts)):
        yield "/".join(parts[:end])


# -- git fast-import ---------------------------------------------------------------------------


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def fast_import_stream(
    commits: Iterable[tuple[str, dict[str, bytes]]], branch: str = "main", parent: str | None = None
) -> Iterator[bytes]:
    """A fast-import stream: one commit per (message, files) on `branch`."""
    when = int(time.time())
    first = True
    for message, files in commits:
        out = [f"commit refs/heads/{branch}\n".encode(),
               f"committer statewriter <statewriter@example.invalid> {when} +0000\n".encode(),
               _data(message.encode())]
        if first and parent:
            out.append(f"from {parent}\n".encode())
        first = False
        for path in sorted(files):
            out.append(f"M 100644 inline {path}\n".encode())
            out.append(_data(files[path]))
        yield b"".join(out) + b"\n"


def fast_import(git_dir: Path, stream: Iterable[bytes]) -> float:
    """Feed `stream` to one `git fast-import`; returns the seconds it took."""
    started = time.perf_counter()
    proc = subprocess.Popen(["git", f"--git-dir={git_dir}", "fast-import", "--quiet"],
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for chunk in stream:
        proc.stdin.write(chunk)
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"git fast-import into {git_dir} failed")
    return time.perf_counter() - started


def write_state_repo(git_dir: Path, model: StateModel, branch: str = "main") -> None:
    """A bare repository whose `branch` is one commit holding all of `model`'s files."""
    subprocess.run(["git", "init", "--bare", "-q", "-b", branch, str(git_dir)], check=True)
    message = f"bench: populate {model.serial} requests\n"
    fast_import(git_dir, fast_import_stream([(message, model.files)], branch))


# -- seed repositories, built once per version of the code that writes them ------------------


def source_key(payload: Payload | None, *parts: object) -> str:
    """A digest of what decides a seed's content: what this code writes for a few requests of
    `payload` (so any change in what the planner or the fixtures write makes a new seed, and a
    change that writes the same does not), and `parts` (the sizes asked for)."""
    digest = hashlib.sha256(repr(parts).encode())
    probe = StateModel(payload)
    probe.populate(request_names(12, 900_000, namespaces=5, tag="probe"))
    for path in sorted(probe.files):
        digest.update(path.encode() + b"\0" + probe.files[path] + b"\0")
    return digest.hexdigest()[:16]


def seed_repo(name: str, build: Callable[[], StateModel], *parts: object,
              payload: Payload | None = None) -> Path:
    """A bare repository holding `build()`'s state, built only when the code or `parts`
    changed since the last time (building 100,000 requests takes minutes): the same input
    for every measurement of a run, and for the next run of the same code."""
    # one seed per name and size, kept until the code changes (a run uses several sizes)
    sized = "-".join([name, *map(str, parts)])
    target = SEEDS / f"{sized}-{source_key(payload, name, *parts)}.git"
    if (target / "statewriter-seed-complete").exists():
        return target
    for old in SEEDS.glob(f"{sized}-*.git"):
        shutil.rmtree(old, ignore_errors=True)
    started = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] building seed {name} {parts}", file=sys.stderr, flush=True)
    model = build()
    building = target.with_name(target.name + ".tmp")
    shutil.rmtree(building, ignore_errors=True)
    SEEDS.mkdir(parents=True, exist_ok=True)
    write_state_repo(building, model)
    (building / "statewriter-seed-complete").write_text(
        f"{model.serial} requests, {len(model.files)} files\n")
    building.rename(target)
    print(f"[{time.strftime('%H:%M:%S')}] seed {name}: {model.serial:,} requests, "
          f"{len(model.files):,} files in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return target


def seed_size(seed: Path) -> tuple[int, int]:
    """(requests, files) of a seed repository."""
    requests, _, rest = (seed / "statewriter-seed-complete").read_text().partition(" requests, ")
    return int(requests), int(rest.split()[0])
