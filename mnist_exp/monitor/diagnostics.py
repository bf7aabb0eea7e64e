"""End-of-run diagnostics on the test set: which digits the model confuses, not only how often.

`log_test_diagnostics` runs once after the last epoch, on the predictions that epoch's recorded
test accuracy came from (same weights, views and precision), so the two always agree. It writes
`confusion.json` into the run directory (10x10 counts, rows = true label, columns = predicted
label) and, to TensorBoard, the confusion matrix and the misclassified digits as images plus one
precision-recall curve per class.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from mnist_exp.fs.atomic import write_json
from mnist_exp.monitor.figures import confusion_image, mistakes_image
from mnist_exp.rundir.layout import CONFUSION

NUM_CLASSES = 10
MAX_MISTAKES_SHOWN = 100


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """[true, predicted] counts."""
    pairs = labels * NUM_CLASSES + predictions
    return torch.bincount(pairs, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def log_test_diagnostics(
    writer: SummaryWriter,
    probabilities: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    run_dir: Path,
    step: int,
    mean: float,
    std: float,
) -> None:
    """`probabilities` [N, 10] are the model's predictions for `images`, the normalised test set
    [N, 1, 28, 28]; `mean`/`std` undo that normalisation for display. Tags:
    `test/confusion_matrix`, `test/misclassified`, `test/pr_curve/<digit>`."""
    probabilities = probabilities.cpu()
    labels = labels.cpu()
    predictions = probabilities.argmax(dim=1)
    counts = confusion_matrix(labels, predictions)
    write_json(
        Path(run_dir) / CONFUSION,
        {"rows": "true label", "columns": "predicted label", "counts": counts.tolist()},
    )
    picture = confusion_image(counts.numpy(), "test images")
    writer.add_image("test/confusion_matrix", picture, step, dataformats="HWC")

    wrong = (predictions != labels).nonzero().squeeze(1)
    confidence = probabilities[wrong, predictions[wrong]]
    most_confident = confidence.argsort(descending=True)[:MAX_MISTAKES_SHOWN]
    shown = wrong[most_confident]
    digits = (images[shown.to(images.device)].cpu() * std + mean).clamp(0, 1).squeeze(1)
    grid = mistakes_image(
        digits.numpy(),
        labels[shown].numpy(),
        predictions[shown].numpy(),
        confidence[most_confident].numpy(),
        total=len(wrong),
    )
    writer.add_image("test/misclassified", grid, step, dataformats="HWC")

    for digit in range(NUM_CLASSES):
        writer.add_pr_curve(f"test/pr_curve/{digit}", labels == digit, probabilities[:, digit], step)
    writer.flush()
