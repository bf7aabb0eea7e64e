"""A trained model back from a checkpoint, checked at every step before it is trusted.

The checkpoint is read with `weights_only=True` and the model rebuilt from the config stored in
it, but only when every `_target_` there names something in `mnist_exp.models`: a checkpoint is
data and must not be able to make this program call arbitrary code through Hydra.

A run directory means the model its run would report: `best.pt` where the run held a validation
split (the epoch with the best validation accuracy), else `last.pt`. A run without a validation
split written by an older version may hold a `best.pt` chosen by test accuracy; it is used only
when nothing else is there, and is labelled as such, since its test accuracy is optimistic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import HydraException
from hydra.utils import instantiate
from torch import nn

from mnist_exp.engine.weight_average import averaged_weights
from mnist_exp.rundir.checkpoints import CheckpointError, one_line, read_checkpoint
from mnist_exp.rundir.layout import BEST, best_checkpoint, last_checkpoint

ALLOWED_TARGET_PREFIX = "mnist_exp.models."


@dataclass(frozen=True)
class TrainedModel:
    model: nn.Module  # in eval mode, on the CPU
    mean: float  # the normalisation it was trained with
    std: float
    path: Path
    config: dict  # the run's saved config
    status: str | None  # the run's status when the checkpoint was written ("completed", ...)
    selected_on: str | None  # a best.pt's: "validation", or "test" (older runs); None for last.pt

    @property
    def description(self) -> str:
        """The checkpoint and how its epoch was chosen, for a reader of the output."""
        if self.selected_on == "test":
            return f"{self.path} (chosen on test accuracy by an older version: its test score is optimistic)"
        if self.selected_on == "validation":
            return f"{self.path} (the epoch with the best validation accuracy)"
        return str(self.path)


def selected_on(file: Path, state: dict) -> str | None:
    """How a best.pt's epoch was chosen: by validation accuracy where its run held a split."""
    if file.name != BEST:
        return None
    history = state.get("history") if isinstance(state.get("history"), list) else []
    return "validation" if any(isinstance(r, Mapping) and "val_acc" in r for r in history) else "test"


def read_chosen_checkpoint(path: Path) -> tuple[Path, dict]:
    """A checkpoint file as given, or the one a run directory's results come from, with its state."""
    if not path.is_dir():
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file or run directory")
        return path, read_checkpoint(path)
    best, last = best_checkpoint(path), last_checkpoint(path)
    if best.is_file():
        state = read_checkpoint(best)
        if selected_on(best, state) == "validation" or not last.is_file():
            return best, state
    if last.is_file():
        return last, read_checkpoint(last)
    raise CheckpointError(f"{path} has no checkpoints/last.pt or checkpoints/best.pt (expected a run dir)")


def targets(node) -> Iterator[str]:
    """Every `_target_` in a config tree."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "_target_":
                yield str(value)
            else:
                yield from targets(value)
    elif isinstance(node, list):
        for item in node:
            yield from targets(item)


def missing_keys(state: dict) -> list[str]:
    config = state.get("config") if isinstance(state.get("config"), Mapping) else {}
    model = config.get("model") if isinstance(config.get("model"), Mapping) else {}
    data = config.get("data") if isinstance(config.get("data"), Mapping) else {}
    expected = {
        "model": isinstance(state.get("model"), Mapping),
        "config": bool(config),
        "config.model._target_": "_target_" in model,
        "config.data.mean": isinstance(data.get("mean"), int | float),
        "config.data.std": isinstance(data.get("std"), int | float),
    }
    return [key for key, present in expected.items() if not present]


def build_model(file: Path, model_config: Mapping) -> nn.Module:
    refused = [target for target in targets(model_config) if not target.startswith(ALLOWED_TARGET_PREFIX)]
    if refused:
        raise CheckpointError(
            f"{file}: its model config asks for {refused[0]}; "
            f"only {ALLOWED_TARGET_PREFIX}* is built from a checkpoint"
        )
    try:
        model = instantiate(model_config)
    except (HydraException, TypeError, ValueError) as error:
        raise CheckpointError(f"{file}: its model config cannot be built ({one_line(error)})") from None
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"{file}: its model config builds a {type(model).__name__}, not a network")
    return model


def load_trained_model(path: Path) -> TrainedModel:
    file, state = read_chosen_checkpoint(Path(path))
    missing = missing_keys(state)
    if missing:
        raise CheckpointError(
            f"{file} is not an mnist-exp checkpoint: it lacks {', '.join(missing)} "
            "(expected a checkpoints/*.pt written by a training run)"
        )
    config = state["config"]
    model = build_model(file, config["model"])
    # With ema_decay on, the averaged weights are the ones the run evaluated and reported.
    weights = averaged_weights(state["ema"]) if isinstance(state.get("ema"), Mapping) else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(
            f"{file}: its weights do not fit the model its config describes ({one_line(error)})"
        ) from None
    model.eval()
    mean, std = float(config["data"]["mean"]), float(config["data"]["std"])
    return TrainedModel(model, mean, std, file, config, state.get("status"), selected_on(file, state))
