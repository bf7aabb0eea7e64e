"""An exponential moving average of the weights, which is what gets evaluated and saved when on.

torch's `AveragedModel` keeps the copy and its state_dict; `use_buffers=True` averages BatchNorm's
running statistics with the weights, so the averaged network is evaluated with statistics that
match it. The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates (the first update
copies): without that, a 0.999 average is still two-thirds random initialisation after a 400-step
epoch and scores at chance.
"""

from __future__ import annotations

from itertools import chain

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

PREFIX = "module."  # AveragedModel's state_dict holds the copy under this prefix, plus n_averaged


class WeightAverage(AveragedModel):
    """AveragedModel whose update never waits for the host: torch's own reads `n_averaged`, a
    device tensor, twice per call, which on a GPU stalls every training step."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__(model, use_buffers=True)
        self.decay = decay
        # Which of (parameters + buffers) to average, grouped by dtype, and which to copy
        # (BatchNorm's batch counts): fixed by the architecture, so found once, not every step.
        tensors = list(chain(self.module.parameters(), self.module.buffers()))
        self.float_groups = [
            [i for i, t in enumerate(tensors) if t.dtype == dtype]
            for dtype in dict.fromkeys(t.dtype for t in tensors if t.is_floating_point())
        ]
        self.count_indices = [i for i, t in enumerate(tensors) if not t.is_floating_point()]

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        averaged = list(chain(self.module.parameters(), self.module.buffers()))
        current = [t.detach() for t in chain(model.parameters(), model.buffers())]
        n = self.n_averaged
        kept = torch.where(n > 0, torch.clamp((1 + n) / (10 + n), max=self.decay), 0.0)
        for group in self.float_groups:
            old, new = [averaged[i] for i in group], [current[i] for i in group]
            weight = kept.to(old[0].dtype)
            torch._foreach_mul_(old, weight)
            torch._foreach_add_(old, torch._foreach_mul(new, 1 - weight))
        if self.count_indices:
            torch._foreach_copy_(
                [averaged[i] for i in self.count_indices], [current[i] for i in self.count_indices]
            )
        self.n_averaged += 1


def weight_average(model: nn.Module, decay: float) -> WeightAverage | None:
    """None when `decay` is 0 (off); otherwise call `.update_parameters(model)` after every step."""
    return WeightAverage(model, decay) if decay else None


def averaged_weights(ema_state: dict) -> dict:
    """The averaged network's own state_dict (loadable into a fresh model) from AveragedModel's."""
    return {key[len(PREFIX) :]: value for key, value in ema_state.items() if key.startswith(PREFIX)}
