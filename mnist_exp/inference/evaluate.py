"""A trained model scored again, on a test set and on its run's validation split, as its run scored it.

The scoring is the run's own: the checkpoint's normalisation, the views the run averaged over
(`trainer.eval_hflip`, `trainer.eval_shift`), fp32 and the run's test batch size. So a completed
fp32 CPU run's last.pt, scored on its own test set, gives back its metrics.json `final_test_acc`
to the last digit, and anything else scored this way is comparable with the run's numbers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from torch import nn

from mnist_exp.accel.device import resolve_device
from mnist_exp.data import DATASETS, ensure_named, load_split
from mnist_exp.data.tensors import normalise, split_indices
from mnist_exp.engine.loop import loss_and_accuracy, predict_logits
from mnist_exp.engine.views import evaluated_network
from mnist_exp.errors import ConfigError
from mnist_exp.inference.checkpoint import TrainedModel
from mnist_exp.inference.overrides import EvalOverrides
from mnist_exp.monitor.diagnostics import confusion_matrix
from mnist_exp.monitor.figures import confusion_image
from mnist_exp.monitor.provenance import utc_now
from mnist_exp.rundir.layout import EVAL, EVALUATION, run_dir_of


@dataclass(frozen=True)
class Plan:
    """What an evaluation reads, where it runs and where it writes, all checked before any work."""

    dataset: str
    root: Path | str | None  # None: the data cache's default
    with_validation: bool  # the run's own dataset, and the run held a validation split
    batch_size: int
    device: torch.device
    out: Path


@dataclass(frozen=True)
class SplitScore:
    split: str  # "validation" or "test"
    images: int
    accuracy: float  # percent, as metrics.json keeps it
    loss: float  # mean plain cross-entropy of the scored network
    counts: list[list[int]]  # confusion matrix, [true][predicted]

    def per_class(self, classes: tuple[str, ...]) -> dict[str, float | None]:
        """Accuracy in percent within each true class (a confusion row); None for a class absent."""
        return {
            name: 100.0 * row[index] / sum(row) if sum(row) else None
            for index, (name, row) in enumerate(zip(classes, self.counts, strict=True))
        }


@dataclass(frozen=True)
class Evaluation:
    checkpoint: Path
    status: str | None  # the run's, when the checkpoint was written
    selected_on: str | None  # which split chose this checkpoint, where the loader says
    dataset: str
    classes: tuple[str, ...]
    device: str
    evaluated_utc: str
    scores: list[SplitScore]


def plan_evaluation(trained: TrainedModel, overrides: EvalOverrides) -> Plan:
    """The dataset (the run's own unless `data=` names one with the same classes), the device
    (DeviceError where absent) and the output folder; ConfigError for a dataset that cannot be."""
    data = trained.config["data"]
    trained_on = data.get("name")
    dataset = overrides.dataset or trained_on
    if dataset is None:
        raise ConfigError(
            f"{trained.path}: its config does not name the dataset it was trained on (config.data.name): "
            f"name one, e.g. data={next(iter(DATASETS))}"
        )
    if trained_on is not None:
        refuse_other_classes(trained.path, trained_on, dataset)
    device = resolve_device(overrides.device)
    out = overrides.out or run_dir_of(trained.path) / EVAL / f"{trained.path.stem}_{dataset}"
    return Plan(
        dataset=dataset,
        root=overrides.root or data.get("root"),
        with_validation=dataset == trained_on and data.get("val_size", 0) > 0,
        batch_size=overrides.test_batch_size or data.get("test_batch_size", 1000),
        device=device,
        out=out,
    )


def refuse_other_classes(checkpoint: Path, trained_on: str, dataset: str) -> None:
    """A model's outputs mean its own dataset's labels: scored against another's, the numbers
    would look like a (bad) accuracy while measuring nothing."""
    if trained_on not in DATASETS:
        raise ConfigError(
            f"{checkpoint} was trained on {trained_on!r}, which this version does not know "
            f"(one of {', '.join(DATASETS)})"
        )
    own, other = DATASETS[trained_on].classes, DATASETS[dataset].classes
    if own != other:
        raise ConfigError(
            f"{checkpoint} was trained on {trained_on} (classes {', '.join(own)}); {dataset} has other "
            f"classes ({', '.join(other)}): evaluate on a dataset with the same classes, "
            f"e.g. data={trained_on}"
        )


def labelled_splits(plan: Plan, data: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """uint8 images and labels of each split to score: the run's validation split (the very
    images it held out, by `split_indices`) where it had one, then the test set."""
    raw = ensure_named(plan.dataset, plan.root)
    splits = {}
    if plan.with_validation:
        images, labels = load_split(raw, train=True)
        _, val = split_indices(len(labels), data["val_size"], data.get("train_subset", 0))
        splits["validation"] = images[val], labels[val]
    splits["test"] = load_split(raw, train=False)
    return splits


def score(network: nn.Module, split: str, images, labels, trained: TrainedModel, plan: Plan) -> SplitScore:
    """`images` (uint8) normalised on the CPU and then moved, loss and accuracy found on the
    device: as training scores them."""
    inputs = normalise(images, trained.mean, trained.std).to(plan.device)
    logits = predict_logits(network, inputs, plan.batch_size)
    loss, accuracy = loss_and_accuracy(logits, labels.to(plan.device))
    counts = confusion_matrix(labels, logits.argmax(1).cpu())
    return SplitScore(split, len(labels), accuracy, loss, counts.tolist())


def evaluate(trained: TrainedModel, plan: Plan) -> Evaluation:
    config = trained.config
    trainer = config.get("trainer") or {}
    network = evaluated_network(
        trained.model.to(plan.device),
        eval_hflip=bool(trainer.get("eval_hflip", False)),
        eval_shift=int(trainer.get("eval_shift", 0)),
        background=-trained.mean / trained.std,  # a black pixel, normalised
    )
    splits = labelled_splits(plan, config["data"])
    return Evaluation(
        checkpoint=trained.path,
        status=trained.status,
        selected_on=trained.selected_on,
        dataset=plan.dataset,
        classes=DATASETS[plan.dataset].classes,
        device=str(plan.device),
        evaluated_utc=utc_now(),
        scores=[score(network, name, *split, trained, plan) for name, split in splits.items()],
    )


def confusion_document(evaluation: Evaluation, split: SplitScore) -> dict:
    return {
        "split": split.split,
        "dataset": evaluation.dataset,
        "rows": "true label",
        "columns": "predicted label",
        "classes": list(evaluation.classes),
        "counts": split.counts,
    }


def summary_document(evaluation: Evaluation) -> dict:
    return {
        "checkpoint": str(evaluation.checkpoint),
        "status": evaluation.status,
        "selected_on": evaluation.selected_on,
        "dataset": evaluation.dataset,
        "device": evaluation.device,
        "evaluated_utc": evaluation.evaluated_utc,
        "splits": {
            split.split: {
                "images": split.images,
                "accuracy": split.accuracy,
                "loss": split.loss,
                "per_class_accuracy": split.per_class(evaluation.classes),
                "confusion": split.counts,
            }
            for split in evaluation.scores
        },
    }


def png(rgb) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def evaluation_files(evaluation: Evaluation) -> dict[str, bytes | dict]:
    """Each file's name and content (a JSON document or PNG bytes), evaluation.json last: it is
    written once everything it sums up is in place."""
    files: dict[str, bytes | dict] = {}
    for split in evaluation.scores:
        files[f"confusion_{split.split}.json"] = confusion_document(evaluation, split)
        picture = confusion_image(
            torch.tensor(split.counts).numpy(), f"{split.split} images", list(evaluation.classes)
        )
        files[f"confusion_{split.split}.png"] = png(picture)
    files[EVALUATION] = summary_document(evaluation)
    return files


def evaluation_tables(evaluation: Evaluation) -> list[RenderableType]:
    """What was scored, each split's headline numbers, then the accuracy within each class, split
    by split (headings as lines of their own: a table's title folds to the table's width)."""
    notes = [f"run status at save: {evaluation.status}"] if evaluation.status else []
    if evaluation.selected_on:
        notes.append(f"its epoch chosen on {evaluation.selected_on} accuracy")
    if evaluation.selected_on == "test":
        notes.append("so its test accuracy is optimistic")
    heading = f"{evaluation.checkpoint} on {evaluation.dataset} ({evaluation.device})"
    heading = Text("; ".join([heading, *notes]), style="bold")

    headline = Table()
    for header in ("split", "images", "accuracy %", "loss"):
        headline.add_column(header, justify="left" if header == "split" else "right")
    for split in evaluation.scores:
        headline.add_row(split.split, str(split.images), f"{split.accuracy:.2f}", f"{split.loss:.4f}")

    per_class = Table()
    per_class.add_column("class")
    columns = [split.per_class(evaluation.classes) for split in evaluation.scores]
    for split in evaluation.scores:
        per_class.add_column(split.split, justify="right")
    for name in evaluation.classes:
        per_class.add_row(name, *("-" if c[name] is None else f"{c[name]:.1f}" for c in columns))
    return [heading, headline, Text("Accuracy % per class"), per_class]
