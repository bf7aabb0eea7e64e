"""`trainer.deterministic=true`: the flag reaches torch (and is undone for a run without it), the
run's provenance says so, and two such runs on the CPU end with the same bits."""

from __future__ import annotations

import json
import os

import pytest
import torch

from mnist_exp.accel.determinism import CUBLAS_WORKSPACE, set_determinism
from mnist_exp.errors import DeviceError
from tests.conftest import run_cli

RUN = ["trainer.deterministic=true", "trainer.epochs=2", "data.train_subset=512", "data.val_size=200",
       "data/augment=light", "trainer.ema_decay=0.9", "trainer.device=cpu", "trainer.threads=2",
       "model=tiny_5k"]  # fmt: skip


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv(CUBLAS_WORKSPACE, raising=False)
    yield
    torch.use_deterministic_algorithms(False)


def test_the_setting_is_turned_on_and_off_for_each_run(restore_determinism):
    set_determinism(True, torch.device("cpu"))
    assert torch.are_deterministic_algorithms_enabled()
    set_determinism(False, torch.device("cpu"))
    assert not torch.are_deterministic_algorithms_enabled(), "a later job of the sweep must not inherit it"
    assert CUBLAS_WORKSPACE not in os.environ, "the CUDA workspace setting is for CUDA runs"


def test_on_cuda_the_cublas_workspace_is_fixed_before_cuda_starts(restore_determinism, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    set_determinism(True, torch.device("cuda"))
    assert os.environ[CUBLAS_WORKSPACE] == ":4096:8"


def test_on_cuda_already_started_without_the_workspace_it_says_how_to_start(restore_determinism, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(DeviceError, match=f"{CUBLAS_WORKSPACE}=:4096:8 python -m mnist_exp"):
        set_determinism(True, torch.device("cuda"))


def trained(tmp_path, name: str) -> tuple[dict, dict, dict]:
    result = run_cli(*RUN, f"hydra.run.dir={name}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    provenance = json.loads((run_dir / "provenance.json").read_text())
    return metrics, torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True), provenance


def timeless(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key != "seconds"} for record in history]


def test_two_deterministic_runs_on_the_cpu_are_bit_identical(tmp_path):
    first, first_state, provenance = trained(tmp_path, "first")
    second, second_state, _ = trained(tmp_path, "second")
    assert provenance["attempts"][-1]["deterministic"] is True
    assert timeless(first["history"]) == timeless(second["history"])
    for part in ("model", "ema", "optimizer"):
        flat_first, flat_second = flatten(first_state[part]), flatten(second_state[part])
        assert flat_first.keys() == flat_second.keys()
        unequal = [key for key in flat_first if not equal(flat_first[key], flat_second[key])]
        assert not unequal, f"{part}: {unequal[:5]}"


def flatten(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in flatten(value, f"{prefix}{key}.").items()}
    if isinstance(tree, list | tuple):
        return {k: v for i, value in enumerate(tree) for k, v in flatten(value, f"{prefix}{i}.").items()}
    return {prefix: tree}


def equal(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
