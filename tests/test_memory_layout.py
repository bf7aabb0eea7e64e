"""`trainer.channels_last=auto`: both layouts timed on a scratch step, the faster kept and recorded,
and the run's own random state untouched by the timing."""

from __future__ import annotations

import time

import pytest
import torch
from omegaconf import OmegaConf

from mnist_exp.accel.layout import ROUNDS, TIMED_STEPS, WARM_STEPS, WORTH_TIMING, choose_layout
from mnist_exp.engine.probe import probe_step

CPU = torch.device("cpu")


def trainer(**keys):
    return OmegaConf.create({"channels_last": "auto", "deterministic": False, **keys})


def fake_step(slow: torch.memory_format, calls: list):
    """A scratch step that draws from torch's global generator (as dropout does) and is slow in one layout."""

    def make():
        network = torch.nn.Conv2d(1, 2, 3)

        def step(layout):
            calls.append(layout)
            torch.rand(3)
            time.sleep(0.004 if layout == slow else 0.0005)

        return network, step

    return make


@pytest.mark.parametrize("slow, expected", [(torch.contiguous_format, True), (torch.channels_last, False)])
def test_auto_keeps_the_faster_layout_and_leaves_the_random_state_as_it_was(slow, expected):
    cfg, calls = trainer(), []
    torch.manual_seed(0)
    before = torch.get_rng_state()
    choice = choose_layout(cfg, CPU, fake_step(slow, calls), steps=WORTH_TIMING)
    assert torch.equal(torch.get_rng_state(), before), "the run's weights and dropout masks do not move"
    assert cfg.channels_last is expected and choice.channels_last is expected
    assert len(calls) == 2 * ROUNDS * (WARM_STEPS + TIMED_STEPS)
    assert calls[: WARM_STEPS + TIMED_STEPS] == [torch.contiguous_format] * (WARM_STEPS + TIMED_STEPS)
    timings = choice.record()["ms_per_step"]
    assert set(timings) == {"nchw", "channels_last"} and timings["nchw"] != timings["channels_last"]


def test_a_layout_slowed_in_most_of_its_rounds_still_wins_on_its_fastest_round():
    """Other work on the machine can only add time: channels_last, faster at heart but slowed in
    all rounds but the last (a median would pick NCHW), is still chosen."""
    per_round = WARM_STEPS + TIMED_STEPS
    calls = []

    def make():
        def step(layout):
            calls.append(layout)
            if layout == torch.contiguous_format:
                time.sleep(0.004)
            elif calls.count(torch.channels_last) <= (ROUNDS - 1) * per_round:
                time.sleep(0.010)  # a busy machine, in this layout's first rounds
            else:
                time.sleep(0.0005)

        return torch.nn.Conv2d(1, 2, 3), step

    choice = choose_layout(trainer(), CPU, make, steps=WORTH_TIMING)
    assert choice.channels_last is True
    timings = choice.record()["ms_per_step"]
    assert timings["channels_last"] < 2 < timings["nchw"], timings


@pytest.mark.parametrize("setting", [True, False])
def test_a_layout_set_in_the_config_is_kept_without_timing(setting):
    calls = []
    choice = choose_layout(
        trainer(channels_last=setting), CPU, fake_step(torch.channels_last, calls), WORTH_TIMING
    )
    assert choice.channels_last is setting and not calls and choice.ms_per_step is None


def test_deterministic_runs_take_nchw_without_timing():
    cfg, calls = trainer(deterministic=True), []
    assert (
        choose_layout(cfg, CPU, fake_step(torch.contiguous_format, calls), WORTH_TIMING).channels_last
        is False
    )
    assert cfg.channels_last is False and not calls


def test_a_run_too_short_to_repay_the_timing_takes_nchw_untimed():
    cfg, calls = trainer(), []
    choice = choose_layout(cfg, CPU, fake_step(torch.contiguous_format, calls), steps=WORTH_TIMING - 1)
    assert cfg.channels_last is False and not calls and choice.ms_per_step is None
    assert choice.record()["by"] == f"a run of {WORTH_TIMING - 1} training steps: NCHW, not timed"


def test_the_probe_takes_real_training_steps_of_the_runs_network_in_either_layout(compose_config):
    from hydra.utils import instantiate

    cfg = compose_config("model=tiny_5k", "data.batch_size=16")
    network, step = probe_step(cfg, CPU, lambda: instantiate(cfg.model))()
    before = [p.detach().clone() for p in network.parameters()]
    for layout in (torch.contiguous_format, torch.channels_last):
        network.to(memory_format=layout)
        step(layout)
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, network.parameters(), strict=True))


def test_a_dataset_moves_its_images_into_a_layout_and_counts_its_training_steps():
    from mnist_exp.data.tensors import DeviceDataset

    images, labels = torch.randn(300, 1, 6, 6), torch.arange(300) % 10
    data = DeviceDataset(images, labels, images[:0], labels[:0], images[:20], labels[:20])
    moved = data.in_layout(torch.channels_last)
    assert moved.train_images.stride() == (36, 1, 6, 1), "channels_last: the channel is the innermost"
    assert torch.equal(moved.train_images, images) and torch.equal(moved.test_images, images[:20])
    assert moved.train_labels is labels
    assert data.training_steps(epochs=3, batch_size=128) == 3 * 3, "a short last batch is a step"
