"""Continuing an interrupted run in its own directory, refusing a command line that contradicts it.

Hydra picks the output directory before the task starts, so two resolvers used in config.yaml
point `hydra.run.dir` at the resumed run's directory and keep Hydra from overwriting its `.hydra/`.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mnist_exp.config.schema import saved_config_read_today
from mnist_exp.errors import ResumeError

# Keys that may differ from the checkpoint's: where and how fast it runs, not what it computes.
RESUMABLE_KEYS = ("trainer.device", "trainer.log_every_n_steps", "trainer.threads", "trainer.cuda_graphs")
# What `train` always reads back from a checkpoint to continue it; "ema" only where the run has a
# weight average, which a checkpoint written before the average existed does not.
TRAINING_STATE = (
    "model", "optimizer", "scheduler", "scaler", "step", "config", "status", "history", "duration_s", "rng",
    "epoch_progress",
)  # fmt: skip
# What an experiment preset decides, for comparing `experiment=...` with the checkpoint.
PRESET_KEYS = ("model", "optimizer", "scheduler", "data", "trainer.epochs", "seed")


def checkpoint_path(resume: str) -> Path:
    path = Path(resume).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise ResumeError(
            f"resume={resume}: no checkpoint at {path}. "
            "Give a run directory that holds checkpoints/last.pt, or a checkpoint file."
        )
    return path


def resume_checkpoint(resume: str) -> dict:
    """The training state `resume=` names, read as warily as a trained model's checkpoint."""
    from mnist_exp.inference.checkpoint import CheckpointError, read_checkpoint  # imports torch

    path = checkpoint_path(resume)
    try:
        state = read_checkpoint(path)
    except CheckpointError as error:
        raise ResumeError(f"resume={resume}: {error}") from None
    missing = [key for key in TRAINING_STATE if key not in state]
    if missing:
        raise ResumeError(
            f"resume={resume}: {path} is not an mnist-exp training checkpoint (it has no "
            f"{', '.join(missing)}). Give a run directory that holds checkpoints/last.pt."
        )
    return state


def run_dir_of(checkpoint: Path) -> Path:
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def register_resolvers() -> None:
    def run_dir(resume: str | None, default: str) -> str:
        try:
            return str(run_dir_of(checkpoint_path(resume))) if resume else default
        except ResumeError:
            return default  # the task reports the bad path itself

    OmegaConf.register_new_resolver("mnist_exp_run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver(
        "mnist_exp_output_subdir", lambda resume: None if resume else ".hydra", replace=True
    )


def _plain(value):
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def is_sweep_job_rerun(overrides: list[str]) -> bool:
    """A resume that no `resume=` asked for: a sweep job carrying on in its own dir
    (`preflight.continue_earlier_job`)."""
    return not any(override.lstrip("+~").startswith("resume=") for override in overrides)


def resumed_config(cfg: DictConfig, saved: dict, overrides: list[str]) -> DictConfig:
    """The checkpoint's config, plus those command-line overrides that do not change the run."""
    resumed = saved_config_read_today(saved)  # keys added since the checkpoint: off, as it ran
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
