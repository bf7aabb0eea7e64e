"""Bad values are refused before any data or model work, each with the key, the value and the rule."""

import pytest

from mnist_exp.config.validation import validate
from mnist_exp.engine.optim import construction_problems
from mnist_exp.errors import ConfigError

BAD_VALUES = {
    "seed=9223372036854775808": "seed=9223372036854775808 is not allowed: must fit in 64 bits",
    "trainer.epochs=0": "trainer.epochs=0 is not allowed: must be >= 1",
    "trainer.device=gpu": "trainer.device='gpu' is not allowed: one of auto, cpu, cuda, cuda:N, mps",
    "trainer.device=cuda:x": "trainer.device='cuda:x'",
    "trainer.threads=-1": "trainer.threads=-1 is not allowed",
    "trainer.log_every_n_steps=0": "trainer.log_every_n_steps=0",
    "optimizer.lr=0": "optimizer.lr=0.0 is not allowed: must be > 0",
    "optimizer.weight_decay=-0.1": "optimizer.weight_decay=-0.1",
    "model.dropout=1.0": "model.dropout=1.0 is not allowed: must be in [0, 1)",
    "model.dropout=-0.1": "model.dropout=-0.1",
    "data.batch_size=0": "data.batch_size=0 is not allowed: must be >= 1",
    "data.test_batch_size=0": "data.test_batch_size=0",
    "data.train_subset=60001": "data.train_subset=60001 is not allowed: must be in [0, 60000]",
    "data.val_size=60000": "data.val_size=60000",
    "scheduler.T_max=0": "scheduler.T_max=0",
    "scheduler.eta_min=-0.01": "scheduler.eta_min=-0.01 is not allowed: must be >= 0",
    "model.blocks.0.kernel=2": "model.blocks.0.kernel=2 is not allowed: must be odd",
    "model.blocks.1.groups=3": (
        "model.blocks.1.groups=3 is not allowed: must be >= 1 and divide both the block's input channels (8) "
        "and its channels (8)"
    ),
    "model.blocks.2.groups=0": "model.blocks.2.groups=0 is not allowed",
    "model.activation=tanh": "model.activation='tanh' is not allowed: one of relu, silu, gelu",
    "trainer.precision=fp8": "trainer.precision='fp8' is not allowed: one of fp32, bf16, fp16",
    "trainer.compile_mode=fast": "trainer.compile_mode='fast' is not allowed",
    "trainer.channels_last=maybe": "trainer.channels_last='maybe' is not allowed: one of auto, true, false",
    "trainer.channels_last=1": "trainer.channels_last=1 is not allowed: one of auto, true, false",
    "trainer.label_smoothing=1.0": "trainer.label_smoothing=1.0 is not allowed: must be in [0, 1)",
    "trainer.ema_decay=1.0": "trainer.ema_decay=1.0 is not allowed: must be in [0, 1)",
    "trainer.eval_shift=5": "trainer.eval_shift=5 is not allowed: must be in [0, 4] pixels",
    "trainer.eval_shift=-1": "trainer.eval_shift=-1 is not allowed",
    "data.augment.rotation=-5": "data.augment.rotation=-5.0 is not allowed: must be in [0, 180]",
    "data.augment.translate=0.6": "data.augment.translate=0.6 is not allowed: must be in [0, 0.5]",
    "data.augment.scale=1.0": "data.augment.scale=1.0 is not allowed: must be in [0, 0.9]",
    "data.augment.shear=90": "data.augment.shear=90.0 is not allowed: must be in [0, 60]",
    "data.augment.hflip=1.5": "data.augment.hflip=1.5 is not allowed: must be in [0, 1]",
    "data.augment.clean_final_epochs=-1": "data.augment.clean_final_epochs=-1 is not allowed",
}


@pytest.mark.parametrize("override", BAD_VALUES)
def test_out_of_range_value_names_key_value_and_rule(compose_config, override):
    with pytest.raises(ConfigError) as error:
        validate(compose_config(override))
    assert BAD_VALUES[override] in str(error.value)


def test_train_subset_must_fit_what_the_validation_split_leaves(compose_config):
    with pytest.raises(ConfigError, match=r"data.train_subset=55000 .* \[0, 50000\]"):
        validate(compose_config("data.val_size=10000", "data.train_subset=55000"))


def test_nesterov_without_momentum_is_refused(compose_config):
    with pytest.raises(ConfigError, match="nesterov=True needs optimizer.momentum > 0"):
        validate(compose_config("optimizer=sgd", "optimizer.momentum=0"))


def test_onecycle_shorter_than_the_run_is_refused(compose_config):
    with pytest.raises(ConfigError, match="scheduler.epochs=2 .* OneCycle must cover trainer.epochs=5"):
        validate(compose_config("scheduler=onecycle", "trainer.epochs=5", "scheduler.epochs=2"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler.div_factor=0"], r"scheduler.div_factor=0.0 is not allowed: must be > 0"),
        (["scheduler.final_div_factor=0"], r"scheduler.final_div_factor=0.0 is not allowed: must be > 0"),
        (["scheduler.max_momentum=1.0"], r"scheduler.max_momentum=1.0 is not allowed: must be in \[0, 1\)"),
        (["scheduler.base_momentum=0.96"], r"base_momentum=0.96 .* \[0, scheduler.max_momentum=0.95\]"),
    ],
)
def test_onecycle_momentum_out_of_range_is_refused(compose_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_config("scheduler=onecycle", *overrides))


def test_every_problem_is_reported_at_once(compose_config):
    with pytest.raises(ConfigError) as error:
        validate(compose_config("scheduler=none", "optimizer.lr=-1", "model.dropout=2", "trainer.epochs=0"))
    assert str(error.value).count("is not allowed") == 3


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_a_bad_epoch_count_is_reported_once_not_again_by_the_keys_that_follow_it(compose_config, scheduler):
    with pytest.raises(ConfigError) as error:
        validate(compose_config(f"scheduler={scheduler}", "trainer.epochs=-1"))
    assert str(error.value) == "Invalid config: trainer.epochs=-1 is not allowed: must be >= 1"


def test_a_scheduler_length_set_on_its_own_is_still_checked_beside_a_bad_epoch_count(compose_config):
    with pytest.raises(ConfigError) as error:
        validate(compose_config("trainer.epochs=0", "scheduler.T_max=0"))
    assert str(error.value).count("is not allowed") == 2
    assert "scheduler.T_max=0 is not allowed" in str(error.value)


def test_missing_mandatory_value_fails_at_start(compose_config):
    with pytest.raises(ConfigError, match=r"model.name is missing \(\?\?\?\)"):
        validate(compose_config("model.name=???"))


@pytest.mark.parametrize(
    "group",
    ["model=v1", "model=v2", "model=v3", "model=tiny_5k", "experiment=seed_v1", "scheduler=onecycle"],
)
def test_shipped_configs_are_valid(compose_config, group):
    validate(compose_config(group))


def test_fused_and_foreach_together_are_refused(compose_config):
    with pytest.raises(
        ConfigError, match="optimizer.fused=True and optimizer.foreach=True exclude each other"
    ):
        validate(compose_config("optimizer.fused=true", "optimizer.foreach=true"))


def test_fp16_without_cuda_is_refused():
    import torch

    from mnist_exp.accel.precision import check_precision

    with pytest.raises(ConfigError, match="trainer.precision=fp16 needs CUDA"):
        check_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_it_warns_and_names_the_fix(monkeypatch, caplog, native):
    """experiment=fashion_wide_1m asks for bf16; on such a CPU it still runs, but says how to go fast."""
    import torch

    from mnist_exp.accel import precision as speed

    monkeypatch.setattr(speed, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="mnist_exp"):
        speed.check_precision("bf16", torch.device("cpu"))
    warned = [r.getMessage() for r in caplog.records if "bf16" in r.getMessage()]
    assert warned == ([] if native else [
        "trainer.precision=bf16: this CPU has no native bf16, so it is emulated and slow; "
        "add trainer.precision=fp32 to train at full speed"
    ])  # fmt: skip


CUDA_GRAPH_REFUSALS = {
    "optimizer=sgd": "with optimizer=adam or optimizer=adamw (the update it replays), not torch.optim.SGD:",
    "optimizer.fused=true": "replays its own Adam update, which ignores optimizer.fused: drop it",
    "trainer.precision=fp16": "cannot capture fp16's loss scaler: use trainer.precision=bf16 or fp32",
    "trainer.compile=true": "trainer.cuda_graphs=true and trainer.compile=true both rebuild the step",
}


@pytest.mark.parametrize("override", CUDA_GRAPH_REFUSALS)
def test_what_cuda_graphs_cannot_capture_is_refused(compose_config, override):
    with pytest.raises(ConfigError) as error:
        validate(compose_config("trainer.cuda_graphs=true", override))
    assert CUDA_GRAPH_REFUSALS[override] in str(error.value)


@pytest.mark.parametrize("preset", ["experiment=speedrun", "experiment=seed_v3", "experiment=v3_plus"])
def test_the_adam_presets_can_be_graphed(compose_config, preset):
    validate(compose_config(preset, "trainer.cuda_graphs=true"))


def test_cuda_graphs_without_cuda_is_refused():
    import torch

    from mnist_exp.accel.graph_step import check_cuda_graphs

    with pytest.raises(ConfigError, match=r"trainer.cuda_graphs=true needs CUDA \(the run is on cpu\)"):
        check_cuda_graphs(torch.device("cpu"))


def test_validation_names_the_optimizers_graph_step_can_capture():
    """validation.py lists them by name so that it need not import torch."""
    from mnist_exp.accel.graph_step import GRAPHABLE_OPTIMIZERS
    from mnist_exp.config.validation import GRAPHABLE_OPTIMIZERS as NAMES

    assert NAMES == tuple(f"torch.optim.{cls.__name__}" for cls in GRAPHABLE_OPTIMIZERS)


ADDED_KEYS_REFUSED = {
    "+trainer.epoch=3": "trainer.epoch=3 is not a known key: did you mean trainer.epochs?",
    "+data.augment.rotate=5": "data.augment.rotate=5 is not a known key: did you mean data.augment.rotation?",
    "+model.blocks.0.foo=1": (
        "model.blocks.0.foo=1 is not a known key: model.blocks.0's keys are batch_norm, channels, groups, "
        "kernel, pool, relu"
    ),
    "+schema=adam": (
        "schema='adam' is not a known key: the top level's keys are data, model, optimizer, resume, "
        "scheduler, seed, trainer"
    ),
    "+optimizer.lrr=0.1": (
        "optimizer.lrr=0.1 is not a parameter of torch.optim.AdamW: did you mean optimizer.lr?"
    ),
    "+model.widht=3": "model.widht=3 is not a parameter of mnist_exp.models.ConvNet:",
    "+model.in_channels=3": "model.in_channels=3 is not a parameter of mnist_exp.models.ConvNet:",
    "scheduler=onecycle +scheduler.steps_per_epoch=5": (
        "scheduler.steps_per_epoch=5: the run passes steps_per_epoch itself, so drop it"
    ),
    "+scheduler.steps_per_epoch=5": (
        "scheduler.steps_per_epoch=5 is not a parameter of torch.optim.lr_scheduler.CosineAnnealingLR"
    ),
    "optimizer._target_=torch.optim.Nope": (
        "optimizer._target_='torch.optim.Nope' cannot be imported: name a class, e.g. torch.optim.AdamW"
    ),
    # Parameters the target takes, with values torch itself refuses:
    "+optimizer.betas=[1.5,0.9]": (
        "optimizer: torch.optim.AdamW refuses these arguments: Invalid beta parameter at index 0: 1.5"
    ),
    "optimizer=sgd +optimizer.dampening=0.5": (
        "optimizer: torch.optim.SGD refuses these arguments: "
        "Nesterov momentum requires a momentum and zero dampening"
    ),
    "scheduler=onecycle +scheduler.total_steps=0": (
        "scheduler: torch.optim.lr_scheduler.OneCycleLR refuses these arguments: "
        "Expected positive integer total_steps"
    ),
}


@pytest.mark.parametrize("overrides", ADDED_KEYS_REFUSED)
def test_an_added_key_is_refused_unless_it_is_read_and_torch_takes_its_value(compose_config, overrides):
    """Hydra adds a `+key` unchecked; unread, `+trainer.epoch=3` would train the default 20 epochs."""
    with pytest.raises(ConfigError) as error:
        validate(compose_config(*overrides.split()), construction_problems)
    assert ADDED_KEYS_REFUSED[overrides] in str(error.value)


def test_a_parameter_the_target_takes_may_be_added_and_reaches_it(compose_config):
    import torch

    from mnist_exp.engine.optim import build_optimizer

    config = compose_config("+optimizer.betas=[0.8,0.9]", "+optimizer.amsgrad=true")
    validate(config)
    optimizer = build_optimizer(config.optimizer, torch.nn.Linear(2, 2))
    assert (list(optimizer.defaults["betas"]), optimizer.defaults["amsgrad"]) == ([0.8, 0.9], True)
