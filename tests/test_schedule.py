"""Optimizer x scheduler combinations step at the right moment through the real training loop and
the training state that steps the schedule."""

import math

import pytest
import torch

from mnist_exp.engine.loop import train_epoch
from mnist_exp.engine.optim import Schedule, build_optimizer
from mnist_exp.engine.state import TrainingState
from mnist_exp.models import ConvNet
from tests.conftest import plain_step

EPOCHS, SAMPLES, BATCH = 3, 40, 8  # 5 batches an epoch


def run_epochs(compose_config, optimizer, scheduler, **overrides):
    cfg = compose_config(
        f"optimizer={optimizer}",
        f"scheduler={scheduler}",
        f"trainer.epochs={EPOCHS}",
        f"data.batch_size={BATCH}",
        "model.blocks=[{channels:4,pool:true}]",
        *(f"{k}={v}" for k, v in overrides.items()),
    )
    state = TrainingState.fresh(cfg, torch.device("cpu"), train_count=SAMPLES)
    images, labels = torch.randn(SAMPLES, 1, 28, 28), torch.randint(0, 10, (SAMPLES,))
    lrs, batch_lrs = [], [state.lr]

    def step_then_record_next_batch_lr(_loss):
        state.after_step()
        batch_lrs.append(state.lr)

    for _ in state.remaining_epochs(EPOCHS):
        lrs.append(state.lr)
        train_epoch(
            state.model, images, labels, state.start_epoch(), batch_size=BATCH,
            take_step=plain_step(state.model, state.optimizer), after_step=step_then_record_next_batch_lr,
        )  # fmt: skip
        state.end_epoch()
    lrs.append(state.lr)
    return cfg, lrs, batch_lrs[:-1]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_no_scheduler_keeps_the_learning_rate(compose_config, optimizer):
    cfg, lrs, _ = run_epochs(compose_config, optimizer, "none")
    assert lrs == [cfg.optimizer.lr] * (EPOCHS + 1)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_cosine_steps_once_per_epoch(compose_config, optimizer):
    cfg, lrs, _ = run_epochs(compose_config, optimizer, "cosine")
    base = cfg.optimizer.lr
    expected = [base * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS + 1)]
    assert lrs == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_step_decays_every_step_size_epochs(compose_config, optimizer):
    cfg, lrs, _ = run_epochs(compose_config, optimizer, "step", **{"scheduler.step_size": 2})
    base, gamma = cfg.optimizer.lr, cfg.scheduler.gamma
    assert lrs == pytest.approx([base, base, base * gamma, base * gamma])


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_onecycle_steps_every_batch_and_ends_its_cycle_exactly(compose_config, optimizer):
    # OneCycleLR raises if stepped past epochs * steps_per_epoch, so finishing proves the count.
    cfg, _, batch_lrs = run_epochs(compose_config, optimizer, "onecycle")
    initial = cfg.scheduler.max_lr / cfg.scheduler.div_factor
    assert len(batch_lrs) == EPOCHS * SAMPLES // BATCH
    assert len(set(batch_lrs)) == len(batch_lrs), "a new learning rate for every batch"
    assert batch_lrs[0] == pytest.approx(initial)
    assert max(batch_lrs) == pytest.approx(cfg.scheduler.max_lr, rel=0.05)
    assert batch_lrs[-1] == pytest.approx(initial / cfg.scheduler.final_div_factor)


def test_onecycle_whose_warm_up_ends_on_the_first_step_starts_at_max_lr(compose_config):
    """pct_start x 15 steps = 1: torch alone divides 0 by 0 there, as a 1-epoch check on 500 images does."""
    pct_start = 1 / (EPOCHS * SAMPLES // BATCH)
    with pytest.raises(ZeroDivisionError):
        torch.optim.lr_scheduler.OneCycleLR(
            torch.optim.SGD([torch.zeros(1, requires_grad=True)]),
            max_lr=0.1,
            total_steps=15,
            pct_start=pct_start,
        )
    cfg, _, batch_lrs = run_epochs(compose_config, "adamw", "onecycle", **{"scheduler.pct_start": pct_start})
    assert batch_lrs[0] == pytest.approx(cfg.scheduler.max_lr)
    assert batch_lrs == sorted(batch_lrs, reverse=True)
    assert batch_lrs[-1] == pytest.approx(
        cfg.scheduler.max_lr / cfg.scheduler.div_factor / cfg.scheduler.final_div_factor
    )


def _momentum(opt: torch.optim.Optimizer) -> float:
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
@pytest.mark.parametrize("cycle", [True, False])
def test_onecycle_momentum_knobs_reach_the_optimizer(compose_config, optimizer, cycle):
    cfg = compose_config(
        f"optimizer={optimizer}", "scheduler=onecycle", f"trainer.epochs={EPOCHS}",
        f"scheduler.cycle_momentum={cycle}", "scheduler.base_momentum=0.7", "scheduler.max_momentum=0.97",
    )  # fmt: skip
    opt = build_optimizer(cfg.optimizer, ConvNet("tiny", [{"channels": 4, "pool": True}]))
    own = _momentum(opt)
    steps = EPOCHS * SAMPLES // BATCH
    schedule = Schedule(cfg.scheduler, opt, steps_per_epoch=SAMPLES // BATCH)
    momenta = [_momentum(opt)]
    for _ in range(steps - 1):
        opt.step()
        schedule.after_batch()
        momenta.append(_momentum(opt))
    if cycle:  # opposite the learning rate: high, down to base at the peak, back up
        assert momenta[0] == pytest.approx(0.97) and min(momenta) == pytest.approx(0.7, abs=0.02)
        assert momenta[-1] == pytest.approx(0.97, abs=1e-3)
    else:
        assert momenta == [own] * steps
