"""Where the shared data cache lives, and the lock that keeps parallel runs from fetching into it at once."""

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so no cross-process lock
    fcntl = None

logger = logging.getLogger(__name__)

LOCK_POLL_S = 0.1  # how often a busy lock is tried again


def default_root() -> Path:
    """$MNIST_EXP_DATA_DIR, else $XDG_CACHE_HOME/mnist-exp, else ~/.cache/mnist-exp."""
    if os.environ.get("MNIST_EXP_DATA_DIR"):
        return Path(os.environ["MNIST_EXP_DATA_DIR"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "mnist-exp"


@contextmanager
def locked(path: Path):
    """Hold an exclusive flock on `path` (created if needed) for the duration of the block.

    A busy lock is polled rather than waited for in one blocking flock: a Ctrl-C that lands just
    before that system call begins would be noticed only once the other process lets go.
    """
    with open(path, "a") as f:  # "a": create without truncating; closing releases the lock
        try:
            if fcntl is not None and not _try_flock(f):
                logger.info("waiting for another process holding %s", path)
                while not _try_flock(f):
                    time.sleep(LOCK_POLL_S)
        except OSError as error:  # a file system without flock (some NFS or Lustre mounts)
            logger.warning(
                "cannot lock %s (%s): parallel runs may each fetch the data; every file still lands whole",
                path,
                error,
            )
        yield


def _try_flock(f) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
