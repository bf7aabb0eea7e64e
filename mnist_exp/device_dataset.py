"""The whole dataset as normalised tensors resident on the run's device.

The seed fed a DataLoader that decoded PIL images and normalised them one sample at a time; that
was its bottleneck. Here every image is converted once, exactly as `ToTensor()` + `Normalize()`
would (x / 255, then (x - mean) / std), and batches are index slices of one tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mnist_exp.data import ensure_mnist, load_split

# The training subset is the same N images whatever the run's seed, so runs stay comparable.
SUBSET_SEED = 0


@dataclass(frozen=True)
class DeviceDataset:
    train_images: torch.Tensor  # float32 [N, 1, 28, 28], normalised
    train_labels: torch.Tensor  # int64 [N]
    test_images: torch.Tensor
    test_labels: torch.Tensor


def normalise(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [N, H, W] -> float32 [N, 1, H, W], the same arithmetic as ToTensor + Normalize."""
    return images.unsqueeze(1).float().div_(255).sub_(mean).div_(std)


def fixed_subset(count: int, size: int) -> torch.Tensor:
    """Indices of a fixed random `size` of `count` items (all of them when size is 0)."""
    if size == 0:
        return torch.arange(count)
    generator = torch.Generator().manual_seed(SUBSET_SEED)
    return torch.randperm(count, generator=generator)[:size]


def load_device_dataset(data_cfg, device: torch.device) -> DeviceDataset:
    raw_dir = ensure_mnist(data_cfg.root)
    train_images, train_labels = load_split(raw_dir, train=True)
    test_images, test_labels = load_split(raw_dir, train=False)
    keep = fixed_subset(len(train_labels), data_cfg.train_subset)
    train_images, train_labels = train_images[keep], train_labels[keep]
    return DeviceDataset(
        train_images=normalise(train_images, data_cfg.mean, data_cfg.std).to(device),
        train_labels=train_labels.to(device),
        test_images=normalise(test_images, data_cfg.mean, data_cfg.std).to(device),
        test_labels=test_labels.to(device),
    )
