"""Writing git objects as one pack file with its index (pack format 2, index version 2).

A group of commits becomes two files instead of one loose file per object: creating
files is what a commit costs most on a typical disk. Objects are stored whole (no
deltas); `git repack` compacts the packs later.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

TYPE_CODES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}
_TEMPORARIES = itertools.count()


def object_id(kind: str, data: bytes) -> str:
    digest = hashlib.sha1(f"{kind} {len(data)}\0".encode())
    digest.update(data)
    return digest.hexdigest()


def _entry_header(kind: str, size: int) -> bytes:
    """Type and size as pack entries encode them: 3 type bits, then 4 + 7n size bits."""
    byte = (TYPE_CODES[kind] << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


SMALL = 4096  # bytes: an object this small fits a 4 KiB window whole


def _deflate(kind: str, data: bytes) -> bytes:
    """One object's zlib stream. Setting up zlib's default state (a 32 KiB window, memLevel
    8) costs ~60 us, more than compressing a small object, and a write stages ~20 objects
    per commit: a small object gets a 4 KiB window (the same output), and trees, mostly
    object ids that do not compress, are stored (level 0)."""
    if kind == "tree":
        stream = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
    elif len(data) <= SMALL:
        stream = zlib.compressobj(1, zlib.DEFLATED, 12, 4)
    else:
        return zlib.compress(data, 1)
    return stream.compress(data) + stream.flush()


def encode_pack(objects: Mapping[str, tuple[str, bytes]]) -> tuple[bytes, bytes, str]:
    """(pack, index, pack checksum) for `objects`: object id -> (kind, content)."""
    parts = [b"PACK", struct.pack(">II", 2, len(objects))]
    offset = 12
    located: list[tuple[bytes, int, int]] = []  # raw id, crc32, offset
    for sha, (kind, data) in objects.items():
        entry = _entry_header(kind, len(data)) + _deflate(kind, data)
        located.append((bytes.fromhex(sha), zlib.crc32(entry), offset))
        parts.append(entry)
        offset += len(entry)
    if offset >= 2**31:
        raise ValueError("pack too large for 32-bit offsets")
    body = b"".join(parts)
    checksum = hashlib.sha1(body).digest()
    located.sort()
    fanout = [0] * 256
    for raw, _, _ in located:
        fanout[raw[0]] += 1
    for i in range(1, 256):
        fanout[i] += fanout[i - 1]
    count = len(located)
    index = b"".join([
        b"\377tOc", struct.pack(">I", 2), struct.pack(">256I", *fanout),
        *(raw for raw, _, _ in located),
        struct.pack(f">{count}I", *(crc for _, crc, _ in located)),
        struct.pack(f">{count}I", *(off for _, _, off in located)),
        checksum,
    ])
    return body + checksum, index + hashlib.sha1(index).digest(), checksum.hex()


def write_pack(pack_dir: Path, objects: Mapping[str, tuple[str, bytes]]) -> str | None:
    """Write `objects` as `pack-<checksum>.pack` and `.idx`; returns the checksum, or None
    when that very pack is there already (written by another writer of the same objects).

    The index is renamed into place last: git only sees a pack through its index, so a
    kill at any point leaves either nothing visible or a whole pack."""
    pack, index, name = encode_pack(objects)
    pack_dir.mkdir(parents=True, exist_ok=True)
    if (pack_dir / f"pack-{name}.idx").exists():
        return None
    for suffix, content, prefix in (("pack", pack, "tmp_pack_"), ("idx", index, "tmp_idx_")):
        fd, tmp = _temporary(pack_dir, prefix)
        try:
            os.write(fd, content)
            os.fchmod(fd, 0o444)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, pack_dir / f"pack-{name}.{suffix}")
    return name


def _temporary(folder: Path, prefix: str) -> tuple[int, Path]:
    """A new file of its own in `folder`, open for writing (named by process and a counter:
    tempfile.mkstemp's random names cost more than writing a small pack)."""
    while True:
        path = folder / f"{prefix}{os.getpid()}_{next(_TEMPORARIES)}"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path
        except FileExistsError:
            continue  # left by a process that had the same pid
