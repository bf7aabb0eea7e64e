"""End-of-run test diagnostics: confusion.json and the TensorBoard images and PR curves."""

from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from mnist_exp.monitor.diagnostics import log_test_diagnostics
from tests.conftest import run_cli

MEAN, STD = 0.1307, 0.3081
COUNT = 60
STEP = 3


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    generator = torch.Generator().manual_seed(1)
    images = (torch.rand(COUNT, 1, 28, 28, generator=generator) - MEAN) / STD
    labels = torch.randint(0, 10, (COUNT,), generator=generator)
    probabilities = torch.rand(COUNT, 10, generator=generator).softmax(dim=1)
    writer = SummaryWriter(log_dir=str(run_dir))
    log_test_diagnostics(writer, probabilities, images, labels, run_dir, STEP, mean=MEAN, std=STD)
    writer.close()
    return run_dir, probabilities, labels


def test_confusion_json_counts_every_test_image_once(diagnosed):
    run_dir, *_ = diagnosed
    counts = json.loads((run_dir / "confusion.json").read_text())["counts"]
    assert len(counts) == 10 and all(len(row) == 10 for row in counts)
    assert sum(map(sum, counts)) == COUNT


def test_confusion_json_rows_are_true_labels_columns_the_most_probable_digit(diagnosed):
    run_dir, probabilities, labels = diagnosed
    expected = [[0] * 10 for _ in range(10)]
    for true, predicted in zip(labels.tolist(), probabilities.argmax(1).tolist(), strict=True):
        expected[true][predicted] += 1
    assert json.loads((run_dir / "confusion.json").read_text())["counts"] == expected


def test_a_bf16_runs_confusion_matrix_agrees_with_its_recorded_test_accuracy(tmp_path):
    """Real MNIST, one short epoch under bf16 autocast: the matrix comes from the predictions the
    final test accuracy was measured on, not from a second pass in another precision (which
    disagreed by 9 of 10,000 images on this run before)."""
    run_dir = tmp_path / "run"
    result = run_cli(
        "data.train_subset=5000", "trainer.epochs=1", "trainer.device=cpu", "trainer.threads=1",
        "trainer.precision=bf16", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads((run_dir / "confusion.json").read_text())["counts"]
    final_test_acc = json.loads((run_dir / "metrics.json").read_text())["final_test_acc"]
    assert sum(counts[i][i] for i in range(10)) == round(final_test_acc * sum(map(sum, counts)) / 100)


def test_tensorboard_holds_confusion_and_mistakes_images_and_a_pr_curve_per_digit(diagnosed):
    run_dir, *_ = diagnosed
    events = EventAccumulator(str(run_dir)).Reload()
    assert {"test/confusion_matrix", "test/misclassified"} <= set(events.Tags()["images"])
    assert [image.step for image in events.Images("test/misclassified")] == [STEP]
    pr_curves = {f"test/pr_curve/{digit}" for digit in range(10)}
    assert pr_curves <= set(events.Tags()["tensors"])
    assert events.Tensors("test/pr_curve/0")[0].step == STEP
