"""Continuing an interrupted run in its own directory, refusing a command line that contradicts it.

Hydra picks the output directory before the task starts, so two resolvers used in config.yaml
point `hydra.run.dir` at the resumed run's directory and keep Hydra from overwriting its `.hydra/`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mnist_exp.config.schema import RetiredKeyError, saved_config_read_today
from mnist_exp.errors import ResumeError
from mnist_exp.fs.atomic import remove_stale_temporaries
from mnist_exp.rundir.job_names import register_job_dir_resolver
from mnist_exp.rundir.layout import HYDRA_DIR, last_checkpoint, run_dir_of
from mnist_exp.rundir.metrics import FINISHED

log = logging.getLogger("mnist_exp")

# Keys that may differ from the checkpoint's: where and how fast it runs, not what it computes.
RESUMABLE_KEYS = ("trainer.device", "trainer.log_every_n_steps", "trainer.threads", "trainer.cuda_graphs")
# What a checkpoint must hold to be continued ("ema" too, where the run has a weight average).
TRAINING_STATE = (
    "model", "optimizer", "scheduler", "scaler", "epoch", "step", "config", "status", "history", "duration_s",
    "rng", "epoch_progress",
)  # fmt: skip
RANDOM_STREAMS = ("torch", "cuda", "python", "shuffle", "augment")  # engine.rng.RandomStreams's
# What an experiment preset decides, for comparing `experiment=...` with the checkpoint.
PRESET_KEYS = ("model", "optimizer", "scheduler", "data", "trainer.epochs", "seed")


def checkpoint_path(resume: str) -> Path:
    path = Path(resume).expanduser()
    if path.is_dir():
        path = last_checkpoint(path)
    if not path.is_file():
        raise ResumeError(
            f"resume={resume}: no checkpoint at {path}. "
            "Give a run directory that holds checkpoints/last.pt, or a checkpoint file."
        )
    return path


def resume_checkpoint(resume: str) -> dict:
    """The training state `resume=` names, read as warily as a trained model's checkpoint."""
    from mnist_exp.rundir.checkpoints import CheckpointError, read_checkpoint  # imports torch

    path = checkpoint_path(resume)
    try:
        state = read_checkpoint(path)
    except CheckpointError as error:
        raise ResumeError(f"resume={resume}: {error}") from None
    missing = [key for key in TRAINING_STATE if key not in state]
    missing += [f"rng.{key}" for key in RANDOM_STREAMS if key not in (state.get("rng") or {})]
    if missing:
        raise ResumeError(
            f"resume={resume}: {path} is not an mnist-exp training checkpoint "
            f"(it has no {', '.join(missing)}). Give a run directory that holds checkpoints/last.pt."
        )
    return state


def register_resolvers() -> None:
    """The resolvers config.yaml names its output directories with: a resumed run's own, and a
    sweep job's (`mnist_exp.rundir.job_names`)."""

    def run_dir(resume: str | None, default: str) -> str:
        try:
            return str(run_dir_of(checkpoint_path(resume))) if resume else default
        except ResumeError:
            return default  # the task reports the bad path itself

    OmegaConf.register_new_resolver("mnist_exp_run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver(
        "mnist_exp_output_subdir", lambda resume: None if resume else HYDRA_DIR, replace=True
    )
    register_job_dir_resolver()


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def is_sweep_job_rerun(overrides: list[str]) -> bool:
    """A resume that no `resume=` asked for: a sweep job carrying on in its own dir
    (`preflight.continue_earlier_job`)."""
    return not any(override.lstrip("+~").startswith("resume=") for override in overrides)


def resumed_config(cfg: DictConfig, saved: dict, overrides: list[str]) -> DictConfig:
    """The checkpoint's config, plus those command-line overrides that do not change the run."""
    try:
        resumed = saved_config_read_today(saved)  # keys the checkpoint lacks: off, as it ran
    except RetiredKeyError as error:
        raise ResumeError(f"resume={cfg.resume}: {error}") from None
    fix = (
        "That run is another job's: give this sweep a hydra.sweep.dir of its own."
        if is_sweep_job_rerun(overrides)
        else "Drop it to continue that run, or start a new run without resume=."
    )
    for override in overrides:
        key, _, _value = override.lstrip("+~").partition("=")
        if key in RESUMABLE_KEYS:  # only what the command line names: the rest stays as saved
            OmegaConf.update(resumed, key, OmegaConf.select(cfg, key))
            continue
        if key == "resume" or key.startswith("hydra."):
            continue
        for compared in PRESET_KEYS if key == "experiment" else (key,):
            given, stored = OmegaConf.select(cfg, compared), OmegaConf.select(resumed, compared)
            if _plain(given) != _plain(stored):
                raise ResumeError(
                    f"{override} contradicts the checkpoint being resumed ({compared} there is "
                    f"{_plain(stored)!r}). {fix}"
                )
    resumed.resume = cfg.resume
    return resumed


def how_it_finished(saved: dict) -> str:
    if saved["status"] == "stopped_early":
        return f"that run stopped early after epoch {saved['epoch']}, as its trainer.early_stopping asked"
    return "that run already completed"


def resume_state(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> tuple[DictConfig, dict | None]:
    """(config, checkpoint) of the run `cfg.resume` names: its saved config with the command line's
    harmless overrides, and its training state. Without `resume=`, `(cfg, None)`.

    A finished run (completed, or stopped early) is refused, unless a sweep's job was started
    again in its own directory: then the checkpoint comes back as it is and its result stands."""
    if not cfg.resume:
        return cfg, None
    saved = resume_checkpoint(cfg.resume)
    cfg = resumed_config(cfg, saved["config"], overrides)
    sweep_job_rerun = is_sweep_job_rerun(overrides)
    if saved["status"] in FINISHED:
        if not sweep_job_rerun:
            raise ResumeError(f"resume={cfg.resume}: {how_it_finished(saved)}; there is nothing to resume.")
        log.info("%s holds this job's %s run: its result stands, not trained again", run_dir, saved["status"])
        return cfg, saved
    if sweep_job_rerun:
        log.info("Continuing the unfinished run (%s) this job left in %s", saved["status"], run_dir)
    log.info("Resuming %s from epoch %d, step %d", run_dir, len(saved["history"]) + 1, saved["step"])
    remove_stale_temporaries(run_dir)
    return cfg, saved
