"""Where the shared data cache lives, and the lock that keeps parallel runs from fetching into it at once."""

import logging
import os
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so no cross-process lock
    fcntl = None

logger = logging.getLogger(__name__)


def default_root() -> Path:
    """$MNIST_EXP_DATA_DIR, else $XDG_CACHE_HOME/mnist-exp, else ~/.cache/mnist-exp."""
    if os.environ.get("MNIST_EXP_DATA_DIR"):
        return Path(os.environ["MNIST_EXP_DATA_DIR"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "mnist-exp"


@contextmanager
def locked(path: Path):
    """Hold an exclusive flock on `path` (created if needed) for the duration of the block."""
    with open(path, "a") as f:  # "a": create without truncating; closing releases the lock
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting for another process holding %s", path)
                fcntl.flock(f, fcntl.LOCK_EX)
        yield
