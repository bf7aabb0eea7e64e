"""The training state: everything a run changes as it trains, saved and restored as one.

A checkpoint is this state's `state_dict()` plus what the recorder adds (config, status, history,
duration); `load_state_dict` takes such a checkpoint back, so a resumed run goes on exactly where
the saved one stopped, mid-epoch included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from mnist_exp.accel.precision import grad_scaler
from mnist_exp.engine.loop import EpochProgress
from mnist_exp.engine.optim import Schedule, build_optimizer
from mnist_exp.engine.rng import RandomStreams
from mnist_exp.engine.weight_average import WeightAverage, weight_average


@dataclass
class TrainingState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    average: WeightAverage | None  # what is evaluated and saved for prediction when on
    streams: RandomStreams
    device: torch.device
    train_count: int  # images per epoch, for each epoch's shuffled order
    steps_per_epoch: int
    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    progress: EpochProgress | None = None  # the epoch under way, if one has started

    @classmethod
    def fresh(cls, cfg: DictConfig, device: torch.device, train_count: int) -> TrainingState:
        """A new run's state: the model's initial weights come from `cfg.seed`."""
        streams = RandomStreams(cfg.seed, device)
        model = instantiate(cfg.model).to(device)
        optimizer = build_optimizer(cfg.optimizer, model)
        steps_per_epoch = math.ceil(train_count / cfg.data.batch_size)
        return cls(
            model=model,
            optimizer=optimizer,
            schedule=Schedule(cfg.scheduler, optimizer, steps_per_epoch),
            scaler=grad_scaler(cfg.trainer.precision, device),
            average=weight_average(model, cfg.trainer.ema_decay),
            streams=streams,
            device=device,
            train_count=train_count,
            steps_per_epoch=steps_per_epoch,
        )

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def remaining_epochs(self, epochs: int) -> range:
        """The numbers (from 1) of the epochs still to train, the unfinished one first."""
        return range(self.epoch + 1, epochs + 1)

    def start_epoch(self) -> EpochProgress:
        """The epoch under way: the unfinished one a checkpoint held, else a new shuffled order."""
        if self.progress is None:
            order = torch.randperm(self.train_count, generator=self.streams.shuffle)
            self.progress = EpochProgress(order=order.to(self.device), lr=self.lr)
        return self.progress

    def after_step(self) -> None:
        """What follows every optimizer step: the per-batch schedule, the count, the average."""
        self.schedule.after_batch()
        self.step += 1
        if self.average is not None:
            self.average.update_parameters(self.model)

    def end_epoch(self) -> None:
        self.schedule.after_epoch()
        self.epoch += 1
        self.progress = None

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.average.state_dict() if self.average is not None else None,
            "epoch": self.epoch,
            "step": self.step,
            "rng": self.streams.state_dict(),
            "epoch_progress": self.progress.state_dict() if self.progress is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            self.average.load_state_dict(state["ema"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.streams.load_state_dict(state["rng"])
        saved = state["epoch_progress"]
        self.progress = EpochProgress.from_state_dict(saved, self.device) if saved else None
