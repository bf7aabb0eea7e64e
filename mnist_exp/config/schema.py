"""Typed schemas for every config group, registered in Hydra's ConfigStore as the groups' bases.

A YAML option names its schema in its defaults list (`- /schema_adam@_here_`), so a wrong type or
an unknown key is refused by Hydra while composing, before any data or model work. Range checks
that types cannot express are `validation.py`'s, and keys added unchecked with `+key=value` are
`unknown_keys.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


@dataclass
class BlockConfig:
    channels: int = MISSING
    kernel: int = 3
    groups: int = 1
    batch_norm: bool = True
    relu: bool = True
    pool: bool = False


@dataclass
class ModelConfig:
    _target_: str = "mnist_exp.models.ConvNet"
    _convert_: str = "all"
    name: str = MISSING
    blocks: list[BlockConfig] = MISSING
    hidden: list[int] = field(default_factory=list)
    dropout: float = 0.0
    activation: str = "relu"  # after each conv block: relu | silu | gelu


@dataclass
class AdamConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.0
    foreach: Optional[bool] = None  # None: torch picks; the fused kernel is fastest where it exists
    fused: Optional[bool] = None


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 1e-2


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    foreach: Optional[bool] = None
    fused: Optional[bool] = None


@dataclass
class CosineConfig:
    _target_: str = "torch.optim.lr_scheduler.CosineAnnealingLR"
    _partial_: bool = True
    T_max: int = MISSING
    eta_min: float = 0.0


@dataclass
class StepConfig:
    _target_: str = "torch.optim.lr_scheduler.StepLR"
    _partial_: bool = True
    step_size: int = MISSING
    gamma: float = 0.1


@dataclass
class OneCycleConfig:
    _target_: str = "torch.optim.lr_scheduler.OneCycleLR"
    _partial_: bool = True
    max_lr: float = MISSING
    epochs: int = MISSING
    pct_start: float = 0.25
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    # Adam's beta1 (SGD's momentum) moves opposite the learning rate, max -> base -> max.
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95


@dataclass
class AugmentConfig:
    """Random warp per training sample (`mnist_exp.data.augment.RandomWarp`); all zero is off."""

    name: str = "none"
    rotation: float = 0.0  # degrees, each way
    translate: float = 0.0  # fraction of the image size, each way, per axis
    scale: float = 0.0  # zoom in [1 - scale, 1 + scale]
    shear: float = 0.0  # degrees, each way
    hflip: float = 0.0  # probability of a left-right mirror (Fashion-MNIST; digits are not symmetric)
    clean_final_epochs: int = 0  # the last N epochs train on the images as they are


@dataclass
class DataConfig:
    name: str = "mnist"
    root: Optional[str] = None
    batch_size: int = 128
    test_batch_size: int = 1000
    mean: float = 0.1307
    std: float = 0.3081
    train_subset: int = 0
    val_size: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class EarlyStoppingConfig:
    patience: int = 0  # 0: off; N: stop after N epochs without a better validation accuracy
    min_delta: float = 0.0  # percentage points an epoch must beat the best by to count as better


@dataclass
class TrainerConfig:
    epochs: int = 20
    device: str = "auto"
    deterministic: bool = False
    log_every_n_steps: int = 50
    threads: int = 0
    channels_last: Any = "auto"  # auto | true | false
    precision: str = "fp32"
    compile: bool = False
    compile_mode: str = "default"
    cuda_graphs: bool = False
    label_smoothing: float = 0.0
    ema_decay: float = 0.0
    eval_hflip: bool = False
    eval_shift: int = 0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class RunConfig:
    model: ModelConfig = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    data: DataConfig = MISSING
    seed: int = 0
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    resume: Optional[str] = None


# Stored as top-level configs `schema_NAME`, in no group, so neither Hydra's list of a group's
# options (shown when a choice is mistyped) nor `--help`'s list of groups offers them as choices.
# A YAML option pulls its schema in with `- /schema_NAME@_here_`.
SCHEMAS = {
    "run": RunConfig,
    "model": ModelConfig,
    "adam": AdamConfig,
    "adamw": AdamWConfig,
    "sgd": SGDConfig,
    "cosine": CosineConfig,
    "step": StepConfig,
    "onecycle": OneCycleConfig,
    "data": DataConfig,
    "augment": AugmentConfig,
}


def register_schemas() -> None:
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=f"schema_{name}", node=schema)


# Options that are gone: the switches that turned each on (off when falsy) and the keys that did
# nothing alone. A saved config holding them off trained as the code does today, and they are
# dropped as it is read back.
RETIRED_SWITCHES = ("data.augment.elastic", "trainer.teacher")
RETIRED_SETTINGS = ("data.augment.elastic_sigma", "trainer.teacher_weight", "trainer.teacher_temperature")


class RetiredKeyError(ValueError):
    """A saved config turned on an option this version no longer has."""


def without_retired_keys(saved: Mapping) -> dict:
    """A plain copy of a saved config without the retired options it holds off; one that was on
    raises RetiredKeyError, since this version cannot do what that run did."""
    config = OmegaConf.to_container(OmegaConf.create(dict(saved)))
    for path in RETIRED_SWITCHES + RETIRED_SETTINGS:
        *parents, key = path.split(".")
        node = config
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key not in node:
            continue
        value = node.pop(key)
        if path in RETIRED_SWITCHES and value:
            raise RetiredKeyError(
                f"its config sets {path}={value!r}, an option this version no longer has; continue or "
                "reproduce that run with the version that made it (in the project's git history)"
            )
    return config


def saved_config_read_today(saved: Mapping) -> DictConfig:
    """A run's saved config as this version reads it: trainer, augmentation, OneCycle and model
    activation keys added after the run was written take their defaults, which is what the code
    did then (off, torch's own momentum for OneCycle, and ReLU); retired options it held off are
    dropped."""
    saved = without_retired_keys(saved)
    defaults = {"trainer": TrainerConfig(), "data": {"augment": AugmentConfig()}}
    if (saved.get("scheduler") or {}).get("_target_") == OneCycleConfig._target_:
        defaults["scheduler"] = OneCycleConfig()
    if (saved.get("model") or {}).get("_target_") == ModelConfig._target_:
        defaults["model"] = {"activation": ModelConfig.activation}
    # Merged as plain data, not as the typed schema, so keys the run saved that are retired since
    # stay readable (the drift check reports them) instead of failing the merge.
    return OmegaConf.merge(OmegaConf.to_container(OmegaConf.structured(defaults)), saved)
