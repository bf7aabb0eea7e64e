"""Choosing a preset whose Hydra plugin is missing names the extra to install."""

from __future__ import annotations

import sys

import pytest

from mnist_exp.cli import plugins as plugin_extras
from mnist_exp.cli.plugins import JOBLIB, exit_if_plugin_missing, missing_plugin_message, plugin_installed


@pytest.fixture
def nothing_installed(monkeypatch):
    monkeypatch.setattr(plugin_extras, "find_spec", lambda name: None)


@pytest.mark.parametrize(
    "choice,extra",
    [
        ("hydra/launcher=parallel", "sweep"),
        ("hydra/launcher=local_isolated", "slurm"),
        ("hydra/launcher=slurm", "slurm"),
        ("hydra/launcher=ray_tasks", "ray"),
        ("hparams_search=optuna", "optuna"),
    ],
)
def test_missing_plugin_names_its_extra(nothing_installed, choice, extra):
    message = missing_plugin_message(["seed=1", choice])
    assert message.startswith(choice) and f'pip install "mnist-exp[{extra}]"' in message


def test_other_overrides_need_nothing(nothing_installed):
    assert missing_plugin_message(["model=v2", "hydra/launcher=basic", "seed=1,2"]) is None


def test_exit_code_2_and_message_on_stderr(nothing_installed, capsys):
    with pytest.raises(SystemExit) as stop:
        exit_if_plugin_missing(["hydra/launcher=parallel"])
    assert stop.value.code == 2
    assert "hydra-joblib-launcher" in capsys.readouterr().err


def test_no_plugin_namespace_at_all_counts_as_not_installed(monkeypatch):
    """A venv with only `.[dev]` has no `hydra_plugins` package, and `find_spec` then raises."""
    for name in [name for name in sys.modules if name.startswith("hydra_plugins.")]:
        monkeypatch.delitem(sys.modules, name)  # find_spec answers from sys.modules if imported
    monkeypatch.setitem(sys.modules, "hydra_plugins", None)
    assert not plugin_installed(JOBLIB[0])
    assert missing_plugin_message(["hydra/launcher=parallel"]).endswith('pip install "mnist-exp[sweep]"')
