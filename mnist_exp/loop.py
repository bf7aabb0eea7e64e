"""One training epoch and one evaluation pass over tensors already on the device.

Loss and correct counts accumulate as device tensors and are read once at the end, so a GPU
is never made to wait for the host inside the loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mnist_exp.optim import Schedule


def train_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    on_batch: Callable[[torch.Tensor], None] | None = None,
) -> tuple[float, float]:
    """Train on `images[order]` in batches; returns (mean loss, accuracy in percent).

    `schedule.after_batch()` follows every optimizer step; `on_batch` receives each batch's
    detached loss for logging and decides itself whether to read it (a read syncs the device).
    """
    model.train()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        inputs, targets = images[index], labels[index]
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.after_batch()
        loss = loss.detach()
        loss_sum += loss * len(index)
        correct += (logits.argmax(1) == targets).sum()
        if on_batch is not None:
            on_batch(loss)
    return loss_sum.item() / len(order), 100.0 * correct.item() / len(order)


@torch.inference_mode()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    """Mean loss and accuracy in percent, with the model in eval mode (BatchNorm running stats)."""
    model.eval()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    for start in range(0, len(labels), batch_size):
        inputs, targets = images[start : start + batch_size], labels[start : start + batch_size]
        logits = model(inputs)
        loss_sum += F.cross_entropy(logits, targets, reduction="sum")
        correct += (logits.argmax(1) == targets).sum()
    return loss_sum.item() / len(labels), 100.0 * correct.item() / len(labels)
