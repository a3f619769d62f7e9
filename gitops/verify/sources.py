"""Where the tree comes from: a checkout on disk (walked, `.git` skipped, symlinks found),
or a bare repository or git URL cloned first. A clone whose paths a Linux checkout cannot
hold is read through git plumbing instead, so every check still runs. URLs are shown with
their credentials redacted."""

from __future__ import annotations

import base64
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from gitops.errors import StoreUnavailable
from gitops.git.process import CatFile, environment, run_git
from gitops.normalize import DEFAULT_PROTECTED
from gitops.redact import redact_url
from gitops.verify.findings import first_line
from gitops.verify.folders import long_segments
from gitops.verify.run import verify_files

_CLONE_TIMEOUT = 600
_SYMLINK_MODE = "120000"


class _Entry(NamedTuple):
    """One file of a commit's tree, as `git ls-tree -r` lists it."""

    mode: str
    oid: str
    path: str


def verify_path(
    root: Path,
    kustomize: bool = True,
    kubectl: str = "kubectl",
    *,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
    kubernetes_version: str | None = None,
) -> list[str]:
    """`verify_tree` on a checkout (its `.git` skipped), plus the symlinks found on disk."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: not a directory"]
    files: dict[str, bytes] = {}
    findings: list[str] = []
    for rel, entry in _walk(root, ""):
        if entry.is_symlink():
            findings.append(_symlink(rel))
        elif entry.is_file(follow_symlinks=False):
            try:
                files[rel] = Path(entry.path).read_bytes()
            except OSError as error:
                findings.append(f"{rel}: cannot be read: {error.strerror}")
    # With nothing on disk that the tree leaves out, sections built whole are built in place.
    disk = None if findings else root
    findings.extend(verify_files(files, kustomize, kubectl, protect_from_prune, disk,
                                 kubernetes_version))
    return findings


def verify_target(
    target: str,
    kustomize: bool = True,
    kubectl: str = "kubectl",
    *,
    branch: str | None = None,
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED,
    token: str | None = None,
    kubernetes_version: str | None = None,
) -> list[str]:
    """A checkout directory is verified in place; a bare repository or a git URL
    (file://, git://, http(s)://, ssh://, user@host:path) is cloned first (depth 1). `token`
    is sent to an http(s) URL as the basic-auth password (the service's `/git` takes its
    tokens so), through git's environment: never on a command line or in the URL."""
    local = Path(target)
    if "://" not in target and local.is_dir() and not _is_bare_repository(local):
        if branch is not None:
            return [f"{target}: --branch applies only to repositories that are cloned"]
        return verify_path(local, kustomize, kubectl, protect_from_prune=protect_from_prune,
                           kubernetes_version=kubernetes_version)
    if "://" not in target and not local.exists() and not _looks_like_scp_url(target):
        return [f"{target}: no such directory or repository"]
    url = local.resolve().as_uri() if "://" not in target and local.exists() else target
    shown = redact_url(target)
    http = url.lower().startswith(("http://", "https://"))
    env = environment(no_system_config=True,
                      config=_basic_auth_header(token) if token and http else None)
    with tempfile.TemporaryDirectory(prefix="statewriter-verify-") as temp:
        clone = Path(temp) / "checkout"
        command = ["clone", "--quiet", "--no-checkout", "--depth", "1", "--no-tags"]
        if branch is not None:
            command += ["--branch", branch, "--single-branch"]
        failure = _git([*command, "--end-of-options", url, str(clone)], env)
        if failure is not None:
            return [f"{shown}: git clone failed: {redact_url(first_line(failure))}"]
        entries = _entries(clone, env)
        if entries is None:
            return [f"{shown}: no commit to verify (an empty repository, or its HEAD names "
                    "a branch that does not exist: pass --branch)"]
        findings: list[str] = []
        if not long_segments(entry.path for entry in entries):  # else verify_files names them
            failure = _git(["-C", str(clone), "checkout", "--quiet", "--force", "HEAD"], env)
            if failure is None:
                return verify_path(clone, kustomize, kubectl, protect_from_prune=protect_from_prune,
                                   kubernetes_version=kubernetes_version)
            findings = _not_checked_out(shown, clone, entries, failure)
        return findings + _verify_objects(shown, clone, entries, env, kustomize, kubectl,
                                          protect_from_prune, kubernetes_version)


def _basic_auth_header(token: str) -> dict[str, str]:
    """git configuration that sends `token` as the password (given through the
    environment: never on a command line)."""
    credentials = base64.b64encode(f"statewriter:{token}".encode()).decode()
    return {"http.extraHeader": f"Authorization: Basic {credentials}"}


def _git(args: list[str], env: dict[str, str]) -> str | None:
    """Runs git; what it said when it failed, else None."""
    try:
        proc = run_git(args, env, timeout=_CLONE_TIMEOUT)
    except (OSError, StoreUnavailable) as error:
        return str(error)
    if proc.returncode == 0:
        return None
    return proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"


def _entries(clone: Path, env: dict[str, str]) -> list[_Entry] | None:
    """The files of the clone's HEAD commit, or None when it has none."""
    proc = run_git(["-C", str(clone), "ls-tree", "-r", "-z", "--full-tree", "HEAD"], env,
                   timeout=_CLONE_TIMEOUT)
    if proc.returncode != 0:
        return None
    entries = []
    for record in proc.stdout.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, kind, oid = meta.decode().split(" ")
            if kind == "blob":  # submodules (commits) do not reach a checkout either
                entries.append(_Entry(mode, oid, path.decode(errors="surrogateescape")))
    return entries


def _verify_objects(
    shown: str, clone: Path, entries: list[_Entry], env: dict[str, str], kustomize: bool,
    kubectl: str, protect_from_prune: frozenset[str], kubernetes_version: str | None = None,
) -> list[str]:
    """Verifies the clone's HEAD as its object database holds it: for a tree that cannot be
    checked out, so every check still runs."""
    reader = CatFile(clone / ".git", env)
    try:
        blobs = reader.read_many([entry.oid for entry in entries])
    except StoreUnavailable as error:
        return [f"{shown}: {error}"]
    finally:
        reader.close()
    findings = [_symlink(entry.path) for entry in entries if entry.mode == _SYMLINK_MODE]
    files = {entry.path: blob[1] for entry, blob in zip(entries, blobs, strict=True)
             if entry.mode != _SYMLINK_MODE and blob is not None}
    findings.extend(verify_files(files, kustomize, kubectl, protect_from_prune,
                                 kubernetes_version=kubernetes_version))
    return findings


def _not_checked_out(shown: str, clone: Path, entries: list[_Entry], failure: str) -> list[str]:
    """The files a failed checkout left out, each with the reason the file system gives
    (git's own message is cut at 4 KB, often before the path ends)."""
    findings = []
    for entry in entries:
        try:
            os.lstat(clone / entry.path)
        except OSError as error:
            reason = error.strerror if error.errno != errno.ENOENT else first_line(failure)
            findings.append(f"{entry.path}: cannot be checked out: {reason}")
    return findings or [f"{shown}: git checkout failed: {redact_url(first_line(failure))}"]


def _symlink(path: str) -> str:
    return f"{path}: is a symbolic link (no symlinks are allowed)"


def _walk(root: Path, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            rel = f"{prefix}{entry.name}"
            if not prefix and entry.name == ".git":
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path), rel + "/")
            else:
                yield rel, entry


def _is_bare_repository(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _looks_like_scp_url(target: str) -> bool:
    """git's `user@host:path` form (a colon before any slash)."""
    head, colon, _ = target.partition(":")
    return bool(colon) and "/" not in head and len(head) > 1
