"""An exclusive advisory lock on a file, with one answer for file systems that have none.

The kernel drops an flock when its process ends, even by SIGKILL, so a lock is never left stale.
The holder writes its pid into the file, so a process refused the lock can name who holds it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

try:
    import fcntl
except ImportError:  # Windows: no flock, so no cross-process lock
    fcntl = None

log = logging.getLogger(__name__)
POLL_S = 0.1  # how often a busy lock is tried again when waiting


class LockHeld(Exception):
    """Another process holds the lock; `holder` is the pid it wrote there, or "unknown"."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


@contextmanager
def exclusive_lock(path: Path, *, wait: bool, unlocked_risk: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed, never truncated by opening) for the block.

    A busy lock is polled when `wait` (a Ctrl-C that lands just before one blocking flock would be
    noticed only once the holder lets go), else refused with `LockHeld`. On a file system without
    flock (some NFS or Lustre mounts) a warning says `unlocked_risk` and the block runs unlocked.
    """
    with open(path, "a+") as handle:
        if fcntl is not None and _acquire(handle, path, wait, unlocked_risk):
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        yield


def _acquire(handle: TextIO, path: Path, wait: bool, unlocked_risk: str) -> bool:
    """True once the lock is held; False where the file system cannot lock at all."""
    announced = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not wait:
                handle.seek(0)
                raise LockHeld(handle.read().strip() or "unknown") from None
            if not announced:
                log.info("waiting for another process holding %s", path)
                announced = True
            time.sleep(POLL_S)
        except OSError as error:
            log.warning("cannot lock %s (%s): %s", path, error, unlocked_risk)
            return False
