"""One training process per run directory.

A resume started while the run is still training (a second terminal, or a requeued SLURM job
racing the old one) would interleave two processes' checkpoints, metrics and TensorBoard events
in one directory, and delete the other's half-written files. A run holds an flock on `.lock` in
its directory while it trains; the kernel drops it when the process ends, even by SIGKILL, so a
lock is never left stale.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from mnist_exp.errors import OutputDirError, resume_command

try:
    import fcntl
except ImportError:  # Windows: no flock, so no cross-process lock
    fcntl = None

LOCK_FILE = ".lock"
log = logging.getLogger(__name__)


@contextmanager
def sole_trainer(run_dir: Path) -> Iterator[None]:
    """Hold the run dir's lock for the block; refuse, naming the holder's pid, if it is held."""
    with open(run_dir / LOCK_FILE, "a+") as handle:  # "a+": create without truncating
        if fcntl is not None:
            take_lock(handle, run_dir)
        yield


def take_lock(handle: TextIO, run_dir: Path) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        raise OutputDirError(
            f"another process (pid {holder}) is training in {run_dir}. Wait for it to finish, or stop "
            f"it (kill -INT {holder}) and resume it with: {resume_command(run_dir)}"
        ) from None
    except OSError as error:  # a file system without flock (some NFS or Lustre mounts)
        log.warning("cannot lock %s (%s): nothing stops a second process training there", run_dir, error)
        return
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
