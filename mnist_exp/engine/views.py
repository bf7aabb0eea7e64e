"""Evaluation that averages each image's prediction over a few views of it that keep its label.

Test-time augmentation: a small network trained on shifted or mirrored copies errs differently
on the views, and their averaged probabilities are right more often (experiments/LOG.md). The
views are the image, its left-right mirror with `trainer.eval_hflip` (clothes; never digits), and
with `trainer.eval_shift: N` each of those moved N pixels up, down, left and right (digits and
clothes). Training is untouched; only what validation and test measure
changes, so both are their own keys, off unless a preset turns them on.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def shifted(images: torch.Tensor, right: int, down: int, background: float) -> torch.Tensor:
    """`images` [N, C, H, W] moved `right` and `down` pixels (negative: left, up), the uncovered
    border filled with `background` and whatever leaves the frame dropped."""
    pad = max(abs(right), abs(down))
    if not pad:
        return images
    height, width = images.shape[-2:]
    padded = F.pad(images, (pad, pad, pad, pad), value=background)
    top, left = pad - down, pad - right
    return padded[..., top : top + height, left : left + width]


class View(NamedTuple):
    """One view of an image: mirrored left-right or not, then moved `right` and `down` pixels."""

    mirror: bool = False
    right: int = 0
    down: int = 0

    def of(self, images: torch.Tensor, background: float) -> torch.Tensor:
        return shifted(images.flip(-1) if self.mirror else images, self.right, self.down, background)


def evaluation_views(eval_hflip: bool, eval_shift: int) -> list[View]:
    """The image (first), its mirror if asked, and each of those shifted `eval_shift` pixels
    four ways if asked: 1, 2, 5 or 10 views."""
    mirrors = (False, True) if eval_hflip else (False,)
    offsets = [(0, 0)]
    if eval_shift:
        offsets += [(eval_shift, 0), (-eval_shift, 0), (0, eval_shift), (0, -eval_shift)]
    return [View(mirror, right, down) for mirror in mirrors for right, down in offsets]


class ViewAveraged(nn.Module):
    """`model`'s prediction averaged over `views` of each image, as log-probabilities, so that
    cross-entropy, softmax and argmax of the output are the averaged prediction's. `background`
    fills what a shift uncovers: a black pixel, normalised."""

    def __init__(self, model: nn.Module, views: list[View], background: float):
        super().__init__()
        self.model = model
        self.views = views
        self.background = background

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch = torch.cat([view.of(images, self.background) for view in self.views])
        log_probs = self.model(batch).float().log_softmax(dim=1).unflatten(0, (len(self.views), -1))
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.views))


def evaluated_network(model: nn.Module, eval_hflip: bool, eval_shift: int, background: float) -> nn.Module:
    """What validation, test and the diagnostics run: `model`, or its average over the views."""
    views = evaluation_views(eval_hflip, eval_shift)
    return ViewAveraged(model, views, background) if len(views) > 1 else model
