"""Several runs that differ only in their seed, trained as one packed network.

Each run keeps its own `TrainingState` (model, optimizer, schedule, weight average, random
streams, epoch progress), as it would alone; the packed network, optimizer, schedule and weight
average do the training, and `write_back(k)` copies run k's share of them into its state before
that state is scored or saved. So every run is evaluated, checkpointed, resumed and predicted
from by the same code as a run alone, and its checkpoint loads as if it had run alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_exp.accel.precision import autocast, memory_format
from mnist_exp.engine.optim import Schedule, build_optimizer
from mnist_exp.engine.state import TrainingState
from mnist_exp.engine.trainer import Trainer
from mnist_exp.engine.weight_average import weight_average
from mnist_exp.packing.network import (
    PackedConvNet,
    copy_slice,
    copy_state,
    packed_tensor,
    per_copy_cross_entropy,
)

AfterStep = Callable[[torch.Tensor], None]  # receives the step's detached loss of every copy, [K]


def global_generator(device: torch.device) -> torch.Generator:
    """A generator in the state of torch's global one for `device`, which is where a run alone
    draws its dropout masks from after its model is built."""
    generator = torch.Generator(device=device)
    if device.type == "cuda":
        generator.set_state(torch.cuda.get_rng_state(device))
    else:
        generator.set_state(torch.get_rng_state())
    return generator


def set_global_generator(device: torch.device, generator: torch.Generator) -> None:
    """torch's global generator for `device` in `generator`'s state: what a run's checkpoint saves
    as its dropout stream."""
    if device.type == "cuda":
        torch.cuda.set_rng_state(generator.get_state(), device)
    else:
        torch.set_rng_state(generator.get_state())


def scratch_network(cfg: DictConfig, copies: int, device: torch.device) -> PackedConvNet:
    """`copies` fresh ConvNets of the config packed, for timing (their weights are thrown away)."""
    models = [instantiate(cfg.model) for _ in range(copies)]
    return PackedConvNet(models, [torch.Generator(device=device) for _ in range(copies)])


class PackedTraining:
    def __init__(self, cfg: DictConfig, states: Sequence[TrainingState], dropout: Sequence[torch.Generator]):
        """`states`: the runs' own, fresh or restored from their checkpoints at one same point;
        `dropout`: each run's dropout stream (`global_generator` once its state is made)."""
        self.states, self.dropout = list(states), list(dropout)
        self.device = states[0].device
        self.label_smoothing = cfg.trainer.label_smoothing
        self.autocast = functools.partial(autocast, cfg.trainer.precision, self.device)
        self.memory_format = memory_format(cfg.trainer)
        self.network = PackedConvNet([state.model for state in states], self.dropout)
        self.network.to(memory_format=self.memory_format)
        self.names = [name for name, _ in self.network.named_parameters()]
        self.optimizer = build_optimizer(cfg.optimizer, self.network)
        # In a run's own order (TrainingState.load_state_dict): a new schedule sets the learning
        # rate, then the runs' optimizer state sets it back to where they are.
        self.schedule = Schedule(cfg.scheduler, self.optimizer, states[0].steps_per_epoch)
        self.optimizer.load_state_dict(self._packed_optimizer_state())
        self.schedule.load_state_dict(states[0].schedule.state_dict())
        self.average = weight_average(self.network, cfg.trainer.ema_decay)
        if self.average is not None:
            self._pack_weight_average()
        self.retired: set[int] = set()  # runs that have ended: their copies train on, unread

    @classmethod
    def build(
        cls, cfgs: Sequence[DictConfig], saved: Sequence[dict | None], device: torch.device, train_count: int
    ) -> PackedTraining:
        """The runs' states, each made (and restored) as its run alone makes it, then packed."""
        states, dropout = [], []
        for cfg, checkpoint in zip(cfgs, saved, strict=True):
            state = TrainingState.fresh(cfg, device, train_count)
            if checkpoint:
                state.load_state_dict(checkpoint)
            states.append(state)
            dropout.append(global_generator(device))
        return cls(cfgs[0], states, dropout)

    @property
    def copies(self) -> int:
        return len(self.states)

    def _packed_optimizer_state(self) -> dict:
        """The runs' optimizer states (empty for fresh runs) as one for the packed parameters."""
        per_copy = [state.optimizer.state_dict() for state in self.states]
        packed = {}
        for index, moments in per_copy[0]["state"].items():
            name = self.names[index]
            packed[index] = {
                key: packed_tensor(self.network, name, [run["state"][index][key] for run in per_copy])
                if _is_per_parameter(value)
                else value
                for key, value in moments.items()
            }
        return {"state": packed, "param_groups": per_copy[0]["param_groups"]}

    def _pack_weight_average(self) -> None:
        averaged = [state.average.module.state_dict() for state in self.states]
        with torch.no_grad():
            for name, tensor in self.average.module.state_dict().items():
                tensor.copy_(packed_tensor(self.network, name, [run[name] for run in averaged]))
            self.average.n_averaged.copy_(self.states[0].average.n_averaged)

    def train_epoch(
        self,
        trainers: Sequence[Trainer],
        epoch: int,
        batch_size: int,
        stop_requested: Callable[[], bool],
        after_step: AfterStep,
    ) -> bool:
        """Train epoch `epoch` (from 1) of every run to its end, each on its own batches in its own
        order and augmented from its own stream, or until a stop is requested (then False)."""
        for k in self.retired:
            self.states[k].progress = None  # a new order each epoch; it is never saved again
        progress = [state.start_epoch() for state in self.states]
        first = progress[min(set(range(self.copies)) - self.retired)]
        augment = [trainer.augment if trainer.augments(epoch) else None for trainer in trainers]
        images, labels = trainers[0].data.train_images, trainers[0].data.train_labels
        self.network.train()
        for start in range(first.next_batch * batch_size, len(first.order), batch_size):
            if stop_requested():
                return False
            indices = [run.order[start : start + batch_size] for run in progress]
            inputs = [images[index] for index in indices]
            inputs = [warp(batch) if warp else batch for warp, batch in zip(augment, inputs, strict=True)]
            targets = torch.stack([labels[index] for index in indices], dim=1)
            losses, correct = self.step(torch.cat(inputs, dim=1), targets)
            for k, run in enumerate(progress):
                run.loss_sum += losses[k] * len(indices[k])
                run.correct += correct[k]
                run.next_batch += 1
            self._after_step()
            after_step(losses)
        return True

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One update of every copy: `inputs` [N, K, H, W], `targets` [N, K]; returns each copy's
        detached loss and correct count, [K] each, on the device."""
        with self.autocast():
            logits = self.network(inputs.contiguous(memory_format=self.memory_format))
            losses = per_copy_cross_entropy(logits, targets, self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()
        return losses.detach(), (logits.argmax(2) == targets).sum(0)

    def _after_step(self) -> None:
        self.schedule.after_batch()
        if self.average is not None:
            self.average.update_parameters(self.network)
        lr = self.optimizer.param_groups[0]["lr"]
        for k, state in enumerate(self.states):
            if k in self.retired:
                continue
            state.step += 1
            state.optimizer.param_groups[0]["lr"] = lr  # what the run's console and errors show

    def retire(self, k: int) -> None:
        """Run k has ended (diverged, stopped early, finished): its state is no longer written to."""
        self.retired.add(k)

    def end_epoch(self) -> None:
        """After every run's `end_epoch`: the packed schedule moves on as theirs did."""
        self.schedule.after_epoch()

    def write_back(self, k: int) -> TrainingState:
        """Run k's state as it would be alone: its weights, optimizer moments, schedule, weight
        average and dropout stream copied out of the packed ones."""
        state = self.states[k]
        state.model.load_state_dict(copy_state(self.network, k))
        state.optimizer.load_state_dict(self._copy_optimizer_state(k))
        # Its own scheduler steps at the epoch's end, as a run alone's does; torch would warn that
        # this optimizer never stepped itself, for want of the flag its step() sets.
        state.optimizer._opt_called = True
        state.schedule.load_state_dict(self.schedule.state_dict())
        if self.average is not None:
            state.average.module.load_state_dict(copy_state(self.average.module, k))
            state.average.n_averaged.copy_(self.average.n_averaged)
        set_global_generator(self.device, self.dropout[k])
        return state

    def _copy_optimizer_state(self, k: int) -> dict:
        packed = self.optimizer.state_dict()
        return {
            "state": {
                index: {
                    key: copy_slice(self.network, self.names[index], value, k)
                    if _is_per_parameter(value)
                    else value
                    for key, value in moments.items()
                }
                for index, moments in packed["state"].items()
            },
            "param_groups": packed["param_groups"],
        }


def _is_per_parameter(value) -> bool:
    """An optimizer's per-element state (moments, momentum), not a count such as Adam's `step`."""
    return isinstance(value, torch.Tensor) and value.dim() > 0
