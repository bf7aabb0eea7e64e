"""Networks described by data, so a new architecture is a new YAML file rather than a new class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

# The nonlinearity after each block's BatchNorm and each hidden layer (`model.activation`). SiLU
# and GELU are smooth: unlike ReLU, a unit whose inputs turn negative still passes a gradient,
# which matters most when a layer has only eight channels to lose.
ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
IMAGE_CHANNELS, CLASSES = 1, 10  # MNIST's and Fashion-MNIST's alike


def conv_block(
    in_channels: int,
    channels: int,
    kernel: int = 3,
    groups: int = 1,
    batch_norm: bool = True,
    relu: bool = True,
    pool: bool = False,
    activation: str = "relu",
) -> list[nn.Module]:
    """Conv (same padding) -> BatchNorm -> activation -> 2x2 max-pool, each optional but the conv.
    `relu` switches the activation on or off, whichever `activation` is (saved configs name it so).

    `groups` equal to the channels makes the conv depthwise; followed by a `kernel: 1` block, that
    is a depthwise-separable conv, which buys width for few parameters.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, kernel, padding=kernel // 2, groups=groups)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(channels))
    if relu:
        layers.append(ACTIVATIONS[activation]())
    if pool:
        layers.append(nn.MaxPool2d(2, 2))
    return layers


class ConvNet(nn.Sequential):
    """Conv blocks, global average pooling, optional dropout, then a small MLP head.

    This one shape covers the course notebook's V1, V2 and V3 layer for layer: V1 has a 100-unit hidden
    layer and no dropout, V2 and V3 go straight from the pooled channels to the classes.
    """

    def __init__(
        self,
        name: str,
        blocks: Sequence[Mapping],
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        activation: str = "relu",
    ):
        layers: list[nn.Module] = []
        width = IMAGE_CHANNELS
        for block in blocks:
            layers += conv_block(width, **block, activation=activation)
            width = block["channels"]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        for units in hidden:
            layers += [nn.Linear(width, units), ACTIVATIONS[activation]()]
            width = units
        layers.append(nn.Linear(width, CLASSES))
        super().__init__(*layers)
        self.name = name


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, str, int]]:
    """(layer, output shape, parameters) for each leaf layer, in call order, like torchsummary."""
    rows: list[tuple[str, str, int]] = []

    def record(module: nn.Module, _inputs, output) -> None:
        name = f"{type(module).__name__}-{len(rows) + 1}"
        shape = str([-1, *output.shape[1:]])
        rows.append((name, shape, sum(p.numel() for p in module.parameters())))

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [leaf.register_forward_hook(record) for leaf in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows
