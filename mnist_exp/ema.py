"""An exponential moving average of the weights, which is what gets evaluated and saved when on.

torch's `AveragedModel` keeps the copy; `use_buffers=True` averages BatchNorm's running
statistics with the weights, so the averaged network is evaluated with statistics that match it.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

PREFIX = "module."  # AveragedModel's state_dict holds the copy under this prefix, plus n_averaged


def weight_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """None when `decay` is 0 (off); otherwise call `.update_parameters(model)` after every step."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def averaged_weights(ema_state: dict) -> dict:
    """The averaged network's own state_dict (loadable into a fresh model) from AveragedModel's."""
    return {key[len(PREFIX) :]: value for key, value in ema_state.items() if key.startswith(PREFIX)}
