"""The speed options of `trainer`: memory format, mixed precision and compilation.

Each is off-able and none changes what is computed beyond rounding: channels_last only reorders
memory, bf16/fp16 autocast runs convolutions in half precision with fp32 weights and loss, and
torch.compile fuses the same graph.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

from mnist_exp.errors import ConfigError

log = logging.getLogger("mnist_exp")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"trainer.precision=fp16 needs CUDA (the run is on {device}); use fp32 or bf16.")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        log.warning(
            "trainer.precision=bf16: this CPU has no native bf16, so it is emulated and slow; "
            "add trainer.precision=fp32 to train at full speed"
        )


def autocast(precision: str, device: torch.device):
    """A context for forward passes: autocast to bf16/fp16, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; for every other precision this is a no-op."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def memory_format(trainer_cfg) -> torch.memory_format:
    return torch.channels_last if trainer_cfg.channels_last else torch.contiguous_format


def speed_up(model: nn.Module, trainer_cfg) -> nn.Module:
    """The model in the configured memory format, compiled if asked (same parameters either way)."""
    model = model.to(memory_format=memory_format(trainer_cfg))
    if trainer_cfg.compile:
        model = torch.compile(model, mode=trainer_cfg.compile_mode)
    return model
