"""An exponential moving average of the weights, which is what gets evaluated and saved when on.

torch's `AveragedModel` keeps the copy; `use_buffers=True` averages BatchNorm's running
statistics with the weights, so the averaged network is evaluated with statistics that match it.
The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates: without that, a 0.999
average is still two-thirds random initialisation after a 400-step epoch and scores at chance.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

PREFIX = "module."  # AveragedModel's state_dict holds the copy under this prefix, plus n_averaged


def weight_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """None when `decay` is 0 (off); otherwise call `.update_parameters(model)` after every step."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=warmed_up_ema(decay), use_buffers=True)


def warmed_up_ema(decay: float):
    """AveragedModel's `multi_avg_fn`. The decay is computed on the device from `num_averaged`
    (a tensor there), so no update waits for the host, and a resumed run continues it exactly."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():  # BatchNorm's num_batches_tracked: a count, not averaged
            torch._foreach_copy_(averaged, current)
            return
        kept = torch.clamp((1 + num_averaged) / (10 + num_averaged), max=decay).to(averaged[0].dtype)
        torch._foreach_mul_(averaged, kept)
        torch._foreach_add_(averaged, torch._foreach_mul(current, 1 - kept))

    return update


def averaged_weights(ema_state: dict) -> dict:
    """The averaged network's own state_dict (loadable into a fresh model) from AveragedModel's."""
    return {key[len(PREFIX) :]: value for key, value in ema_state.items() if key.startswith(PREFIX)}
