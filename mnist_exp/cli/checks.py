"""A run's config checked, and its device found, once per run.

A single run is checked by the preflight callback before Hydra creates its directory, so that a
mistyped value leaves nothing behind; the run itself then finds the answers here instead of
checking again. A sweep's jobs are checked as each starts, when its values are known.
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from mnist_exp.accel.device import resolve_device
from mnist_exp.config.validation import validate
from mnist_exp.engine.optim import construction_problems

_validated: set[str] = set()  # the configs, as YAML, that passed in this process
_devices: dict[str, torch.device] = {}  # `trainer.device` values resolved in this process


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming every problem of `cfg` (the task's config, without `hydra`)."""
    key = OmegaConf.to_yaml(cfg)
    if key not in _validated:
        validate(cfg, construction_problems)
        _validated.add(key)


def device_for(requested: str) -> torch.device:
    """`trainer.device` as a torch.device; DeviceError where it is absent."""
    if requested not in _devices:
        _devices[requested] = resolve_device(requested)
    return _devices[requested]
