"""Early stopping on validation accuracy: the rule, its config checks, and a real run it ends.

The end-to-end run asks for an improvement no epoch can make (`min_delta=100` points), so the rule
ends it after epoch 2 whatever the accuracies are: the test does not depend on how training goes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from mnist_exp.config.validation import validate
from mnist_exp.engine.early_stopping import EarlyStopping
from mnist_exp.errors import ConfigError
from mnist_exp.report.cli import main as report_main
from mnist_exp.summarize import summarize
from tests.conftest import run_cli

TINY = ["data.train_subset=512", "data.val_size=500", "trainer.device=cpu", "trainer.threads=1",
        "trainer.log_every_n_steps=2", "model=tiny_5k"]  # fmt: skip


def history(*val_accs: float) -> list[dict]:
    return [{"epoch": epoch, "val_acc": acc} for epoch, acc in enumerate(val_accs, start=1)]


def test_patience_counts_the_epochs_since_the_best_validation_accuracy():
    rule = EarlyStopping(patience=2, min_delta=0.0)
    assert rule.epochs_without_improvement(history(90, 91, 90.5)) == 1
    assert not rule.should_stop(history(90, 91, 90.5))
    assert rule.should_stop(history(90, 91, 90.5, 91.0)), "equal to the best is no improvement"
    assert not rule.should_stop(history(90, 91, 90.5, 91.2)), "a new best starts the count again"


def test_an_improvement_must_beat_the_best_by_more_than_min_delta():
    rule = EarlyStopping(patience=1, min_delta=0.5)
    assert rule.should_stop(history(90.0, 90.4))
    assert not rule.should_stop(history(90.0, 90.6))
    assert rule.epochs_without_improvement(history(90.0, 90.4, 90.8)) == 0, "90.8 beats 90.0 by 0.8"


def test_patience_zero_never_stops():
    assert not EarlyStopping(patience=0, min_delta=0.0).should_stop(history(99, 10, 5, 1))


def test_early_stopping_without_a_validation_split_is_refused(compose_config):
    with pytest.raises(ConfigError) as caught:
        validate(compose_config("trainer.early_stopping.patience=3"))
    message = str(caught.value)
    assert "trainer.early_stopping.patience=3 needs a validation split" in message
    assert "data.val_size" in message and "\n" not in message
    validate(compose_config("trainer.early_stopping.patience=3", "data.val_size=5000"))


@pytest.mark.parametrize(
    "override, rule",
    [
        ("trainer.early_stopping.patience=-1", "must be >= 0"),
        ("trainer.early_stopping.min_delta=-0.1", "must be >= 0"),
    ],
)
def test_negative_early_stopping_settings_are_refused(compose_config, override, rule):
    with pytest.raises(ConfigError, match=f"{override.split('=')[0]}=.* is not allowed: {rule}"):
        validate(compose_config(override, "data.val_size=5000"))


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> tuple[Path, object]:
    cwd = tmp_path_factory.mktemp("early")
    result = run_cli(
        *TINY, "trainer.epochs=6", "trainer.early_stopping.patience=1",
        "trainer.early_stopping.min_delta=100", "hydra.run.dir=run", cwd=cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "run", result


def test_a_run_stops_once_validation_accuracy_stops_improving(stopped_run):
    run_dir, result = stopped_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["stopped_epoch"], metrics["epochs"]) == ("stopped_early", 2, 6)
    assert [record["epoch"] for record in metrics["history"]] == [1, 2]
    assert "test_acc" not in metrics["history"][0], "with a split, test measures only the last epoch"
    assert metrics["final_test_acc"] == metrics["history"][-1]["test_acc"]
    assert "Stopped early after epoch 2 of 6" in result.stdout + result.stderr
    assert (run_dir / "confusion.json").is_file(), "the final diagnostics ran, as for a completed run"
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["attempts"][-1]["ended_as"] == "stopped_early"
    layout = provenance["attempts"][-1]["memory_layout"]
    assert (layout["channels_last"], layout["ms_per_step"]) == (False, None), "too short to time"
    assert layout["by"].endswith("training steps: NCHW, not timed")


def test_an_early_stopped_runs_checkpoints_agree_with_its_metrics(stopped_run):
    run_dir, _ = stopped_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert (last["status"], last["epoch"], last["history"]) == ("stopped_early", 2, metrics["history"])
    best_epoch = max(metrics["history"], key=lambda record: record["val_acc"])["epoch"]
    assert best["epoch"] == best_epoch and best["epoch"] <= last["epoch"]
    assert metrics["best_val_acc"] == max(record["val_acc"] for record in metrics["history"])


def test_resuming_an_early_stopped_run_says_there_is_nothing_to_resume(stopped_run):
    run_dir, _ = stopped_run
    result = run_cli(f"resume={run_dir}", cwd=run_dir.parent)
    assert result.returncode != 0
    assert "stopped early after epoch 2" in result.stderr and "nothing to resume" in result.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "stopped_early"


def test_the_summary_and_the_report_show_the_early_stop(stopped_run, tmp_path):
    run_dir, _ = stopped_run
    summarize(run_dir.parent)
    summary = (run_dir.parent / "summary.md").read_text()
    assert "| stopped_early |" in summary and "| 1/1 |" in summary, "an early stop is a finished run"
    assert report_main([str(run_dir), "--out", str(tmp_path / "report")]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| tiny_5k"))
    assert "| 2/6 |" in row and "| stopped_early |" in row


def test_a_run_killed_as_early_stopping_ended_it_resumes_to_that_end(stopped_run, tmp_path):
    """Epoch 2 was saved, with its test score, as the one that stops the run; the process died
    before the run was marked finished. Resumed, it trains no further epoch."""
    run_dir, _ = stopped_run
    killed = Path(shutil.copytree(run_dir, tmp_path / "killed"))
    last = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    torch.save(last | {"status": "interrupted"}, killed / "checkpoints" / "last.pt")
    metrics = json.loads((killed / "metrics.json").read_text())
    (killed / "metrics.json").write_text(json.dumps(metrics | {"status": "interrupted"}))

    result = run_cli(f"resume={killed}", cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    resumed = json.loads((killed / "metrics.json").read_text())
    assert (resumed["status"], resumed["stopped_epoch"]) == ("stopped_early", 2)
    assert resumed["history"] == metrics["history"], "no epoch trained again or after"
