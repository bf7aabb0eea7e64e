"""A trained model back from a checkpoint, checked at every step before it is trusted.

The checkpoint is read with `weights_only=True` and the model rebuilt from the config stored in
it, but only when every `_target_` there names something in `mnist_exp.models`: a checkpoint is
data and must not be able to make this program call arbitrary code through Hydra.
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
from mnist_exp.rundir.layout import best_checkpoint, last_checkpoint

ALLOWED_TARGET_PREFIX = "mnist_exp.models."


@dataclass(frozen=True)
class TrainedModel:
    model: nn.Module  # in eval mode, on the CPU
    mean: float  # the normalisation it was trained with
    std: float
    path: Path
    config: dict  # the run's saved config
    status: str | None  # the run's status when the checkpoint was written ("completed", ...)


def checkpoint_file(path: Path) -> Path:
    """A checkpoint file as given, or a run directory's checkpoints/best.pt, else last.pt."""
    if path.is_dir():
        for candidate in (best_checkpoint(path), last_checkpoint(path)):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"{path} has no checkpoints/best.pt or checkpoints/last.pt (expected a run dir)"
        )
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    return path


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
    file = checkpoint_file(Path(path))
    state = read_checkpoint(file)
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
    return TrainedModel(model, mean, std, file, config, state.get("status"))
