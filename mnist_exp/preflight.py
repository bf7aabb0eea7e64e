"""A Hydra callback that proves the output location writable, and free, before anything runs.

Hydra creates the run directory itself, before the task, and a failure there would surface as a
traceback; checking in `on_run_start` turns it into one clear message and exit code 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mnist_exp.errors import OutputDirError
from mnist_exp.run_lock import sole_trainer

log = logging.getLogger("mnist_exp")


def writable_problem(directory: Path) -> str | None:
    """None if `directory` can be created and written, else why not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return error.strerror or str(error)
    return None


def _require_writable(directory: str, key: str) -> None:
    problem = writable_problem(Path(directory))
    if problem:
        print(
            f"Error: the output directory {directory} cannot be written ({problem}). "
            f"Run from a writable directory or set {key}=/a/writable/path.",
            file=sys.stderr,
        )
        sys.exit(2)


def _require_free(run_dir: str) -> None:
    """Hydra rewrites `.hydra/` in the run dir before the run's own lock is taken, so a run
    pointed at a directory another process trains in is stopped here, before that."""
    try:
        with sole_trainer(Path(run_dir)):
            pass
    except OutputDirError as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


class CheckOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _require_writable(config.hydra.run.dir, "hydra.run.dir")
        _require_free(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _require_writable(config.hydra.sweep.dir, "hydra.sweep.dir")
