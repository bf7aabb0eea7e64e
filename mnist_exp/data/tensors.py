"""The whole dataset as normalised tensors resident on the run's device.

A DataLoader that decodes PIL images and normalises them one sample at a time is the bottleneck
of a small CNN's training. Here every image is converted once, exactly as `ToTensor()` +
`Normalize()` would (x / 255, then (x - mean) / std), and batches are index slices of one tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from mnist_exp.data import ensure_named, load_split

# The validation split and the training subset are the same images whatever the run's seed,
# so the runs of a sweep stay comparable.
SPLIT_SEED = 0


@dataclass(frozen=True)
class DeviceDataset:
    train_images: torch.Tensor  # float32 [N, 1, 28, 28], normalised
    train_labels: torch.Tensor  # int64 [N]
    val_images: torch.Tensor  # empty unless data.val_size > 0
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    def in_layout(self, layout: torch.memory_format) -> DeviceDataset:
        """The images in the memory layout the network trains in (the labels need none)."""
        return replace(
            self,
            train_images=self.train_images.to(memory_format=layout),
            val_images=self.val_images.to(memory_format=layout),
            test_images=self.test_images.to(memory_format=layout),
        )

    def training_steps(self, epochs: int, batch_size: int) -> int:
        return epochs * math.ceil(len(self.train_labels) / batch_size)


def normalise(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [N, H, W] -> float32 [N, 1, H, W], the same arithmetic as ToTensor + Normalize."""
    return images.unsqueeze(1).float().div_(255).sub_(mean).div_(std)


def split_indices(count: int, val_size: int, train_subset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices: a fixed random `val_size` held out, then a fixed random
    `train_subset` of the rest (all of the rest when 0). The two never overlap."""
    shuffled = torch.randperm(count, generator=torch.Generator().manual_seed(SPLIT_SEED))
    val, rest = shuffled[:val_size], shuffled[val_size:]
    train = rest[:train_subset] if train_subset else rest.sort().values
    return train, val


def load_device_dataset(data_cfg, device: torch.device) -> DeviceDataset:
    """The configured splits on `device`, NCHW (`DeviceDataset.in_layout` changes that)."""
    raw_dir = ensure_named(data_cfg.name, data_cfg.root)
    images, labels = load_split(raw_dir, train=True)
    test_images, test_labels = load_split(raw_dir, train=False)
    train, val = split_indices(len(labels), data_cfg.val_size, data_cfg.train_subset)

    def on_device(split_images: torch.Tensor) -> torch.Tensor:
        return normalise(split_images, data_cfg.mean, data_cfg.std).to(device)

    return DeviceDataset(
        train_images=on_device(images[train]),
        train_labels=labels[train].to(device),
        val_images=on_device(images[val]),
        val_labels=labels[val].to(device),
        test_images=on_device(test_images),
        test_labels=test_labels.to(device),
    )
