"""TensorBoard events for one run, written into the run's own directory.

Every scalar uses the optimizer step as its x-axis (epoch-level ones at the epoch's last step, with
`epoch` itself logged too). A resumed run reopens the directory with `purge_step` one past its
checkpoint, so events written after that checkpoint by a killed process are dropped, not doubled.

HParams: `SummaryWriter.add_hparams` writes into a new timestamped sub-run with its own
experiment summary, which hides the columns of the other jobs of a sweep. Writing only the
session start/end summaries into the run's directory lets TensorBoard build the table from
every run under a logdir, with all their keys as columns.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

EPOCH_SCALARS = {
    "epoch": "epoch",
    "train/loss": "train_loss",
    "train/acc": "train_acc",
    "val/loss": "val_loss",
    "val/acc": "val_acc",
    "test/loss": "test_loss",
    "test/acc": "test_acc",
    "lr": "lr",
}


def flat_hparams(cfg: DictConfig, choices: dict[str, str]) -> dict[str, float | int | str | bool]:
    """Group choices plus every scalar config value, keyed by dotted path (`optimizer.lr`)."""
    flat: dict[str, float | int | str | bool] = dict(choices)

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if str(key).startswith("_"):
                continue
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif isinstance(value, (bool, int, float, str)):
                flat[f"{prefix}{key}"] = value

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


class TensorBoardLog:
    def __init__(self, run_dir: Path, purge_step: int | None = None):
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)

    def log_start(self, cfg: DictConfig, model: torch.nn.Module, example: torch.Tensor) -> None:
        yaml = OmegaConf.to_yaml(cfg, resolve=True)
        self.writer.add_text("config", "```yaml\n" + yaml + "```", global_step=0)
        with warnings.catch_warnings():  # add_graph traces with torch.jit, which warns it is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            self.writer.add_graph(model, example)

    def log_training_digits(
        self, originals: torch.Tensor, augmented: torch.Tensor, mean: float, std: float
    ) -> None:
        """The same training digits as stored and as the model sees them, side by side in one grid:
        `data/train_digits` shows stored digits on the odd columns, their augmented draws beside them."""
        from torchvision.utils import make_grid

        pairs = torch.stack([originals, augmented], dim=1).flatten(0, 1)  # o1, a1, o2, a2, ...
        visible = (pairs.float().cpu() * std + mean).clamp(0, 1)
        grid = make_grid(visible, nrow=16, padding=2, pad_value=1.0)
        self.writer.add_image("data/train_digits", grid, global_step=0)

    def log_batch_loss(self, step: int, loss: float) -> None:
        self.writer.add_scalar("train/batch_loss", loss, step)

    def log_epoch(self, record: dict, step: int) -> None:
        for tag, key in EPOCH_SCALARS.items():
            if key in record:
                self.writer.add_scalar(tag, record[key], step)
        self.writer.flush()

    def log_hparams(self, values: dict, metrics: dict[str, float], step: int) -> None:
        _experiment, session_start, session_end = hparams(values, metrics)
        self.writer.file_writer.add_summary(session_start)
        self.writer.file_writer.add_summary(session_end)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()
