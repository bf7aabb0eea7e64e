"""TensorBoard events for one run, written into the run's own directory, laid out to be read at a
glance.

- Tags are named so that the Time Series page, which groups charts by a tag's first part in
  alphabetical order, shows accuracy and loss first (`accuracy/train`, `accuracy/val`,
  `accuracy/test`, `loss/...`), then `lr`. Every scalar's x-axis is the optimizer step,
  epoch-level ones at the epoch's last step. The final numbers are the curves' last points; only
  the run's duration (`summary/duration_s`) is a number of its own.
- The Custom Scalars page puts train, validation and test on one chart: loss, accuracy, learning
  rate, and the batch loss (`LAYOUT`).
- The Text page holds the command line and overrides, the run's provenance, and the config one
  section per entry.
- HParams: the group choices, the keys a sweep varies, a few core numbers, the parameter
  count, and how the run ended (status, epochs done) as columns; TensorBoard takes each scalar's
  last point (final test and validation accuracy and loss, the duration, ...) as the metrics.

A resumed run reopens the directory with `purge_step` one past its checkpoint, so events written
after that checkpoint by a killed process are dropped, not doubled.

HParams: `SummaryWriter.add_hparams` writes into a new timestamped sub-run with its own
experiment summary, which hides the columns of the other jobs of a sweep. Writing only the
session start/end summaries into the run's directory lets TensorBoard build the table from
every run under a logdir, with all their keys as columns.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

EPOCH_SCALARS = {  # tag -> the epoch record's key
    "accuracy/train": "train_acc",
    "accuracy/val": "val_acc",
    "accuracy/test": "test_acc",
    "loss/train": "train_loss",
    "loss/val": "val_loss",
    "loss/test": "test_loss",
    "lr": "lr",
}
BATCH_LOSS = "loss/train_batch"
TRAINING_DIGITS = "samples/train_digits"
SPLITS = ("train", "val", "test")
DURATION = "summary/duration_s"
LAYOUT = {  # Custom Scalars: one chart per title, each line a tag (matched as a regular expression)
    "Loss and accuracy": {
        "loss: train, val, test": ["Multiline", [f"^loss/{split}$" for split in SPLITS]],
        "accuracy %: train, val, test": ["Multiline", [f"^accuracy/{split}$" for split in SPLITS]],
    },
    "Training": {
        "learning rate": ["Multiline", ["^lr$"]],
        "batch loss": ["Multiline", [f"^{BATCH_LOSS}$"]],
    },
}
HPARAM_GROUPS = ("model", "optimizer", "scheduler", "data", "data/augment", "experiment")
CORE_KEYS = ("optimizer.lr", "optimizer.weight_decay", "data.batch_size", "trainer.epochs", "seed")


def dashboard_hparams(cfg: DictConfig, choices: dict[str, str], compared: list[str], params: int) -> dict:
    """The HParams columns: what tells runs apart (the group choices, and the `compared` keys: a
    sweep's swept keys, else those the command line set) and the few numbers people compare, not
    the whole config (which is in the Text page). A group among them shows its choice."""
    values: dict = {group: choices.get(group, "none") for group in HPARAM_GROUPS}
    for key in [*compared, *CORE_KEYS]:
        if key in choices:
            values.setdefault(key, choices[key])
            continue
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, bool | int | float | str):
            values[key] = value
    values["params"] = params
    return values


def provenance_markdown(attempt: dict) -> str:
    rows = [f"| {key} | `{value}` |" for key, value in attempt.items() if value not in (None, "")]
    return "\n".join(["| field | value |", "|---|---|", *rows])


def command_markdown(command: str, overrides: list[str]) -> str:
    listed = "\n".join(f"- `{override}`" for override in overrides) or "- (none: the defaults)"
    return f"**Command**\n\n    {command}\n\n**Overrides**\n\n{listed}"


def config_sections(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as YAML, one section per group (`model`, `trainer`, ...) and one for
    the root keys, so each is read on its own rather than as one long block; a list of settings
    (a model's conv blocks) takes one line per item."""
    config = OmegaConf.to_container(cfg, resolve=True)
    root = {key: value for key, value in config.items() if not isinstance(value, dict)}
    sections = {key: value for key, value in config.items() if isinstance(value, dict)}
    return {
        name: "```yaml\n" + readable_yaml(body) + "```" for name, body in {"run": root, **sections}.items()
    }


def readable_yaml(section: dict) -> str:
    """A key per line; a list or mapping of plain values on one line (a conv block per line)."""
    return "".join(
        yaml.safe_dump(
            {key: value},
            sort_keys=False,
            default_flow_style=None if isinstance(value, dict | list) else False,
        )
        for key, value in section.items()
    )


class TensorBoardLog:
    def __init__(self, run_dir: Path, purge_step: int | None = None):
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)

    def log_start(self, cfg: DictConfig, model: torch.nn.Module, example: torch.Tensor) -> None:
        """A new run's layout, config and model graph."""
        self.writer.add_custom_scalars(LAYOUT)
        for name, text in config_sections(cfg).items():
            self.writer.add_text(f"config/{name}", text, global_step=0)
        with warnings.catch_warnings():  # add_graph traces with torch.jit, which warns it is deprecated
            warnings.simplefilter("ignore", FutureWarning)
            self.writer.add_graph(model, example)

    def log_origin(self, attempt: dict, overrides: list[str], step: int) -> None:
        """Where this process's part of the run came from (a resumed run adds its own)."""
        self.writer.add_text("run/command", command_markdown(attempt["command"], overrides), step)
        self.writer.add_text("run/provenance", provenance_markdown(attempt), step)

    def log_training_digits(
        self, originals: torch.Tensor, augmented: torch.Tensor, mean: float, std: float
    ) -> None:
        """The same training digits as stored and as the model sees them, side by side in one
        grid: stored digits on the odd columns, their augmented draws beside them."""
        from torchvision.utils import make_grid

        pairs = torch.stack([originals, augmented], dim=1).flatten(0, 1)  # o1, a1, o2, a2, ...
        visible = (pairs.float().cpu() * std + mean).clamp(0, 1)
        grid = make_grid(visible, nrow=16, padding=2, pad_value=1.0)
        self.writer.add_image(TRAINING_DIGITS, grid, global_step=0)

    def log_batch_loss(self, step: int, loss: float) -> None:
        self.writer.add_scalar(BATCH_LOSS, loss, step)

    def log_epoch(self, record: dict, step: int) -> None:
        for tag, key in EPOCH_SCALARS.items():
            if key in record:
                self.writer.add_scalar(tag, record[key], step)
        self.writer.flush()

    def log_hparams(self, values: dict, duration_s: float, step: int) -> None:
        """The run's row in the HParams table, `values` as its columns; its metrics are the last
        point of each of its scalars, which TensorBoard finds itself."""
        _experiment, session_start, session_end = hparams(values, {})
        self.writer.file_writer.add_summary(session_start)
        self.writer.file_writer.add_summary(session_end)
        self.writer.add_scalar(DURATION, duration_s, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
