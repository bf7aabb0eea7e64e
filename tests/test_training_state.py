"""The training state is one object: saved mid-epoch and loaded into a fresh one, it trains on
exactly as the state it was saved from (model, optimizer, schedule, weight average, random
streams and the unfinished epoch alike)."""

from __future__ import annotations

import io

import torch

from mnist_exp.data.augment import RandomWarp
from mnist_exp.engine.loop import train_epoch
from mnist_exp.engine.state import TrainingState
from tests.conftest import plain_step

CPU = torch.device("cpu")
IMAGES, BATCH = 96, 16  # six steps an epoch


def tiny_config(compose_config):
    return compose_config(
        "model.blocks=[{channels:4,pool:true},{channels:8}]", "model.dropout=0.2", "scheduler=onecycle",
        "trainer.epochs=2", "trainer.ema_decay=0.9", f"data.batch_size={BATCH}", "seed=3",
    )  # fmt: skip


def train(state: TrainingState, data, steps_left: int | None = None) -> None:
    """Epochs from where `state` stands; with `steps_left`, stop after that many steps."""
    images, labels = data
    warp = RandomWarp(rotation=10, translate=0.1)
    taken = []

    def after_step(_loss):
        state.after_step()
        taken.append(1)

    for _ in state.remaining_epochs(2):
        finished = train_epoch(
            state.model, images, labels, state.start_epoch(), batch_size=BATCH,
            take_step=plain_step(state.model, state.optimizer), after_step=after_step,
            stop_requested=lambda: steps_left is not None and len(taken) == steps_left,
            augment=lambda batch: warp(batch, state.streams.augment, -0.42),
        )  # fmt: skip
        if not finished:
            return
        state.end_epoch()


def saved(state: TrainingState) -> dict:
    buffer = io.BytesIO()
    torch.save(state.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_state_saved_mid_epoch_and_loaded_afresh_trains_on_identically(compose_config):
    cfg = tiny_config(compose_config)
    data = torch.randn(IMAGES, 1, 28, 28), torch.randint(0, 10, (IMAGES,))
    original = TrainingState.fresh(cfg, CPU, IMAGES)
    train(original, data, steps_left=8)  # into epoch 2
    checkpoint = saved(original)
    train(original, data)

    restored = TrainingState.fresh(cfg, CPU, IMAGES)
    restored.load_state_dict(checkpoint)
    assert (restored.epoch, restored.step, restored.progress.next_batch) == (1, 8, 2)
    train(restored, data)

    assert (restored.epoch, restored.step) == (original.epoch, original.step) == (2, 12)
    for key, value in original.state_dict()["model"].items():
        assert torch.equal(restored.model.state_dict()[key], value), key
    for key, value in original.average.state_dict().items():
        assert torch.equal(restored.average.state_dict()[key], value), key
    assert restored.lr == original.lr


def test_a_fresh_state_draws_its_initial_weights_from_the_seed(compose_config):
    cfg = tiny_config(compose_config)
    first, again = TrainingState.fresh(cfg, CPU, IMAGES), TrainingState.fresh(cfg, CPU, IMAGES)
    other = TrainingState.fresh(compose_config("seed=4"), CPU, IMAGES)
    weights = first.model.state_dict()
    assert all(torch.equal(again.model.state_dict()[key], value) for key, value in weights.items())
    assert not torch.equal(other.model.state_dict()["0.weight"], weights["0.weight"])
