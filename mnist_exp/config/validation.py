"""Checks that types cannot express, run before any data or model work: keys that no schema
defines (`unknown_keys.py`), values out of range, and then (given the check) what torch itself
refuses when the optimizer and scheduler are built.

Every problem is reported at once, one line each: the key, the value given, and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from omegaconf import DictConfig, OmegaConf

from mnist_exp.config.unknown_keys import unknown_key_problems
from mnist_exp.data.datasets import DATASETS
from mnist_exp.errors import ConfigError

TRAIN_SPLIT = 60_000
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# Beyond these a digit is no longer the digit its label says (or, for scale, vanishes).
AUGMENT_LIMITS = {"rotation": 180, "translate": 0.5, "scale": 0.9, "shear": 60, "hflip": 1}
ACTIVATIONS = ("relu", "silu", "gelu")  # mnist_exp.models.ACTIVATIONS, without importing torch
GRAPHABLE_OPTIMIZERS = ("torch.optim.Adam", "torch.optim.AdamW")  # mnist_exp.accel.graph_step's, by name
EVAL_SHIFT_LIMIT = 4  # pixels: trainer.eval_shift, and experiments/score_views.py --shift


def validate(cfg: DictConfig, build_problems: Callable[[DictConfig], Iterable[str]] | None = None) -> None:
    """Raise one ConfigError listing every problem; `build_problems`, when given, runs last, on a
    config that passed every other check (`mnist_exp.engine.optim.construction_problems`)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    problems = [f"{key} is missing (???): set it on the command line, e.g. {key}=..." for key in missing]
    if not missing:
        problems = [*unknown_key_problems(cfg), *(problem for problem in _range_problems(cfg) if problem)]
    if not problems and build_problems is not None:
        problems = list(build_problems(cfg))
    if len(problems) == 1:
        raise ConfigError(f"Invalid config: {problems[0]}")
    if problems:
        raise ConfigError("Invalid config:\n  " + "\n  ".join(problems))


def _check(cfg: DictConfig, key: str, ok, allowed: str) -> str | None:
    value = OmegaConf.select(cfg, key)
    if value is None or ok(value):
        return None
    return f"{key}={value!r} is not allowed: {allowed}"


AT_LEAST_ONE = (lambda v: v >= 1), "must be >= 1"


def _range_problems(cfg: DictConfig):
    """Every value out of its range, in the config's order: each group's checks, then those that
    depend on other keys."""
    yield _check(cfg, "seed", lambda v: -(2**63) <= v < 2**63, "must fit in 64 bits: [-2**63, 2**63)")
    epochs_problem = _check(cfg, "trainer.epochs", *AT_LEAST_ONE)
    yield epochs_problem
    yield from _trainer_problems(cfg)
    yield from _data_problems(cfg)
    yield from _recipe_problems(cfg)
    yield from _model_problems(cfg)
    yield from _optimizer_problems(cfg)
    if cfg.trainer.cuda_graphs:
        yield from _cuda_graph_problems(cfg)
    if cfg.scheduler:
        yield from _scheduler_problems(cfg, epochs_ok=not epochs_problem)


def _trainer_problems(cfg: DictConfig):
    yield _check(cfg, "trainer.log_every_n_steps", *AT_LEAST_ONE)
    yield _check(cfg, "trainer.threads", lambda v: v >= 0, "must be >= 0 (0: torch's default)")
    yield _check(
        cfg, "trainer.device", lambda v: DEVICE_PATTERN.fullmatch(v), "one of auto, cpu, cuda, cuda:N, mps"
    )
    yield _check(cfg, "trainer.precision", lambda v: v in ("fp32", "bf16", "fp16"), "one of fp32, bf16, fp16")
    yield _check(
        cfg, "trainer.channels_last", lambda v: isinstance(v, bool) or v == "auto", "one of auto, true, false"
    )
    yield _check(
        cfg,
        "trainer.compile_mode",
        lambda v: v in ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        "one of default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs",
    )


def _data_problems(cfg: DictConfig):
    yield _check(cfg, "data.name", lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}")
    yield _check(cfg, "data.batch_size", *AT_LEAST_ONE)
    yield _check(cfg, "data.test_batch_size", *AT_LEAST_ONE)
    yield _check(cfg, "data.std", lambda v: v > 0, "must be > 0")
    yield _check(cfg, "data.val_size", lambda v: 0 <= v < TRAIN_SPLIT, f"must be in [0, {TRAIN_SPLIT})")
    train_size = TRAIN_SPLIT - max(0, cfg.data.val_size)
    yield _check(
        cfg,
        "data.train_subset",
        lambda v: 0 <= v <= train_size,
        f"must be in [0, {train_size}] (0: all; the split has {train_size} images after data.val_size)",
    )
    for key, limit in AUGMENT_LIMITS.items():
        yield _check(
            cfg, f"data.augment.{key}", lambda v, limit=limit: 0 <= v <= limit, f"must be in [0, {limit}]"
        )
    # More clean epochs than the run has is allowed: a preset tried for fewer epochs trains them all
    # clean (`mnist_exp.data.augment.augments_epoch`).
    yield _check(cfg, "data.augment.clean_final_epochs", lambda v: v >= 0, "must be >= 0")


def _recipe_problems(cfg: DictConfig):
    yield _check(cfg, "trainer.label_smoothing", lambda v: 0 <= v < 1, "must be in [0, 1)")
    yield _check(cfg, "trainer.ema_decay", lambda v: 0 <= v < 1, "must be in [0, 1) (0: off; typical 0.999)")
    yield _check(
        cfg,
        "trainer.eval_shift",
        lambda v: 0 <= v <= EVAL_SHIFT_LIMIT,
        f"must be in [0, {EVAL_SHIFT_LIMIT}] pixels (0: off; typical 1)",
    )
    yield from _early_stopping_problems(cfg)


def _early_stopping_problems(cfg: DictConfig):
    """Early stopping watches the validation accuracy: never the test set's."""
    yield _check(cfg, "trainer.early_stopping.patience", lambda v: v >= 0, "must be >= 0 (0: off)")
    yield _check(
        cfg, "trainer.early_stopping.min_delta", lambda v: v >= 0, "must be >= 0 (percentage points)"
    )
    patience = OmegaConf.select(cfg, "trainer.early_stopping.patience") or 0
    if patience > 0 and cfg.data.val_size <= 0:
        yield (
            f"trainer.early_stopping.patience={patience} needs a validation split to watch: set "
            "data.val_size (e.g. data.val_size=5000); the test set must not decide when training stops"
        )


def _model_problems(cfg: DictConfig):
    yield _check(cfg, "model.dropout", lambda v: 0 <= v < 1, "must be in [0, 1)")
    yield _check(cfg, "model.activation", lambda v: v in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}")
    yield _check(cfg, "model.blocks", lambda v: len(v) >= 1, "needs at least one conv block")
    for i, _ in enumerate(cfg.model.blocks):
        yield _check(cfg, f"model.blocks.{i}.channels", *AT_LEAST_ONE)
        yield _check(cfg, f"model.blocks.{i}.kernel", lambda v: v >= 1 and v % 2, "must be odd and >= 1")
    yield from _group_problems(cfg)
    for i, _ in enumerate(cfg.model.hidden):
        yield _check(cfg, f"model.hidden.{i}", *AT_LEAST_ONE)


def _group_problems(cfg: DictConfig):
    """A grouped conv splits its input and output channels alike, so groups must divide both."""
    width = 1  # the images' channels
    for i, block in enumerate(cfg.model.blocks):
        channels, groups = block.channels, block.groups
        if channels < 1:
            return  # reported by the channels check; the widths after it mean nothing
        if groups < 1 or width % groups or channels % groups:
            yield (
                f"model.blocks.{i}.groups={groups!r} is not allowed: must be >= 1 and divide both the "
                f"block's input channels ({width}) and its channels ({channels}); "
                "groups equal to both makes it depthwise"
            )
        width = channels


def _optimizer_problems(cfg: DictConfig):
    yield _check(cfg, "optimizer.lr", lambda v: v > 0, "must be > 0")
    yield _check(cfg, "optimizer.weight_decay", lambda v: v >= 0, "must be >= 0")
    yield _check(cfg, "optimizer.momentum", lambda v: 0 <= v < 1, "must be in [0, 1)")
    if OmegaConf.select(cfg, "optimizer.fused") and OmegaConf.select(cfg, "optimizer.foreach"):
        yield "optimizer.fused=True and optimizer.foreach=True exclude each other: set one of them"
    if OmegaConf.select(cfg, "optimizer.nesterov") and OmegaConf.select(cfg, "optimizer.momentum") == 0:
        yield "optimizer.nesterov=True needs optimizer.momentum > 0 (or set optimizer.nesterov=false)"


def _cuda_graph_problems(cfg: DictConfig):
    """What `mnist_exp.accel.graph_step` cannot capture; the device is checked once it is known."""
    if OmegaConf.select(cfg, "optimizer._target_") not in GRAPHABLE_OPTIMIZERS:
        yield (
            "trainer.cuda_graphs=true works with optimizer=adam or optimizer=adamw (the update it "
            f"replays), not {cfg.optimizer._target_}: choose one of them or drop trainer.cuda_graphs"
        )
    if OmegaConf.select(cfg, "optimizer.fused"):
        yield "trainer.cuda_graphs=true replays its own Adam update, which ignores optimizer.fused: drop it"
    if cfg.trainer.precision == "fp16":
        yield "trainer.cuda_graphs=true cannot capture fp16's loss scaler: use trainer.precision=bf16 or fp32"
    if cfg.trainer.compile:
        yield "trainer.cuda_graphs=true and trainer.compile=true both rebuild the step: keep one of them"


def _scheduler_problems(cfg: DictConfig, epochs_ok: bool):
    # T_max and OneCycle's epochs left at ${trainer.epochs} share its problem, reported under its name.
    written = OmegaConf.to_container(cfg.scheduler, resolve=False)
    following_bad_epochs = set() if epochs_ok else {k for k, v in written.items() if v == "${trainer.epochs}"}
    if "T_max" not in following_bad_epochs:
        yield _check(cfg, "scheduler.T_max", lambda v: v >= 1, "must be >= 1")
    yield _check(cfg, "scheduler.eta_min", lambda v: v >= 0, "must be >= 0 (the learning rate it ends at)")
    yield _check(cfg, "scheduler.step_size", lambda v: v >= 1, "must be >= 1")
    yield _check(cfg, "scheduler.gamma", lambda v: 0 < v <= 1, "must be in (0, 1]")
    yield _check(cfg, "scheduler.max_lr", lambda v: v > 0, "must be > 0")
    yield _check(cfg, "scheduler.pct_start", lambda v: 0 < v < 1, "must be in (0, 1)")
    if "epochs" not in following_bad_epochs:
        yield _check(
            cfg,
            "scheduler.epochs",
            lambda v: v >= cfg.trainer.epochs,
            f"OneCycle must cover trainer.epochs={cfg.trainer.epochs} (leave it at ${{trainer.epochs}})",
        )
    yield _check(cfg, "scheduler.anneal_strategy", lambda v: v in ("cos", "linear"), "one of cos, linear")
    yield _check(cfg, "scheduler.div_factor", lambda v: v > 0, "must be > 0 (typical 25)")
    yield _check(cfg, "scheduler.final_div_factor", lambda v: v > 0, "must be > 0 (typical 1e4)")
    yield _check(cfg, "scheduler.max_momentum", lambda v: 0 <= v < 1, "must be in [0, 1)")
    yield _check(
        cfg,
        "scheduler.base_momentum",
        lambda v: 0 <= v <= cfg.scheduler.max_momentum,
        f"must be in [0, scheduler.max_momentum={cfg.scheduler.get('max_momentum')}]",
    )
