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

Autocast = Callable[[], contextlib.AbstractContextManager]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> loss
StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # -> (loss, correct)


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


def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    """The training loss; evaluation always scores plain cross-entropy."""
    return functools.partial(F.cross_entropy, label_smoothing=label_smoothing)


def optimizer_step(
    model: nn.Module,
    loss_fn: LossFn,
    autocast: Autocast,
    scaler: torch.amp.GradScaler | None,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update on one batch; returns its detached loss and correct count, both on the device.
    The optimizer comes after the fixed arguments, so a CUDA graph can bind its own."""
    with autocast():
        logits = model(inputs)
        loss = loss_fn(logits, targets)
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
    *,
    batch_size: int,
    take_step: StepFn,
    after_step: Callable[[torch.Tensor], None] = lambda _loss: None,
    stop_requested: Callable[[], bool] = lambda: False,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> bool:
    """Train on `images[progress.order]` from `progress.next_batch`; False if stopped early.

    `augment` transforms each batch of inputs (labels untouched); `take_step` updates the model on
    one batch; `after_step` receives each batch's detached loss and decides itself whether to read
    it (a read syncs the device).
    """
    model.train()
    for start in range(progress.next_batch * batch_size, len(progress.order), batch_size):
        if stop_requested():
            return False
        index = progress.order[start : start + batch_size]
        inputs, targets = images[index], labels[index]
        if augment is not None:
            inputs = augment(inputs)
        loss, correct = take_step(inputs, targets)
        progress.loss_sum += loss * len(index)
        progress.correct += correct
        progress.next_batch += 1
        after_step(loss)
    return True


@torch.inference_mode()
def predict_logits(
    model: nn.Module, images: torch.Tensor, batch_size: int, autocast: Autocast = contextlib.nullcontext
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
    autocast: Autocast = contextlib.nullcontext,
) -> tuple[float, float]:
    """Mean loss and accuracy in percent, with the model in eval mode (BatchNorm running stats)."""
    return loss_and_accuracy(predict_logits(model, images, batch_size, autocast), labels)
