"""A scratch copy of a run's training step, for timing it (`mnist_exp.accel.layout`): the run's
network, optimizer, batch size and precision on random data, never touching the run's own state."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from mnist_exp.accel.layout import LayoutChoice, choose_layout
from mnist_exp.accel.precision import autocast, memory_format
from mnist_exp.data.tensors import DeviceDataset, load_device_dataset
from mnist_exp.engine.optim import build_optimizer

IMAGE_SIZE, CLASSES = 28, 10


def probe_step(
    cfg: DictConfig, device: torch.device, make_network: Callable[[], nn.Module], copies: int = 1
) -> Callable[[], tuple[nn.Module, Callable[[torch.memory_format], None]]]:
    """`make_network()` builds the network to time (a run's ConvNet, or `copies` of it packed, whose
    inputs then have one channel per copy); the result builds it with its optimizer and returns it
    with a function that takes one training step in a given memory layout."""

    def make() -> tuple[nn.Module, Callable[[torch.memory_format], None]]:
        network = make_network().to(device)
        optimizer = build_optimizer(cfg.optimizer, network)
        batch = cfg.data.batch_size
        inputs = torch.randn(batch, copies, IMAGE_SIZE, IMAGE_SIZE, device=device)
        targets = torch.randint(0, CLASSES, (batch * copies,), device=device)

        def step(layout: torch.memory_format) -> None:
            with autocast(cfg.trainer.precision, device):
                logits = network(inputs.contiguous(memory_format=layout))
                loss = F.cross_entropy(logits.reshape(len(targets), -1), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return network, step

    return make


def load_in_chosen_layout(
    cfg: DictConfig, device: torch.device, make_step
) -> tuple[DeviceDataset, LayoutChoice]:
    """The run's data on `device`, in the memory layout `trainer.channels_last` names or, for
    `auto`, the one `make_step`'s timed scratch steps chose (the config is resolved to it). The
    data is loaded first: how many steps the run has decides whether timing is worth it."""
    data = load_device_dataset(cfg.data, device)
    steps = data.training_steps(cfg.trainer.epochs, cfg.data.batch_size)
    layout = choose_layout(cfg.trainer, device, make_step, steps)
    return data.in_layout(memory_format(cfg.trainer)), layout
