"""Checks that an output location is writable, free, and not another run's, before Hydra writes.

Hydra writes into a directory that already holds a run without a word, so a new run or sweep
pointed at an earlier one's directory is refused, and so is a resume pointed away from its run's
own directory. `mnist_exp.cli.preflight` runs these before Hydra creates anything.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mnist_exp.errors import OutputDirError, ResumeError
from mnist_exp.fs.atomic import is_out_of_space
from mnist_exp.rundir.job_names import NUMBERED_SUBDIRS, job_dirs_numbered
from mnist_exp.rundir.layout import last_checkpoint, resume_command, run_dir_of
from mnist_exp.rundir.lock import sole_trainer
from mnist_exp.rundir.metrics import FINISHED
from mnist_exp.rundir.readers import read_metrics
from mnist_exp.rundir.resume import checkpoint_path

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


def require_writable(directory: str, key: str) -> None:
    problem = writable_problem(Path(directory))
    if problem:
        fix = "Free disk space there, or" if is_out_of_space(problem) else "Run from a writable directory or"
        raise OutputDirError(
            f"the output directory {directory} cannot be written ({problem.strerror or problem}). "
            f"{fix} set {key}=/a/writable/path."
        )


def require_free(run_dir: str) -> None:
    """Hydra rewrites `.hydra/` in the run dir before the run's own lock is taken, so a run
    pointed at a directory another process trains in is stopped here, before that."""
    with sole_trainer(Path(run_dir)):
        pass


def trained_run_status(run_dir: Path) -> str | None:
    """The status of a run that trained in `run_dir` (at least one epoch saved), else None: a run
    that ended before its first epoch did leaves nothing to lose, nor to go on from."""
    metrics, problem = read_metrics(run_dir)
    saved = last_checkpoint(run_dir).is_file()
    if problem:
        return "no metrics.json" if saved else None
    if not saved and not metrics.get("history"):
        return None
    return metrics.get("status") or "running"


def require_new_run_dir(run_dir: str) -> None:
    status = trained_run_status(Path(run_dir))
    if status is None:
        return
    carry_on = "" if status in FINISHED else f" Continue it with: {resume_command(run_dir)}."
    raise OutputDirError(
        f"{run_dir} already holds a run ({status}); a new run there would overwrite its checkpoints, "
        f"metrics and TensorBoard events.{carry_on} For a new run, choose another hydra.run.dir{FRESH_DIR}"
    )


def require_new_sweep_dir(config: DictConfig) -> None:
    """Job k of a sweep writes to SWEEP_DIR/k_<its overrides> (SWEEP_DIR/k in older sweeps) unless
    `hydra.sweep.subdir` says otherwise, so an earlier sweep's job 0 there, whatever its overrides,
    means this sweep's jobs would sit among that sweep's, numbered alike."""
    if OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"] not in NUMBERED_SUBDIRS:
        return
    for first_job in job_dirs_numbered(Path(config.hydra.sweep.dir), 0):
        status = trained_run_status(first_job)
        if status is not None:
            raise OutputDirError(
                f"hydra.sweep.dir={config.hydra.sweep.dir} already holds an earlier sweep's jobs "
                f"({first_job}: {status}); this sweep would mix its jobs with them. "
                f"Choose another hydra.sweep.dir{FRESH_DIR}"
            )


def continue_earlier_job(config: DictConfig, job_dir: Path) -> DictConfig:
    """A sweep job's directory is fixed by the sweep, so a job started again (a requeued or
    pre-empted SLURM task, or a sweep run again under `hydra.sweep.subdir=${hydra.job.override_dirname}`)
    finds its own earlier run there, with `.hydra/` already rewritten by Hydra. The job goes on from
    that run's checkpoint, as `resume=` would: an unfinished run trains on, a finished one
    (completed, or stopped early) gives its result again, and a run of another config is refused."""
    status = trained_run_status(job_dir)
    if status is None:
        return config
    if not last_checkpoint(job_dir).is_file():
        raise OutputDirError(
            f"{job_dir} already holds a run ({status}) without its checkpoints/last.pt; this sweep job "
            "would overwrite its metrics and TensorBoard events. Choose another hydra.sweep.dir."
        )
    continued = config.copy()
    continued.resume = str(job_dir)
    return continued


def require_resume_in_place(config: DictConfig) -> None:
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
