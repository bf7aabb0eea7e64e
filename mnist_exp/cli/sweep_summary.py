"""A Hydra callback: a failed job leaves `error.txt` in its run dir, and a sweep a summary.

`on_job_end` runs in the process that ran the job (a joblib worker, a submitit or SLURM job, a
Ray task), so the only way its word reaches the summary is a file in the job's own dir. The
summary is made from disk with `mnist_exp.report.sweep`, in the launching process, once every job is
done (`on_multirun_end`). Hydra skips `on_multirun_end` when a job failed, and a stop signal ends
the process in the middle of a sweep; either way the summary then comes as the process exits,
covering the jobs that ran, with the failed ones marked.
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mnist_exp.errors import OutputDirError
from mnist_exp.report.sweep import summarize
from mnist_exp.rundir.layout import ERROR
from mnist_exp.rundir.metrics import FINISHED
from mnist_exp.rundir.readers import find_run_dirs, read_metrics

log = logging.getLogger("mnist_exp")


class SweepSummary(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A job run again in a dir (a resume, a requeued task) makes a new attempt: the error of
        the one before is no longer the run's, and would list it as failed once it completes."""
        (Path(config.hydra.runtime.output_dir) / ERROR).unlink(missing_ok=True)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        error = job_return._return_value  # the `return_value` property re-raises it
        run_dir = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        if read_metrics(run_dir)[0].get("status") in FINISHED:
            return  # an earlier run's dir this job was refused: its record stays as it was
        (run_dir / ERROR).write_text(f"{type(error).__name__}: {error}\n")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._sweep_dir = Path(config.hydra.sweep.dir)
        atexit.register(self._summarise_ended_sweep)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.unregister(self._summarise_ended_sweep)
        summarise_sweep(Path(config.hydra.sweep.dir))

    def _summarise_ended_sweep(self) -> None:
        """At exit, when the sweep ended early: a failed job or a stop signal."""
        if find_run_dirs(self._sweep_dir):
            summarise_sweep(self._sweep_dir)


def summarise_sweep(sweep_dir: Path) -> None:
    log.info("Summarising the sweep in %s", sweep_dir)
    try:
        summarize(sweep_dir)
    except OutputDirError as error:  # the jobs are done and on disk: say so, no traceback
        log.error("%s", error)
