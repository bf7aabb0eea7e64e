"""A Hydra callback that refuses a run before Hydra writes anything: a bad config, an absent
device, or an output location that is unwritable, busy or another run's.

Hydra creates the run directory itself, before the task, and a failure there would surface as a
traceback; checking in `on_run_start` turns it into one clear message and exit code 2, and a
mistyped value leaves no run directory behind.
"""

from __future__ import annotations

import copy
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from mnist_exp.errors import ConfigError, UserError
from mnist_exp.rundir.guard import (
    require_free,
    require_new_run_dir,
    require_new_sweep_dir,
    require_resume_in_place,
    require_writable,
)


def _require_runnable(config: DictConfig) -> None:
    """The checks the run itself starts with, on the config the task will get (Hydra's node
    removed, as Hydra does). A sweep's jobs are checked by the run alone: each job's values are
    known only once it starts, and its directory is part of the sweep."""
    from mnist_exp.cli.checks import check_config, device_for  # imports torch, which the run needs anyway

    task_config = copy.deepcopy(config)
    with read_write(task_config), open_dict(task_config):
        del task_config["hydra"]
    check_config(task_config)
    device_for(task_config.trainer.device)


def _require_launchable(launcher: DictConfig) -> None:
    """The packed launcher's own settings, checked before the sweep's directory is made: Hydra
    builds the launcher only after that, and would wrap the refusal in its own message."""
    if str(launcher.get("_target_", "")).endswith(".PackedLauncher"):
        from mnist_exp.packing.plan import launcher_problem

        problem = launcher_problem(launcher.max_copies, launcher.workers)
        if problem:
            raise ConfigError(problem)


@contextmanager
def _refusal_exits() -> Iterator[None]:
    """A refused run: its one line and exit code, before Hydra writes anything. It exits rather
    than raising, since Hydra only warns about a callback's exception and goes on to write; so
    HYDRA_FULL_ERROR=1 gets the traceback printed here."""
    try:
        yield
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            traceback.print_exc()
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


class CheckOutputDir(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        # In this order: a refused resume creates nothing, and a run dir in use is named as such.
        with _refusal_exits():
            if config.resume:
                require_resume_in_place(config)
            _require_runnable(config)
            require_writable(config.hydra.run.dir, "hydra.run.dir")
            require_free(config.hydra.run.dir)
            if not config.resume:
                require_new_run_dir(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        with _refusal_exits():
            _require_launchable(config.hydra.launcher)
            require_writable(config.hydra.sweep.dir, "hydra.sweep.dir")
            require_new_sweep_dir(config)
