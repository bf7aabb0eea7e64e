"""A Hydra callback that proves the output location writable before anything runs.

Hydra creates the run directory itself, before the task, and a failure there would surface as a
traceback; checking in `on_run_start` turns it into one clear message and exit code 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

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


class CheckOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _require_writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _require_writable(config.hydra.sweep.dir, "hydra.sweep.dir")
