"""One service per data folder: two on one folder would take each other's ref locks and
rewrite each other's cache. An advisory lock (`flock`) on `<data>/statewriter.lock`, held
for the life of the process; the kernel lets go of it when the process dies, kill -9
included, so there is nothing stale to clean up."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from gitops.errors import FolderInUse

LOCK_FILE = "statewriter.lock"


def lock_data_folder(data: Path) -> IO[str]:
    """The open, locked lock file (keep it open); FolderInUse when another process holds it."""
    data.mkdir(parents=True, exist_ok=True)
    handle = (data / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise FolderInUse(f"{data} is in use by {holder}: two statewriter services "
                          "cannot share a data folder", folder=str(data), holder=holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"statewriter pid {os.getpid()}\n")
    handle.flush()
    return handle
