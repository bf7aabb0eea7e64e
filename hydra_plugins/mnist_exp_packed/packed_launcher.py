"""`hydra/launcher=packed`: a sweep's jobs that differ only in their seed train as one network.

Hydra's own launchers hand each job to `run_job`, which trains one job at a time. This one does
for every job what `run_job` does (its directory, `.hydra/` files, log file, callbacks and
`JobReturn`), then trains each group of jobs together (`mnist_exp.packing.run`), routing every
job's log lines to its own log file. Jobs that cannot pack run one after another, saying why.
With `workers` above 1, the groups train that many at a time in worker processes (`workers.py`).

Hydra loads launchers only from the `hydra_plugins` package, so this one lives there; what it
runs lives in `mnist_exp.packing`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, _save_config, configure_log, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.mnist_exp_packed.workers import launch_in_workers
from mnist_exp.errors import ResumeError, Stopped
from mnist_exp.packing.plan import Group, launcher_problem, plan_groups
from mnist_exp.packing.run import PackedJob, run_group
from mnist_exp.rundir.layout import run_dir_of
from mnist_exp.rundir.signals import StoppedAsItFinished, StopRequests

log = logging.getLogger("mnist_exp")


class PackedLauncher(Launcher):
    def __init__(self, max_copies: int = 8, workers: int = 1) -> None:
        problem = launcher_problem(max_copies, workers)  # the preflight refused it first, on the command line
        if problem:
            raise ValueError(problem)
        self.max_copies, self.workers = max_copies, workers
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        self._log_as_launcher()
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = [self._job_config(list(o), initial_job_idx + i) for i, o in enumerate(job_overrides)]
        groups = plan_groups([self._task_config(config) for config in configs], self.max_copies, self.workers)
        if self.workers > 1:
            log.info(
                "Launching %d jobs in %d groups, %d worker processes at a time",
                len(configs),
                len(groups),
                self.workers,
            )
            returns = launch_in_workers(self, groups, configs)
            return [returns[i] for i in range(len(configs))]
        log.info("Launching %d jobs in %d packed groups", len(configs), len(groups))
        returns: dict[int, JobReturn] = {}
        for group in groups:
            self._log_as_launcher()  # the jobs before took over logging for their own files
            self._describe(group, configs)
            returns |= self._launch_group([configs[i] for i in group.jobs], group.jobs)
        return [returns[i] for i in range(len(configs))]

    def _log_as_launcher(self) -> None:
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

    def _job_config(self, overrides: list[str], number: int) -> DictConfig:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config):
            config.hydra.job.id = config.hydra.job.num = number
        HydraConfig.instance().set_config(config)  # its directory's name reads the job's number
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = os.path.abspath(_job_dir(config))
        return config

    def _task_config(self, config: DictConfig) -> dict:
        HydraConfig.instance().set_config(config)
        task = OmegaConf.to_container(config, resolve=True)
        del task["hydra"]
        return task

    def _describe(self, group: Group, configs: list[DictConfig]) -> None:
        names = [Path(configs[i].hydra.runtime.output_dir).name for i in group.jobs]
        if group.alone_because:
            log.info("\t#%d %s: alone, as %s", group.jobs[0], names[0], group.alone_because)
        else:
            log.info("\t#%s %s: packed", ",".join(map(str, group.jobs)), " ".join(names))

    def _launch_group(self, configs: list[DictConfig], numbers: tuple[int, ...]) -> dict[int, JobReturn]:
        jobs = [self._open_job(config) for config in configs]
        stop = StopRequests()
        try:
            run_group(jobs, stop)
        except Stopped as stopped:
            print(f"Error: {stopped}", file=sys.stderr)
            sys.exit(stopped.exit_code)
        except Exception as error:  # as `run_job` does: the jobs fail, the sweep goes on
            log.error("The packed group failed: %s: %s", type(error).__name__, error, exc_info=True)
            for job in jobs:
                job.result = error if job.result is None else job.result
        if stop.requested():
            stopped = StoppedAsItFinished(stop.signum, str(self.config.hydra.sweep.dir))
            print(f"Error: {stopped}", file=sys.stderr)
            sys.exit(stopped.exit_code)
        ended = zip(numbers, configs, jobs, strict=True)
        return {number: self._close_job(config, job) for number, config, job in ended}

    def _open_job(self, config: DictConfig) -> PackedJob:
        """What Hydra's `run_job` does before it calls the task: the job's directory, its `.hydra/`
        files, its log file, and the callbacks' `on_job_start`."""
        from mnist_exp.train import Job

        HydraConfig.instance().set_config(config)
        output_dir = Path(config.hydra.runtime.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        task = _without_hydra(config)
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        logs = LogRoute.of_current(config.hydra.job_logging)
        if config.hydra.output_subdir is not None:
            saved_to = output_dir / str(config.hydra.output_subdir)
            _save_config(task, "config.yaml", saved_to)
            _save_config(copy.deepcopy(HydraConfig.instance().cfg), "hydra.yaml", saved_to)
            _save_config(config.hydra.overrides.task, "overrides.yaml", saved_to)
        self.hydra_context.callbacks.on_job_start(config=config, task_function=self.task_function)
        return PackedJob(task, Job.of(config.hydra), logs.held)

    def _close_job(self, config: DictConfig, job: PackedJob) -> JobReturn:
        """What `run_job` does once the task has returned: the `JobReturn`, and `on_job_end`."""
        HydraConfig.instance().set_config(config)
        failed = isinstance(job.result, BaseException)
        done = JobReturn(
            overrides=OmegaConf.to_container(config.hydra.overrides.task),
            cfg=_without_hydra(config),
            hydra_cfg=copy.deepcopy(HydraConfig.instance().cfg),
            working_dir=os.getcwd(),
            task_name=JobRuntime.instance().get("name"),
            status=JobStatus.FAILED if failed else JobStatus.COMPLETED,
        )
        done.return_value = job.result
        self.hydra_context.callbacks.on_job_end(config=config, job_return=done)
        return done


def _job_dir(config: DictConfig) -> str:
    """The sweep's directory for the job, or the directory of the run that `resume=` continues."""
    if config.resume:
        from mnist_exp.rundir.resume import checkpoint_path

        try:
            return str(run_dir_of(checkpoint_path(config.resume)))
        except ResumeError:
            pass  # the job reports the bad path itself
    return os.path.join(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir))


def _without_hydra(config: DictConfig) -> DictConfig:
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


class LogRoute:
    """The handlers Hydra's job logging gave one job (its log file, the console), put back on the
    loggers while the job's lines are written."""

    def __init__(self, handlers: dict[str, list[logging.Handler]]):
        self.handlers = handlers

    @classmethod
    def of_current(cls, job_logging: DictConfig) -> LogRoute:
        names = ["", *(job_logging.get("loggers") or {})]
        return cls({name: list(logging.getLogger(name).handlers) for name in names})

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        loggers = {name: logging.getLogger(name) for name in self.handlers}
        before = {name: logger.handlers for name, logger in loggers.items()}
        for name, logger in loggers.items():
            logger.handlers = self.handlers[name]
        try:
            yield
        finally:
            for name, logger in loggers.items():
                logger.handlers = before[name]
