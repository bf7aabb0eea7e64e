"""The CLI as a user types it, in subprocesses, on real MNIST (tiny subsets, one epoch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import run_cli

QUICK = ["trainer.epochs=1", "data.train_subset=1000", "trainer.device=cpu", "trainer.log_every_n_steps=2",
         "trainer.threads=1"]  # fmt: skip
HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}


def only_run_dir(root: Path) -> Path:
    dirs = [p.parent for p in root.rglob("metrics.json")]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    cwd = tmp_path_factory.mktemp("cli")
    result = run_cli(*QUICK, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, only_run_dir(cwd / "outputs")


def test_metrics_json_has_the_documented_shape(quick_run):
    _, run_dir = quick_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == [
        "model",
        "params",
        "device",
        "epochs",
        "status",
        "history",
        "final_test_acc",
        "duration_s",
    ]
    assert (metrics["model"], metrics["params"], metrics["device"]) == ("v3", 18_594, "cpu")
    assert (metrics["epochs"], metrics["status"]) == (1, "completed")
    assert [set(record) for record in metrics["history"]] == [HISTORY_KEYS]
    assert metrics["final_test_acc"] == metrics["history"][-1]["test_acc"]
    assert 10 < metrics["final_test_acc"] <= 100, "accuracies are percentages"


def test_tensorboard_events_hold_the_scalars_config_and_graph(quick_run):
    _, run_dir = quick_run
    events = EventAccumulator(str(run_dir)).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/train", "accuracy/train", "loss/test", "accuracy/test", "lr", "loss/train_batch"} <= scalars
    assert "epoch" not in scalars, "a chart of the epoch number tells nothing"
    # 1000 images in batches of 128 are 8 steps; logged every 2nd step.
    assert [event.step for event in events.Scalars("loss/train_batch")] == [2, 4, 6, 8]
    assert {"config/model/text_summary", "run/command/text_summary"} <= set(events.Tags()["tensors"])
    assert events.Tags()["graph"]


def test_checkpoints_load_with_weights_only(quick_run):
    _, run_dir = quick_run
    assert not (run_dir / "checkpoints" / "best.pt").exists(), "no validation split: no best epoch"
    for name in ("last.pt",):
        state = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert state["epoch"] == 1
        assert state["config"]["model"]["name"] == "v3"
        assert "optimizer" in state and "scheduler" in state
        assert any(key.endswith("weight") for key in state["model"])


def test_run_dir_holds_hydra_config_and_log(quick_run):
    result, run_dir = quick_run
    assert (run_dir / ".hydra" / "config.yaml").exists()
    log = (run_dir / "train.log").read_text()
    assert "Epoch 1/1" in log and "Total params" in log and "Run completed" in log
    assert "Epoch 1/1" in result.stdout + result.stderr


def test_two_runs_started_together_get_two_run_dirs(tmp_path):
    args = [*QUICK, "data.train_subset=200"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mnist_exp", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    runs = {p.parent for p in (tmp_path / "outputs").rglob("metrics.json")}
    assert len(runs) == 2


def test_multirun_makes_one_run_dir_per_job(tmp_path):
    result = run_cli("-m", "model=v2,v3", *QUICK, "data.train_subset=200", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = list((tmp_path / "multirun").iterdir())
    assert len(sweeps) == 1
    # Each job's dir says its number and the override the sweep varies, not those fixed for all.
    names = ["0_model=v2", "1_model=v3"]
    assert sorted(p.name for p in sweeps[0].iterdir() if p.is_dir()) == names
    models = [json.loads((sweeps[0] / name / "metrics.json").read_text())["model"] for name in names]
    assert models == ["v2", "v3"]


@pytest.mark.slow
def test_real_mnist_through_the_fetch_chain_v3_one_epoch_on_10k_reaches_95_percent(tmp_path):
    empty_cache = tmp_path / "cache"
    result = run_cli(
        "model=v3",
        "scheduler=onecycle",
        "trainer.epochs=1",
        "data.train_subset=10000",
        cwd=tmp_path,
        env={"MNIST_EXP_DATA_DIR": str(empty_cache)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((empty_cache / "MNIST" / "raw").glob("*-ubyte"))) == 4
    metrics = json.loads((only_run_dir(tmp_path / "outputs") / "metrics.json").read_text())
    assert metrics["final_test_acc"] >= 95.0


def test_console_script_runs_the_same_app(tmp_path):
    result = subprocess.run(
        ["mnist-exp", "--cfg", "job", "model=v1"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "name: v1" in result.stdout
