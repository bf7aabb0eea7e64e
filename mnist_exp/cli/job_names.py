"""A Hydra callback that has a sweep's jobs name their directories by the overrides the sweep
varies (`0_lr=0.001`, `1_lr=0.002`), rather than by their numbers alone.

Only the launching process sees the command line's sweep (`optimizer.lr=0.001,0.002`); each job
sees its own value. So the swept keys are read here, as the sweep starts and before any launcher
does its work, and go to the jobs inside the resolver that names their directories
(`mnist_exp.rundir.job_names`).
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mnist_exp.rundir.job_names import register_job_dir_resolver, swept_keys


class NameJobDirs(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        register_job_dir_resolver(swept_keys(overrides))
