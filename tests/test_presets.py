"""Every preset runs for any positive number of epochs: what depends on the run's length (the
clean final epochs, the schedule's length) adapts instead of refusing a short try."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import mnist_exp
from mnist_exp.cli.checks import check_config
from mnist_exp.data.augment import augments_epoch
from mnist_exp.data.tensors import DeviceDataset
from mnist_exp.engine.state import TrainingState
from mnist_exp.engine.trainer import Trainer

CPU = torch.device("cpu")
PRESETS = sorted(
    path.stem for path in (Path(mnist_exp.__file__).parent / "conf" / "experiment").glob("*.yaml")
)


def synthetic_data(train: int = 64, test: int = 32) -> DeviceDataset:
    """Digit-shaped noise: what is checked is that a preset's run goes through, not what it learns."""
    generator = torch.Generator().manual_seed(0)

    def images(count: int) -> torch.Tensor:
        return torch.randn(count, 1, 28, 28, generator=generator)

    def labels(count: int) -> torch.Tensor:
        return torch.randint(0, 10, (count,), generator=generator)

    no_split = torch.empty(0, 1, 28, 28)
    return DeviceDataset(images(train), labels(train), no_split, labels(0), images(test), labels(test))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_for_one_epoch(compose_config, preset):
    cfg = compose_config(f"experiment={preset}", "trainer.epochs=1", "trainer.device=cpu")
    check_config(cfg)
    data = synthetic_data()
    state = TrainingState.fresh(cfg, CPU, len(data.train_labels))
    trainer = Trainer(cfg, state, data, CPU)

    assert trainer.train_epoch(1, stop_requested=lambda: False, on_step=lambda _state, _loss: None)
    record = trainer.evaluate(1, earlier=[])

    assert state.epoch == 1 and state.step == math.ceil(64 / cfg.data.batch_size)
    assert math.isfinite(record["train_loss"]) and math.isfinite(record["test_loss"])


def test_a_preset_with_clean_final_epochs_tried_for_fewer_epochs_trains_them_all_clean(compose_config):
    cfg = compose_config("experiment=small_7k", "trainer.epochs=1")
    assert cfg.data.augment.clean_final_epochs == 2
    check_config(cfg)
    assert not augments_epoch(1, epochs=1, clean_final_epochs=2)
