"""K copies of one ConvNet as one network: the seeds of a sweep trained side by side in one process.

A small CNN's 8-32-channel kernels use a fraction of a CPU or GPU. Packed, copy k's conv channels
are slice k of a K-times-wider grouped conv that sees only copy k's input channels, its BatchNorm
channels are its own, and its head is one slice of a batched matrix product: one kernel launch
does the work of K, and no number crosses from one copy to another.

The input is [N, K, H, W], copy k's images in channel k (each copy its own batch, in its own
order); the output is [N, K, classes]. With each copy's loss the mean over its own batch, the sum
of the K losses gives each copy the gradients it would get alone, and elementwise optimizers
(Adam, AdamW, SGD) then take each copy's own step. Dropout draws each copy's mask from that copy's
generator, as its run alone draws from torch's global one, so a copy seeded like an unpacked run
starts from the same weights and, on the CPU, drops the same units.

`mnist_exp.packing.training` trains it; `tests/test_packed.py` holds it to runs alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mnist_exp.models import ConvNet


class PackedLinear(nn.Module):
    """K linear layers, one per copy: [N, K * in] -> [N, K * out]."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.copies = len(layers)
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))  # [K, out, in]
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]))  # [K, out]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        per_copy = inputs.view(len(inputs), self.copies, -1)  # [N, K, in]
        outputs = torch.einsum("nki,koi->nko", per_copy, self.weight) + self.bias
        return outputs.reshape(len(inputs), -1)


class PackedDropout(nn.Module):
    """Dropout whose mask for copy k comes from `generators[k]`, drawn as `F.dropout` draws its
    own on the CPU (a Bernoulli mask over the copy's [N, features], divided by the keep rate)."""

    def __init__(self, p: float, generators: list[torch.Generator]):
        super().__init__()
        self.p, self.generators = p, generators

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return inputs
        keep = 1 - self.p
        per_copy = inputs.view(len(inputs), len(self.generators), -1)
        masks = [
            torch.empty_like(per_copy[:, k]).bernoulli_(keep, generator=generator).div_(keep)
            for k, generator in enumerate(self.generators)
        ]
        return (per_copy * torch.stack(masks, dim=1)).reshape(inputs.shape)


def packed_layer(layers: list[nn.Module], generators: list[torch.Generator]) -> nn.Module:
    """One layer doing the work of the copies' `layers` (the same layer of each copy)."""
    first, copies = layers[0], len(layers)
    if isinstance(first, nn.Conv2d):
        packed = nn.Conv2d(
            first.in_channels * copies, first.out_channels * copies, first.kernel_size,
            padding=first.padding, groups=first.groups * copies, bias=first.bias is not None,
        )  # fmt: skip
        return with_parameters(packed, layers)
    if isinstance(first, nn.BatchNorm2d):
        packed = nn.BatchNorm2d(first.num_features * copies, eps=first.eps, momentum=first.momentum)
        packed = with_parameters(packed, layers)
        packed.num_batches_tracked.copy_(first.num_batches_tracked)
        return packed
    if isinstance(first, nn.Linear):
        return PackedLinear(layers)
    if isinstance(first, nn.Dropout):
        return PackedDropout(first.p, generators)
    return first  # activation, pooling, flatten: the same for every channel


def with_parameters(packed: nn.Module, layers: list[nn.Module]) -> nn.Module:
    """`packed`'s parameters and buffers (but the step counter) as the copies' concatenated."""
    with torch.no_grad():
        for name, tensor in [*packed.named_parameters(), *packed.named_buffers()]:
            if name != "num_batches_tracked":
                tensor.copy_(torch.cat([getattr(layer, name) for layer in layers]))
    return packed


class PackedConvNet(nn.Sequential):
    """The copies of one ConvNet config (differing only in their weights) packed as one network."""

    def __init__(self, copies: list[ConvNet], generators: list[torch.Generator]):
        if len(generators) != len(copies):
            raise ValueError(f"{len(copies)} copies need as many dropout generators, not {len(generators)}")
        super().__init__(*(packed_layer(list(layers), generators) for layers in zip(*copies, strict=True)))
        self.copies = len(copies)
        self.to(next(copies[0].parameters()).device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """[N, K, H, W] -> [N, K, classes]."""
        return super().forward(inputs).view(len(inputs), self.copies, -1)


def copy_state(packed: PackedConvNet, k: int) -> dict[str, torch.Tensor]:
    """Copy k's weights as its own ConvNet's state dict, for a checkpoint of its run alone."""
    return copy_slices(packed, k, {**dict(packed.named_parameters()), **dict(packed.named_buffers())})


def copy_slices(packed: PackedConvNet, k: int, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copy k's part of tensors shaped as the packed parameters and buffers they are named by (the
    weights themselves, their gradients, an optimizer's moments), named as its own ConvNet's."""
    return {name: copy_slice(packed, name, tensor, k) for name, tensor in tensors.items()}


def copy_slice(packed: PackedConvNet, name: str, tensor: torch.Tensor, k: int) -> torch.Tensor:
    """Copy k's part of `tensor`, shaped as the packed parameter or buffer `name`."""
    layer = packed.get_submodule(name.split(".")[0])
    if name.endswith("num_batches_tracked"):
        part = tensor  # one count for every copy
    elif isinstance(layer, PackedLinear):
        part = tensor[k]
    else:
        part = tensor.chunk(packed.copies)[k]
    return part.detach().clone()


def packed_tensor(packed: PackedConvNet, name: str, parts: list[torch.Tensor]) -> torch.Tensor:
    """The copies' `parts` of the packed parameter or buffer `name` put together: `copy_slice`'s
    inverse, for packing runs resumed from their own checkpoints."""
    layer = packed.get_submodule(name.split(".")[0])
    if name.endswith("num_batches_tracked"):
        return parts[0].clone()
    if isinstance(layer, PackedLinear):
        return torch.stack(parts)
    return torch.cat(parts)


def per_copy_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Each copy's mean loss on its own batch, [K], from logits [N, K, C] and targets [N, K]; their
    sum is what a packed step minimises."""
    losses = F.cross_entropy(
        logits.permute(0, 2, 1), targets, label_smoothing=label_smoothing, reduction="none"
    )
    return losses.mean(dim=0)
