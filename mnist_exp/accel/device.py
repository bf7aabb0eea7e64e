"""Turning `trainer.device` into a torch.device, in one place, with a clear word when it is absent,
and readying it as the trainer config asks."""

from __future__ import annotations

import torch

from mnist_exp.accel.determinism import set_determinism
from mnist_exp.accel.graph_step import check_cuda_graphs
from mnist_exp.accel.precision import check_precision
from mnist_exp.errors import DeviceError


def available_devices() -> list[str]:
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU, and never fails; others must exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    present = (
        device.type == "cpu"
        or (device.type == "cuda" and (device.index or 0) < torch.cuda.device_count())
        or (device.type == "mps" and torch.backends.mps.is_available())
    )
    if not present:
        raise DeviceError(
            f"trainer.device={requested} is not available on this machine "
            f"(torch {torch.__version__} sees {torch.cuda.device_count()} CUDA GPU(s)). "
            f"Available: {', '.join(available_devices())}. Use trainer.device=auto or one of those."
        )
    return device


def prepare_device(trainer_cfg, device: torch.device) -> None:
    """CPU threads and determinism as asked; refuse what the device cannot do (fp16 or CUDA graphs
    off CUDA). Runs before anything touches the device."""
    set_determinism(trainer_cfg.deterministic, device)
    if trainer_cfg.threads:
        torch.set_num_threads(trainer_cfg.threads)
    check_precision(trainer_cfg.precision, device)
    if trainer_cfg.cuda_graphs:
        check_cuda_graphs(device)
