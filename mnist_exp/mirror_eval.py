"""Evaluation that averages each image's prediction with its left-right mirror's.

Test-time augmentation for classes a mirror leaves unchanged (clothes; never digits): a small
network trained on mirrored copies (`data/augment=flip` or `mirror`) errs differently on the two
views, and their averaged probabilities are right more often (README "Results", round 10).
Training is untouched; only what validation and test measure changes, so it is its own key,
`trainer.eval_hflip`, off unless a preset turns it on.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MirrorAveraged(nn.Module):
    """`model`'s prediction averaged over the image and its mirror, as log-probabilities, so that
    cross-entropy, softmax and argmax of the output are the averaged prediction's."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        log_probs = self.model(torch.cat([images, images.flip(-1)])).float().log_softmax(dim=1)
        plain, mirrored = log_probs.chunk(2)
        return torch.logaddexp(plain, mirrored) - math.log(2)


def evaluated_network(model: nn.Module, eval_hflip: bool) -> nn.Module:
    """What validation, test and the diagnostics run: `model`, or its mirror average."""
    return MirrorAveraged(model) if eval_hflip else model
