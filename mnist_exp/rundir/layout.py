"""The names of a run directory's files: every other module asks here rather than spelling them.

RUN_DIR/
  .hydra/config.yaml, overrides.yaml   what Hydra composed, and the command line's overrides
  checkpoints/last.pt                  the training state after the last finished epoch
  checkpoints/best.pt                  with data.val_size only: the epoch with the best
                                       validation accuracy
  metrics.json                         status, per-epoch history and headline numbers
  provenance.json                      code, versions, machine, command and times of each
                                       process that trained here
  confusion.json                       the final test predictions' confusion matrix
  error.txt                            why a sweep's job failed (written by the sweep callback)
  train.log, events.out.tfevents.*     the console's lines, and TensorBoard's events
  .lock                                held by the one process training here
  eval/<checkpoint>_<dataset>/         what mnist-exp-eval wrote: evaluation.json, confusion_*
"""

from __future__ import annotations

import re
from pathlib import Path

HYDRA_DIR = ".hydra"
METRICS = "metrics.json"
PROVENANCE = "provenance.json"
CONFUSION = "confusion.json"
ERROR = "error.txt"
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
LAST, BEST = "last.pt", "best.pt"
EVAL = "eval"
EVALUATION = "evaluation.json"

# What Hydra's override grammar takes unquoted in a path; a sweep dir named by
# `${hydra.job.override_dirname}` has '=' and ',' in it, which it does not.
PLAIN_PATH = re.compile(r"[\w./:@%+~-]+")


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / LAST


def best_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / BEST


def hydra_file(run_dir: Path, name: str) -> Path:
    """`config.yaml` or `overrides.yaml` as Hydra saved them for the run."""
    return Path(run_dir) / HYDRA_DIR / name


def run_dir_of(checkpoint: Path) -> Path:
    """The run directory a checkpoint file belongs to."""
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else checkpoint.parent


def is_run_dir(path: Path) -> bool:
    """A run has written metrics.json, or Hydra has made its `.hydra/`: a run that died before its
    first epoch finished is still a run."""
    return (path / METRICS).is_file() or (path / HYDRA_DIR).is_dir()


def resume_command(run_dir: str | Path) -> str:
    """The command that continues the run in `run_dir`, quoted for Hydra and the shell where the
    path needs it, so that it can be pasted as printed."""
    path = str(run_dir)
    override = f"resume={path}" if PLAIN_PATH.fullmatch(path) else f"\"resume='{path}'\""
    return f"python -m mnist_exp {override}"
