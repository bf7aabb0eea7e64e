"""Optimizer and learning-rate schedule from their config groups.

Both groups are `_partial_` configs completed here with what only the run knows: the model's
parameters and, for per-batch schedulers, how many batches an epoch has.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from hydra.utils import instantiate
from torch.optim import lr_scheduler

# Schedulers whose step() belongs after every batch; every other one is stepped once per epoch.
PER_BATCH = (lr_scheduler.OneCycleLR,)


def build_optimizer(optimizer_cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    return instantiate(optimizer_cfg)(model.parameters())


class Schedule:
    """The configured scheduler (or none), stepped at the right moment: per batch or per epoch."""

    def __init__(self, scheduler_cfg, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
        self.scheduler = None
        self.per_batch = False
        if scheduler_cfg:
            make = instantiate(scheduler_cfg)
            self.per_batch = issubclass(make.func, PER_BATCH)
            extra = {"steps_per_epoch": steps_per_epoch} if self.per_batch else {}
            if make.func is lr_scheduler.OneCycleLR:
                extra |= _warm_up_not_ending_on_the_first_step(make.keywords, steps_per_epoch)
            self.scheduler = make(optimizer, **extra)

    def after_batch(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self) -> None:
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()

    def state_dict(self) -> dict | None:
        return self.scheduler.state_dict() if self.scheduler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def _warm_up_not_ending_on_the_first_step(arguments: dict, steps_per_epoch: int) -> dict:
    """torch's OneCycleLR divides 0 by 0 when its warm-up ends on step 0, as `pct_start` x total
    steps = 1 makes it: a 1-epoch check on 500 images is 4 batches, and a quarter of them warm-up.
    A millionth less `pct_start` gives the schedule it means, step 0 at `max_lr`, without that."""
    total_steps = arguments.get("total_steps") or arguments["epochs"] * steps_per_epoch
    pct_start = arguments.get("pct_start", 0.3)  # OneCycleLR's default
    return {"pct_start": pct_start * (1 - 1e-6)} if pct_start * total_steps == 1 else {}


def construction_problems(cfg) -> Iterator[str]:
    """What torch itself refuses among the arguments a `+` key can add (`+optimizer.betas=[1.5,0.9]`),
    found by building the optimizer and scheduler once, for a stand-in layer."""
    try:
        optimizer = build_optimizer(cfg.optimizer, torch.nn.Linear(1, 1))
    except (ValueError, TypeError, ZeroDivisionError) as error:
        yield f"optimizer: {cfg.optimizer._target_} refuses these arguments: {error}"
        return
    try:
        Schedule(cfg.scheduler, optimizer, steps_per_epoch=1)  # torch checks arguments, not data size
    except (ValueError, TypeError, ZeroDivisionError) as error:
        yield f"scheduler: {cfg.scheduler._target_} refuses these arguments: {error}"
