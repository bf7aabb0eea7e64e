"""A Hydra callback that proves the output location writable, and free, before anything runs.

Hydra creates the run directory itself, before the task, and a failure there would surface as a
traceback; checking in `on_run_start` turns it into one clear message and exit code 2. Hydra
also writes into a directory that already holds a run without a word, so a new run or sweep
pointed at an earlier one's directory is refused here, before Hydra's first write, and so is a
resume pointed away from its run's own directory. A single run's config, and the device it asks
for, are checked here too, so that a mistyped value leaves no run directory behind.
"""

from __future__ import annotations

import copy
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from mnist_exp.errors import OutputDirError, ResumeError, UserError, resume_command
from mnist_exp.rundir.lock import sole_trainer
from mnist_exp.rundir.readers import read_metrics
from mnist_exp.rundir.resume import checkpoint_path, run_dir_of
from mnist_exp.rundir.writes import is_out_of_space

FRESH_DIR = ", or leave it out for a new timestamped one."


# A full disk still takes an empty file; one block of data shows there is room to start.
PROBE = bytes(4096)


def writable_problem(directory: Path) -> OSError | None:
    """None if `directory` can be created and written, else the error that says why not."""
    probe = directory / ".write-test"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            probe.write_bytes(PROBE)
        finally:
            probe.unlink(missing_ok=True)  # also when a full disk cut the write short
    except OSError as error:
        return error
    return None


def _require_writable(directory: str, key: str) -> None:
    problem = writable_problem(Path(directory))
    if problem:
        fix = "Free disk space there, or" if is_out_of_space(problem) else "Run from a writable directory or"
        raise OutputDirError(
            f"the output directory {directory} cannot be written ({problem.strerror or problem}). "
            f"{fix} set {key}=/a/writable/path."
        )


def _require_free(run_dir: str) -> None:
    """Hydra rewrites `.hydra/` in the run dir before the run's own lock is taken, so a run
    pointed at a directory another process trains in is stopped here, before that."""
    with sole_trainer(Path(run_dir)):
        pass


def _trained_run_status(run_dir: Path) -> str | None:
    """The status of a run that trained in `run_dir` (at least one epoch saved), else None."""
    metrics, problem = read_metrics(run_dir)
    if not problem:
        return metrics.get("status") or "running"
    return "no metrics.json" if (run_dir / "checkpoints" / "last.pt").is_file() else None


def _require_new_run_dir(run_dir: str) -> None:
    status = _trained_run_status(Path(run_dir))
    if status is None:
        return
    carry_on = "" if status == "completed" else f" Continue it with: {resume_command(run_dir)}."
    raise OutputDirError(
        f"{run_dir} already holds a run ({status}); a new run there would overwrite its checkpoints, "
        f"metrics and TensorBoard events.{carry_on} For a new run, choose another hydra.run.dir{FRESH_DIR}"
    )


def _require_new_sweep_dir(config: DictConfig) -> None:
    """Job k of a sweep writes to SWEEP_DIR/k unless `hydra.sweep.subdir` says otherwise, so an
    earlier sweep's job 0 there means this sweep would overwrite that sweep's jobs one by one."""
    if OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"] != "${hydra.job.num}":
        return
    first_job = Path(config.hydra.sweep.dir) / "0"
    status = _trained_run_status(first_job)
    if status is None:
        return
    raise OutputDirError(
        f"hydra.sweep.dir={config.hydra.sweep.dir} already holds an earlier sweep's jobs ({first_job}: "
        f"{status}); this sweep would overwrite them one by one. Choose another hydra.sweep.dir{FRESH_DIR}"
    )


def continue_earlier_job(config: DictConfig, job_dir: Path) -> DictConfig:
    """A sweep job's directory is fixed by the sweep, so a job started again (a requeued or
    pre-empted SLURM task, or a sweep run again under `hydra.sweep.subdir=${hydra.job.override_dirname}`)
    finds its own earlier run there, with `.hydra/` already rewritten by Hydra. The job goes on from
    that run's checkpoint, as `resume=` would: an unfinished run trains on, a completed one gives
    its result again, and a run of another config is refused."""
    status = _trained_run_status(job_dir)
    if status is None:
        return config
    if not (job_dir / "checkpoints" / "last.pt").is_file():
        raise OutputDirError(
            f"{job_dir} already holds a run ({status}) without its checkpoints/last.pt; this sweep job "
            "would overwrite its metrics and TensorBoard events. Choose another hydra.sweep.dir."
        )
    continued = config.copy()
    continued.resume = str(job_dir)
    return continued


def _require_resume_in_place(config: DictConfig) -> None:
    """A resumed run carries on in its own dir: elsewhere it would fork into one without the
    run's `.hydra/`, leaving the original forever unfinished."""
    try:
        own_dir = run_dir_of(checkpoint_path(config.resume))
    except ResumeError:
        return  # the run itself reports the bad path, with the same message as ever
    if Path(config.hydra.run.dir).resolve() != own_dir.resolve():
        raise ResumeError(
            f"resume={config.resume} continues that run in its own directory, {own_dir}, not in "
            f"hydra.run.dir={config.hydra.run.dir}. Drop hydra.run.dir from the command."
        )


def _require_runnable(config: DictConfig) -> None:
    """The checks the run itself starts with, on the config the task will get (Hydra's node
    removed, as Hydra does). A sweep's jobs are checked by the run alone: each job's values are
    known only once it starts, and its directory is part of the sweep."""
    from mnist_exp.accel.device import resolve_device  # imports torch, which the run needs anyway
    from mnist_exp.config.validation import validate

    task_config = copy.deepcopy(config)
    with read_write(task_config), open_dict(task_config):
        del task_config["hydra"]
    validate(task_config)
    resolve_device(task_config.trainer.device)


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
                _require_resume_in_place(config)
            _require_runnable(config)
            _require_writable(config.hydra.run.dir, "hydra.run.dir")
            _require_free(config.hydra.run.dir)
            if not config.resume:
                _require_new_run_dir(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        with _refusal_exits():
            _require_writable(config.hydra.sweep.dir, "hydra.sweep.dir")
            _require_new_sweep_dir(config)
