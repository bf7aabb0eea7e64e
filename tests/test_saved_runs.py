"""Run directories written by an earlier version of the package still work: resume, predict and
the report read them as they read a new run's.

`tests/fixtures/saved_runs/` holds two tiny runs (450 parameters) made on the real MNIST with the
CLI before the package was laid out by concern: `completed` (1 epoch, no validation split) and
`killed` (SIGKILL after epoch 1 of 3, with a validation split and a weight average).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from mnist_exp.data import ensure_named, load_split
from mnist_exp.data.tensors import normalise, split_indices
from mnist_exp.inference.checkpoint import load_trained_model
from mnist_exp.report.cli import main as report_main
from tests.conftest import run_cli

SAVED_RUNS = Path(__file__).parent / "fixtures" / "saved_runs"


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float):
    with torch.inference_mode():
        predicted = model(normalise(images, mean, std)).argmax(dim=1)
    return 100.0 * (predicted == labels).sum().item() / len(labels)


def recorded(run: str) -> dict:
    return json.loads((SAVED_RUNS / run / "metrics.json").read_text())


def test_an_older_runs_best_pt_chosen_on_test_is_passed_over_and_labelled():
    assert load_trained_model(SAVED_RUNS / "completed").path.name == "last.pt"
    older_best = load_trained_model(SAVED_RUNS / "completed" / "checkpoints" / "best.pt")
    assert older_best.selected_on == "test" and "optimistic" in older_best.description
    chosen_on_validation = load_trained_model(SAVED_RUNS / "killed")
    assert (chosen_on_validation.path.name, chosen_on_validation.selected_on) == ("best.pt", "validation")


def test_a_saved_model_scores_on_test_what_its_run_recorded():
    trained = load_trained_model(SAVED_RUNS / "completed")
    images, labels = load_split(ensure_named("mnist"), train=False)

    score = accuracy(trained.model, images, labels, trained.mean, trained.std)

    assert score == pytest.approx(recorded("completed")["final_test_acc"], abs=0.011)
    assert sum(p.numel() for p in trained.model.parameters()) == 450


def test_a_saved_weight_average_scores_on_validation_what_its_run_recorded():
    trained = load_trained_model(SAVED_RUNS / "killed")
    images, labels = load_split(ensure_named("mnist"), train=True)
    _, validation = split_indices(len(labels), val_size=500, train_subset=4096)

    score = accuracy(trained.model, images[validation], labels[validation], trained.mean, trained.std)

    assert score == pytest.approx(recorded("killed")["final_val_acc"], abs=0.21)


@pytest.mark.slow
def test_a_saved_interrupted_run_resumes_to_its_last_epoch(tmp_path):
    run_dir = tmp_path / "killed"
    shutil.copytree(SAVED_RUNS / "killed", run_dir)

    result = run_cli(f"resume={run_dir}", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert [record["epoch"] for record in metrics["history"]] == [1, 2, 3]
    assert metrics["history"][0] == recorded("killed")["history"][0]


def test_the_report_lists_saved_runs_with_their_status(tmp_path):
    assert (
        report_main([str(SAVED_RUNS / "completed"), str(SAVED_RUNS / "killed"), "--out", str(tmp_path)]) == 0
    )

    rows = {row["status"]: row for row in csv.DictReader((tmp_path / "report.csv").open())}
    assert set(rows) == {"completed", "running"}
    assert float(rows["completed"]["final_test_acc_mean"]) == recorded("completed")["final_test_acc"]
    assert float(rows["running"]["final_val_acc_mean"]) == recorded("killed")["final_val_acc"]
