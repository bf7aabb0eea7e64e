"""Random warps of a whole batch at once, on the batch's own device.

Every sample gets its own rotation, shear, scale, translation (and, for clothes, mirror), drawn
from a generator of the run's own, so the same seed sees the same augmented batches. One sampling
grid + `grid_sample` warps the batch: no per-sample Python and no trip through the CPU. Pixels
moved in from outside the image take the background value (a black pixel, normalised), so the
value range is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

# The augmentation draws from its own stream, apart from the shuffle's, even though both start
# from `seed`: adding this keeps the two sequences unrelated.
STREAM_OFFSET = 0xA06


@dataclass(frozen=True)
class RandomWarp:
    """Uniform draws per sample: rotation and shear in [-deg, +deg], scale in [1 - s, 1 + s],
    translation in [-t, +t] of the image size along each axis."""

    rotation: float = 0.0
    translate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    hflip: float = 0.0  # probability of a left-right mirror: for clothes, not for digits

    @classmethod
    def from_config(cls, augment_cfg) -> RandomWarp:
        """From the `data/augment` group; its `name` is only a label."""
        return cls(**{field.name: float(augment_cfg[field.name]) for field in fields(cls)})

    @property
    def is_identity(self) -> bool:
        return not (self.rotation or self.translate or self.scale or self.shear or self.hflip)

    def sampling_matrices(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """[count, 2, 3] matrices for `affine_grid`: each maps an output pixel to where it samples from."""
        device = generator.device

        def uniform(half_width: float) -> torch.Tensor:
            return (torch.rand(count, generator=generator, device=device) * 2 - 1) * half_width

        angle = torch.deg2rad(uniform(self.rotation))
        shear = torch.tan(torch.deg2rad(uniform(self.shear)))
        scale = 1 + uniform(self.scale)
        shift = torch.stack([uniform(self.translate), uniform(self.translate)], dim=1) * 2  # to [-1, 1] units
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Forward transform: shear along x, then scale, then rotate, then shift.
        forward = torch.stack(
            [torch.stack([cos, cos * shear - sin], 1), torch.stack([sin, sin * shear + cos], 1)], 1
        ) * scale.view(-1, 1, 1)
        if self.hflip:  # drawn only when on, so presets without it keep their random stream
            flipped = torch.rand(count, generator=generator, device=device) < self.hflip
            forward[:, :, 0] *= torch.where(flipped, -1.0, 1.0).unsqueeze(1)  # x -> -x, before the rest
        inverse = torch.linalg.inv_ex(forward).inverse  # inv() would check for errors: a host sync on a GPU
        return torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], dim=2)

    def __call__(self, images: torch.Tensor, generator: torch.Generator, background: float) -> torch.Tensor:
        """`images` [N, C, H, W] warped, one draw per sample; `background` fills what comes from outside."""
        if self.is_identity:
            return images
        theta = self.sampling_matrices(len(images), generator).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        shifted = images - background  # zero padding then means "background"
        warped = F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return warped + background


def augment_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed + STREAM_OFFSET)


def augments_epoch(epoch: int, epochs: int, clean_final_epochs: int) -> bool:
    """Whether training epoch `epoch` (from 1) sees augmented images: all but the last
    `clean_final_epochs`, which fit the unaltered images that evaluation sees, at the schedule's
    smallest learning rates (and BatchNorm's statistics with them). A run shorter than that, such
    as a preset tried for one epoch, trains every epoch clean."""
    return epoch <= epochs - clean_final_epochs
