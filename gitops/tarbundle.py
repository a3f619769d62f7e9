"""The tarball form of a bundle: a gzip'd tar of a pipeline's `output/` and `metadata/`.

Everything is read in memory; nothing from the archive ever becomes a path on disk. The
archive is hostile until proven otherwise:

- the gzip stream is inflated in bounded chunks and refused (413) as soon as it expands
  past `limits.max_bundle_bytes` (a gzip bomb costs at most that much memory);
- the declared member sizes count against the same limit before any member is read, and
  the number of files against `limits.max_files`;
- only regular files and plain directories are accepted: symlinks, hard links, devices,
  fifos and sparse files are refused (422), as are absolute paths, `..`, `.` or empty path
  parts, backslashes, members outside `output/` and `metadata/`, a path given twice, and
  files that are not UTF-8.

What is inside `output/` becomes the bundle's files (named relative to `output/`), and
`metadata/destination-selectors.yaml` (Kratix's list form), `metadata/cluster-selectors.yaml`
(a plain map) and `metadata/status.yaml` are read; other files under `metadata/` are
ignored. The bundle is then built exactly as the JSON form builds it, so the same content
sent either way is the same bundle (same digest, same commit) and meets the same YAML limits
(documents, bytes per document, depth, nodes); the metadata files are read with them too.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from typing import Any

from gitops.bundle import (
    Bundle,
    Limits,
    Trailers,
    build_bundle,
    check_selectors,
    combine_selectors,
    yaml_refusal,
)
from gitops.errors import InvalidBundle, LimitExceeded, StatewriterError, YamlError
from gitops.owner import Owner
from gitops.quoting import problem_of, quoted
from gitops.yamldocs import load_one

GZIP_MEDIA_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-tar+gzip"})

OUTPUT = "output"
METADATA = "metadata"
DESTINATION_SELECTORS = "destination-selectors.yaml"
CLUSTER_SELECTORS = "cluster-selectors.yaml"
STATUS = "status.yaml"

_CHUNK = 64 * 1024
_CONSTRUCTOR_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError)
_MAX_METADATA_BYTES = 1024 * 1024



def read_tar_bundle(
    data: bytes,
    owner: Owner,
    limits: Limits,
    selectors: dict[str, str] | None = None,
    generation: int | None = None,
    trailers: Trailers = (),
) -> Bundle:
    """Build a bundle from a gzip'd tar of `output/...` and optional `metadata/...`."""
    raw = inflate(data, limits.max_bundle_bytes)
    files, metadata = _read_members(raw, limits)
    found = [selectors or {}]
    if DESTINATION_SELECTORS in metadata:
        found.extend(_destination_selectors(metadata[DESTINATION_SELECTORS], limits))
    if CLUSTER_SELECTORS in metadata:
        where = f"{METADATA}/{CLUSTER_SELECTORS}"
        found.append(check_selectors(_load_one(metadata[CLUSTER_SELECTORS], where, limits), where))
    status: object = None
    if STATUS in metadata:
        status = _load_one(metadata[STATUS], f"{METADATA}/{STATUS}", limits)
        if status is not None and not isinstance(status, dict):
            raise InvalidBundle(f"{METADATA}/{STATUS} must be a map", file=f"{METADATA}/{STATUS}")
    try:
        return build_bundle(owner, combine_selectors(*found), files, status, generation, limits,
                            trailers)
    except StatewriterError:
        raise
    except _CONSTRUCTOR_ERRORS as error:
        # PyYAML's constructors raise plain Python errors for some malformed scalars
        # (`!!int x`, `0x_`, 5000-digit integers); they are the client's fault, not ours.
        raise InvalidBundle(f"a file cannot be parsed: {problem_of(error)}") from None


def inflate(data: bytes, limit: int) -> bytes:
    """Gunzip `data` (one or more members), refusing as soon as the output passes `limit`."""
    if data[:2] != b"\x1f\x8b":
        raise InvalidBundle("body is not gzip data (Content-Type says application/gzip)")
    out = bytearray()
    pending = data
    while pending:
        if pending[:2] != b"\x1f\x8b":
            if pending.strip(b"\0"):
                raise InvalidBundle("trailing data after the gzip stream")
            break
        stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            while not stream.eof:
                chunk = stream.decompress(pending, _CHUNK)
                pending = stream.unconsumed_tail
                out += chunk
                if len(out) > limit:
                    raise LimitExceeded(f"the archive unpacks to more than {limit} bytes")
                if not chunk and not pending:
                    break
        except zlib.error as error:
            raise InvalidBundle(f"corrupt gzip data: {error}") from None
        if not stream.eof:
            raise InvalidBundle("truncated gzip data")
        pending = stream.unused_data
    return bytes(out)


def _read_members(raw: bytes, limits: Limits) -> tuple[dict[str, str], dict[str, str]]:
    files: dict[str, str] = {}
    metadata: dict[str, str] = {}
    seen: set[str] = set()
    declared = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive:
                path = _member_path(member)
                if member.isdir():
                    continue
                if path in seen:
                    raise InvalidBundle(f"archive member {quoted(path)} appears twice", file=path)
                seen.add(path)
                if member.size < 0:
                    raise InvalidBundle(f"archive member {quoted(path)} has a negative size", file=path)
                declared += member.size
                if declared > limits.max_bundle_bytes:
                    raise LimitExceeded(
                        f"archive members add up to more than {limits.max_bundle_bytes} bytes"
                    )
                top, _, rest = path.partition("/")
                if top == OUTPUT:
                    if len(files) >= limits.max_files:
                        raise LimitExceeded(f"bundle has more than {limits.max_files} files")
                    files[rest] = _text(archive, member, path)
                elif rest in (DESTINATION_SELECTORS, CLUSTER_SELECTORS, STATUS):
                    if member.size > _MAX_METADATA_BYTES:
                        raise LimitExceeded(f"{path} is larger than {_MAX_METADATA_BYTES} bytes")
                    metadata[rest] = _text(archive, member, path)
                # other files under metadata/ are the pipeline's business, not ours
    except StatewriterError:
        raise
    except (tarfile.TarError, EOFError, ValueError, OverflowError, UnicodeError) as error:
        raise InvalidBundle(f"corrupt tar archive: {problem_of(error)}") from None
    return files, metadata


def _member_path(member: tarfile.TarInfo) -> str:
    """The member's checked path, or a refusal that names it."""
    name = member.name
    shown = name[:200]
    if member.issym() or member.islnk():
        raise InvalidBundle(f"archive member {quoted(shown)} is a link; links are refused", file=shown)
    if member.isdev():
        raise InvalidBundle(f"archive member {quoted(shown)} is a device or fifo", file=shown)
    if member.issparse():
        raise InvalidBundle(f"archive member {quoted(shown)} is a sparse file", file=shown)
    if not (member.isreg() or member.isdir()):
        raise InvalidBundle(f"archive member {quoted(shown)} is not a regular file", file=shown)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidBundle(f"archive member {quoted(shown)} has an absolute path", file=shown)
    if "\\" in name or "\0" in name or len(name) > 1024:
        raise InvalidBundle(f"archive member {quoted(shown)} has a malformed path", file=shown)
    while name.startswith("./"):
        name = name[2:]
    if member.isdir() and name in ("", "."):
        return ""
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidBundle(
            f"archive member {quoted(shown)} has an empty, '.' or '..' path part", file=shown
        )
    if parts[0] not in (OUTPUT, METADATA):
        raise InvalidBundle(
            f"archive member {quoted(shown)} is outside {OUTPUT}/ and {METADATA}/", file=shown
        )
    if member.isreg() and len(parts) == 1:
        raise InvalidBundle(f"archive member {quoted(shown)} must be a folder", file=shown)
    return name


def _text(archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> str:
    handle = archive.extractfile(member)
    if handle is None:  # pragma: no cover - regular files always have a handle
        raise InvalidBundle(f"archive member {quoted(path)} cannot be read", file=path)
    content = handle.read()
    if len(content) != member.size:
        raise InvalidBundle(f"archive member {quoted(path)} is truncated", file=path)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidBundle(f"{path} is not UTF-8 text", file=path) from None


def _load_one(text: str, where: str, limits: Limits) -> Any:
    """One YAML document of plain data (or None), within the bundle's limits."""
    try:
        return load_one(text, limits.parsing)
    except YamlError as error:
        raise yaml_refusal(error, where) from None


def _destination_selectors(text: str, limits: Limits) -> list[dict[str, str]]:
    """Kratix's `[{matchLabels: {...}}, ...]`; every entry must hold (they are combined)."""
    where = f"{METADATA}/{DESTINATION_SELECTORS}"
    value = _load_one(text, where, limits)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidBundle(f"{where} must be a list of {{matchLabels: {{...}}}}", file=where)
    found = []
    for position, entry in enumerate(value):
        if entry is None:
            continue
        if not isinstance(entry, dict) or set(entry) - {"matchLabels"}:
            raise InvalidBundle(
                f"{where}: entry {position} may only hold matchLabels (equality on labels)",
                file=where,
            )
        found.append(check_selectors(entry.get("matchLabels"), f"{where} entry {position}"))
    return found


