"""Turning `trainer.device` into a torch.device, in one place."""

from __future__ import annotations

import torch


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU; anything else is taken as written."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(requested)
