"""One training epoch and one evaluation pass over tensors already on the device.

Loss and correct counts accumulate as device tensors and are read once at the end, so a GPU
is never made to wait for the host inside the loop. An epoch can stop at any batch boundary and
be finished later from its `EpochProgress`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_exp.engine.optim import Schedule


@dataclass
class EpochProgress:
    """Where an epoch stands: its shuffled order, the next batch, and the sums so far."""

    order: torch.Tensor
    lr: float
    next_batch: int = 0
    loss_sum: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    seconds: float = 0.0

    def __post_init__(self):
        device = self.order.device
        if self.loss_sum is None:
            self.loss_sum = torch.zeros((), device=device)
        if self.correct is None:
            self.correct = torch.zeros((), dtype=torch.long, device=device)

    def state_dict(self) -> dict:
        return {
            key: getattr(self, key) for key in ("order", "lr", "next_batch", "loss_sum", "correct", "seconds")
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> EpochProgress:
        moved = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in state.items()}
        return cls(**moved)

    def mean_loss_and_accuracy(self) -> tuple[float, float]:
        """Over the whole epoch: call once it has finished."""
        return self.loss_sum.item() / len(self.order), 100.0 * self.correct.item() / len(self.order)


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets, inputs)


def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    """The plain training loss, called as every training loss is: (logits, targets, inputs)."""

    def loss(logits: torch.Tensor, targets: torch.Tensor, _inputs: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)

    return loss


StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # -> (loss, correct)


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    autocast: Callable[[], contextlib.AbstractContextManager],
    scaler: torch.amp.GradScaler | None,
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update on one batch; returns its detached loss and correct count, both on the device."""
    with autocast():
        logits = model(inputs)
        loss = loss_fn(logits, targets, inputs)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss.detach(), (logits.argmax(1) == targets).sum()


def train_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    progress: EpochProgress,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    on_batch: Callable[[torch.Tensor], None] | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    scaler: torch.amp.GradScaler | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss_fn: LossFn | None = None,
    graphed_step: StepFn | None = None,
) -> bool:
    """Train on `images[progress.order]` from `progress.next_batch`; False if stopped early.

    `augment` transforms each batch of inputs (labels untouched); `loss_fn(logits, targets, inputs)`
    is the loss, cross-entropy when None (`mnist_exp.engine.distill`). `graphed_step`, when given, takes
    each step instead (`mnist_exp.accel.graph_step`, which was built with the same model, optimizer and
    loss). `schedule.after_batch()` follows every optimizer step; `on_batch` receives each batch's
    detached loss for logging and decides itself whether to read it (a read syncs the device).
    """
    loss_fn = loss_fn or cross_entropy()
    take_step = graphed_step or functools.partial(optimizer_step, model, optimizer, loss_fn, autocast, scaler)
    model.train()
    starts = range(progress.next_batch * batch_size, len(progress.order), batch_size)
    for start in starts:
        if stop_requested():
            return False
        index = progress.order[start : start + batch_size]
        inputs, targets = images[index], labels[index]
        if augment is not None:
            inputs = augment(inputs)
        loss, correct = take_step(inputs, targets)
        schedule.after_batch()
        progress.loss_sum += loss * len(index)
        progress.correct += correct
        progress.next_batch += 1
        if on_batch is not None:
            on_batch(loss)
    return True


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """Float logits [N, classes], with the model in eval mode (BatchNorm running stats)."""
    model.eval()
    batches = []
    for start in range(0, len(images), batch_size):
        with autocast():
            batches.append(model(images[start : start + batch_size]).float())
    return torch.cat(batches)


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in percent."""
    loss = F.cross_entropy(logits, labels, reduction="sum").item() / len(labels)
    return loss, 100.0 * (logits.argmax(1) == labels).sum().item() / len(labels)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[float, float]:
    """Mean loss and accuracy in percent, with the model in eval mode (BatchNorm running stats)."""
    return loss_and_accuracy(predict_logits(model, images, batch_size, autocast), labels)
