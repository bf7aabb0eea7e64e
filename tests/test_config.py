"""Every option of every group composes and instantiates; presets hold the seed's exact recipes."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

import mnist_exp
from mnist_exp.engine.optim import Schedule, build_optimizer

CONF = Path(mnist_exp.__file__).parent / "conf"

GROUPS = {
    "model": ["v1", "v2", "v3", "v3_plus", "small_7k", "tiny_5k", "wide_41k", "wide_99k", "wide_1m"],
    "optimizer": ["adam", "adamw", "sgd"],
    "scheduler": ["none", "cosine", "step", "onecycle"],
    "data": ["mnist", "fashion_mnist"],
    "data/augment": ["none", "gentle", "light", "strong", "mirror", "flip"],
    "experiment": [
        "seed_v1", "seed_v2", "seed_v3", "speedrun",
        "v3_plus", "small_7k", "tiny_5k", "wide_41k", "wide_99k", "fashion_v3_plus", "fashion_wide_1m",
    ],
}  # fmt: skip


@pytest.mark.parametrize("group", GROUPS)
def test_every_shipped_option_is_in_the_list_below(group):
    assert sorted(GROUPS[group]) == sorted(path.stem for path in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g, options in GROUPS.items() for o in options])
def test_every_group_option_composes_and_instantiates(compose_config, group, option):
    cfg = compose_config(f"{group}={option}")
    model = instantiate(cfg.model)
    optimizer = build_optimizer(cfg.optimizer, model)
    Schedule(cfg.scheduler, optimizer, steps_per_epoch=10)
    assert cfg.data.batch_size >= 1


def test_default_run_is_v3_adamw_cosine_on_mnist(compose_config):
    cfg = compose_config()
    assert (cfg.model.name, cfg.optimizer._target_, cfg.scheduler._target_, cfg.data.name) == (
        "v3",
        "torch.optim.AdamW",
        "torch.optim.lr_scheduler.CosineAnnealingLR",
        "mnist",
    )
    assert (cfg.data.mean, cfg.data.std, cfg.data.batch_size, cfg.data.train_subset) == (
        0.1307,
        0.3081,
        128,
        0,
    )


def test_cosine_t_max_follows_epochs_unless_set(compose_config):
    assert compose_config("scheduler=cosine", "trainer.epochs=7").scheduler.T_max == 7
    assert compose_config("scheduler=cosine", "scheduler.T_max=3").scheduler.T_max == 3


def test_seed_v1_recipe(compose_config):
    cfg = compose_config("experiment=seed_v1")
    assert cfg.model.name == "v1"
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 1e-3
    assert not cfg.scheduler
    assert (cfg.trainer.epochs, cfg.data.batch_size, cfg.data.test_batch_size) == (20, 128, 2000)


@pytest.mark.parametrize("preset,model,test_batch", [("seed_v2", "v2", 2000), ("seed_v3", "v3", 128)])
def test_seed_v2_v3_recipes(compose_config, preset, model, test_batch):
    cfg = compose_config(f"experiment={preset}", "trainer.epochs=5")
    assert cfg.model.name == model
    assert cfg.model.dropout == 0.1
    assert cfg.optimizer._target_ == "torch.optim.AdamW"
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay) == (1e-3, 1e-4)
    assert cfg.scheduler._target_.endswith("CosineAnnealingLR")
    assert cfg.scheduler.T_max == 20, "the seed's T_max stays 20 even when a run is shortened"
    assert (cfg.data.batch_size, cfg.data.test_batch_size) == (128, test_batch)


def test_command_line_overrides_beat_the_preset(compose_config):
    cfg = compose_config("experiment=seed_v1", "optimizer.lr=0.01", "model=v3")
    assert cfg.optimizer.lr == 0.01 and cfg.model.name == "v3"


def test_sgd_uses_nesterov_momentum(compose_config):
    cfg = compose_config("optimizer=sgd")
    optimizer = build_optimizer(cfg.optimizer, torch.nn.Linear(2, 2))
    assert optimizer.param_groups[0]["nesterov"] is True
    assert optimizer.param_groups[0]["momentum"] > 0


def test_fashion_preset_is_v3_plus_with_mirrors_longer_without_dropout_and_mirror_scored(compose_config):
    """v3_plus's later weight decay (round 5), SiLU and no dropout (round 33) were chosen on digits;
    clothes keep what they won with."""
    fashion, mnist = compose_config("experiment=fashion_v3_plus"), compose_config("experiment=v3_plus")
    assert (fashion.data.name, fashion.data.mean, fashion.data.std) == ("fashion_mnist", 0.2860, 0.3530)
    augment = fashion.data.augment
    assert (augment.hflip, augment.translate, augment.rotation, augment.scale) == (0.5, 0, 0, 0)
    assert (fashion.trainer.epochs, fashion.model.dropout, mnist.model.dropout) == (60, 0, 0)
    assert (fashion.model.activation, mnist.model.activation) == ("relu", "silu")
    assert (fashion.optimizer.weight_decay, mnist.optimizer.weight_decay) == (1e-4, 1e-2)
    assert (fashion.trainer.eval_hflip, mnist.trainer.eval_hflip) == (True, False)
    fashion.trainer.epochs, fashion.model.activation = mnist.trainer.epochs, mnist.model.activation
    fashion.optimizer.weight_decay, fashion.trainer.eval_hflip = mnist.optimizer.weight_decay, False
    assert (fashion.model, fashion.optimizer, fashion.scheduler, fashion.trainer) == (
        mnist.model, mnist.optimizer, mnist.scheduler, mnist.trainer,
    )  # fmt: skip


def test_fashion_wide_1m_keeps_the_recipe_it_was_measured_with(compose_config):
    """fashion_v3_plus's later 60 epochs (round 7), mirrors without shifts and mirror-averaged
    scoring (round 10) were chosen for V3's network, not for wide_1m."""
    cfg = compose_config("experiment=fashion_wide_1m")
    assert (cfg.model.name, cfg.trainer.epochs, cfg.scheduler.max_lr) == ("wide_1m", 40, 0.01)
    augment = cfg.data.augment
    assert (augment.name, augment.translate, cfg.trainer.eval_hflip) == ("mirror", 0.1, False)
