"""One training process per run directory.

A resume started while the run is still training (a second terminal, or a requeued SLURM job
racing the old one) would interleave two processes' checkpoints, metrics and TensorBoard events
in one directory, and delete the other's half-written files.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_exp.errors import OutputDirError
from mnist_exp.fs.lock import LockHeld, exclusive_lock
from mnist_exp.rundir.layout import LOCK, resume_command


@contextmanager
def sole_trainer(run_dir: Path) -> Iterator[None]:
    """Hold the run dir's lock for the block; refuse, naming the holder's pid, if it is held."""
    try:
        with exclusive_lock(
            run_dir / LOCK, wait=False, unlocked_risk="nothing stops a second process training there"
        ):
            yield
    except LockHeld as held:
        raise OutputDirError(
            f"another process (pid {held.holder}) is training in {run_dir}. Wait for it to finish, or "
            f"stop it (kill -INT {held.holder}) and resume it with: {resume_command(run_dir)}"
        ) from None
