"""Where the shared data cache lives, and the lock that keeps parallel runs from fetching into it at once."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_exp.fs.lock import exclusive_lock


def default_root() -> Path:
    """$MNIST_EXP_DATA_DIR, else $XDG_CACHE_HOME/mnist-exp, else ~/.cache/mnist-exp."""
    if os.environ.get("MNIST_EXP_DATA_DIR"):
        return Path(os.environ["MNIST_EXP_DATA_DIR"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "mnist-exp"


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the cache's lock for the block, waiting while another process fetches."""
    with exclusive_lock(
        path, wait=True, unlocked_risk="parallel runs may each fetch the data; every file still lands whole"
    ):
        yield
