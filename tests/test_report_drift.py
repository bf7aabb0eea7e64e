"""A README row's command must compose the config its runs trained, even after presets change."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mnist_exp.report.cli import main
from mnist_exp.report.drift import drift_pins, hydra_value

MARKERS = "<!-- mnist-exp-report:start -->\n<!-- mnist-exp-report:end -->\n"


def write_trained_run(run_dir: Path, overrides: list[str], config: dict) -> None:
    """A finished run as training leaves it, with `config` as what it really trained."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, "seed=1"]))
    record = {"epoch": 1, "train_loss": 0.1, "train_acc": 99.0, "test_loss": 0.1, "test_acc": 99.1}
    record["lr"] = 0.001
    metrics = {"status": "completed", "params": 18_594, "history": [record], "final_test_acc": 99.1}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


def readme_command(tmp_path: Path, capsys) -> tuple[list[str], str]:
    """Report the runs under tmp_path/runs into a README: (its command's overrides, stderr)."""
    readme = tmp_path / "README.md"
    readme.write_text(MARKERS)
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--readme", str(readme)]) == 0
    row = next(line for line in readme.read_text().splitlines() if "python -m mnist_exp" in line)
    command = shlex.split(row.split("`")[1])
    assert command[:3] == ["python", "-m", "mnist_exp"]
    return [word for word in command[3:] if not word.startswith("seed=")], capsys.readouterr().err


def trained(compose_config, *overrides: str) -> dict:
    return OmegaConf.to_container(compose_config(*overrides, "seed=1"), resolve=True)


def test_a_preset_changed_since_the_run_is_pinned_back_in_the_readme_command(
    tmp_path, capsys, compose_config
):
    """Runs of `experiment=v3_plus` made before its weight decay, augmentation and a block changed."""
    config = trained(compose_config, "experiment=v3_plus")
    config["optimizer"]["weight_decay"] = 0.05
    config["data"]["augment"]["rotation"] = 7.5
    config["model"]["blocks"][2]["pool"] = True
    config["data"]["root"] = "/data/my mnist"
    write_trained_run(tmp_path / "runs" / "r1", ["experiment=v3_plus"], config)

    overrides, warnings = readme_command(tmp_path, capsys)

    assert overrides[0] == "experiment=v3_plus"
    assert {"optimizer.weight_decay=0.05", "data.augment.rotation=7.5", "model.blocks.2.pool=true"} <= set(
        overrides
    )
    assert warnings == ""
    assert trained(compose_config, *overrides) == config


def test_a_command_that_still_composes_the_run_gets_nothing_added(tmp_path, capsys, compose_config):
    config = trained(compose_config, "experiment=small_7k", "trainer.epochs=3")
    write_trained_run(tmp_path / "runs" / "r1", ["experiment=small_7k", "trainer.epochs=3"], config)
    assert readme_command(tmp_path, capsys) == (["experiment=small_7k", "trainer.epochs=3"], "")


def test_keys_the_presets_no_longer_have_are_named_in_a_warning(tmp_path, capsys, compose_config):
    config = trained(compose_config, "model=v3")
    config["model"]["blocks"].append({"channels": 64, "kernel": 3})
    config["trainer"]["retired_knob"] = 1
    write_trained_run(tmp_path / "runs" / "r1", ["model=v3"], config)

    _, warnings = readme_command(tmp_path, capsys)

    lost = "model.blocks.6.channels, model.blocks.6.kernel, trainer.retired_knob"
    assert f"cannot train what its runs trained, as the presets no longer have {lost}" in warnings
    assert f"(the runs' whole config: {tmp_path / 'runs' / 'r1'}/.hydra/config.yaml)" in warnings


def test_a_command_naming_a_preset_that_is_gone_is_named_in_a_warning(tmp_path, capsys, compose_config):
    config = trained(compose_config, "model=v3")
    write_trained_run(tmp_path / "runs" / "r1", ["model=v3_renamed_since"], config)
    _, warnings = readme_command(tmp_path, capsys)
    assert "model=v3_renamed_since" in warnings and "no longer composes" in warnings


def test_keys_added_after_the_run_count_as_their_off_defaults(compose_config):
    composed = trained(compose_config, "experiment=v3_plus")
    saved = copy.deepcopy(composed)
    del (
        saved["model"]["blocks"][0]["groups"],
        saved["trainer"]["eval_hflip"],
        saved["data"]["augment"]["hflip"],
    )
    assert drift_pins(saved, composed) == ([], [])

    composed["trainer"]["eval_hflip"] = True  # a preset turned the new keys on since
    composed["data"]["augment"]["hflip"] = 0.5
    assert drift_pins(saved, composed) == (["trainer.eval_hflip=false", "data.augment.hflip=0.0"], [])


def test_onecycle_momentum_keys_added_since_count_as_torchs_defaults(compose_config):
    """Runs saved before `scheduler.cycle_momentum` existed cycled beta1, torch's default."""
    composed = trained(compose_config, "experiment=tiny_5k")
    saved = copy.deepcopy(composed)
    for key in ("cycle_momentum", "base_momentum", "max_momentum"):
        del saved["scheduler"][key]
    saved["scheduler"]["max_lr"] = 0.02
    composed["scheduler"]["cycle_momentum"] = False  # a preset turned cycling off since
    assert drift_pins(saved, composed) == (["scheduler.max_lr=0.02", "scheduler.cycle_momentum=true"], [])
    cosine = trained(compose_config, "scheduler=cosine")
    assert drift_pins(cosine, copy.deepcopy(cosine)) == ([], []), "no OneCycle keys for other schedulers"


def test_runs_saved_before_model_activation_existed_count_as_relu(compose_config):
    """`small_7k`'s rounds 11-18 trained ReLU without saving it; the preset has SiLU since round 24."""
    composed = trained(compose_config, "experiment=small_7k")
    saved = copy.deepcopy(composed)
    del saved["model"]["activation"]
    assert composed["model"]["activation"] == "silu"
    assert drift_pins(saved, composed) == (["model.activation=relu"], [])
    relu = trained(compose_config, "model=v3")
    del relu["model"]["activation"]
    assert drift_pins(relu, trained(compose_config, "model=v3")) == ([], [])


def test_seed_and_resume_are_never_pinned(compose_config):
    saved = trained(compose_config, "resume=x/last.pt")
    assert (saved["seed"], saved["resume"]) == (1, "x/last.pt")
    assert drift_pins(saved, OmegaConf.to_container(compose_config(), resolve=True)) == ([], [])


@pytest.mark.parametrize(
    "value", ["12", "true", "null", "a b", "it's", "1e-3", "/data/x", "", None, False, 0, 2.5e-05, []]
)
def test_pinned_values_read_back_as_the_same_value_and_type(value):
    override = OverridesParser.create().parse_override(f"key={hydra_value(value)}")
    assert override.value() == value and type(override.value()) is type(value)
