"""End-of-run test diagnostics: confusion.json and the TensorBoard images and PR curves."""

from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from mnist_exp.diagnostics import log_test_diagnostics
from mnist_exp.models import ConvNet

MEAN, STD = 0.1307, 0.3081
COUNT = 60
STEP = 3


def tiny_model() -> ConvNet:
    """BatchNorm and heavy dropout: predictions differ unless the model is in eval mode."""
    torch.manual_seed(0)
    return ConvNet("tiny", blocks=[{"channels": 4, "pool": True}, {"channels": 8}], dropout=0.5)


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    generator = torch.Generator().manual_seed(1)
    images = (torch.rand(COUNT, 1, 28, 28, generator=generator) - MEAN) / STD
    labels = torch.randint(0, 10, (COUNT,), generator=generator)
    model = tiny_model()
    model(images)  # a training-mode pass moves BatchNorm's running stats away from their defaults
    writer = SummaryWriter(log_dir=str(run_dir))
    log_test_diagnostics(writer, model, images, labels, run_dir, STEP, batch_size=16, mean=MEAN, std=STD)
    writer.close()
    return run_dir, model, images, labels


def test_confusion_json_counts_every_test_image_once(diagnosed):
    run_dir, *_ = diagnosed
    counts = json.loads((run_dir / "confusion.json").read_text())["counts"]
    assert len(counts) == 10 and all(len(row) == 10 for row in counts)
    assert sum(map(sum, counts)) == COUNT


def test_confusion_json_rows_are_true_labels_of_eval_mode_predictions(diagnosed):
    run_dir, model, images, labels = diagnosed
    model.eval()
    with torch.no_grad():
        predictions = model(images).argmax(1)
    expected = [[0] * 10 for _ in range(10)]
    for true, predicted in zip(labels.tolist(), predictions.tolist(), strict=True):
        expected[true][predicted] += 1
    assert json.loads((run_dir / "confusion.json").read_text())["counts"] == expected


def test_model_goes_back_to_the_mode_it_was_in(tmp_path):
    model = tiny_model().train()
    writer = SummaryWriter(log_dir=str(tmp_path))
    images, labels = torch.zeros(4, 1, 28, 28), torch.arange(4)
    log_test_diagnostics(writer, model, images, labels, tmp_path, 0, batch_size=4, mean=MEAN, std=STD)
    writer.close()
    assert model.training


def test_tensorboard_holds_confusion_and_mistakes_images_and_a_pr_curve_per_digit(diagnosed):
    run_dir, *_ = diagnosed
    events = EventAccumulator(str(run_dir)).Reload()
    assert {"test/confusion_matrix", "test/misclassified"} <= set(events.Tags()["images"])
    assert [image.step for image in events.Images("test/misclassified")] == [STEP]
    pr_curves = {f"test/pr_curve/{digit}" for digit in range(10)}
    assert pr_curves <= set(events.Tags()["tensors"])
    assert events.Tensors("test/pr_curve/0")[0].step == STEP
