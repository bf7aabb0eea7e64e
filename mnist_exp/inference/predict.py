"""Which digit is in each picture: images made into MNIST's form, scored by a trained model on the CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from mnist_exp.data.tensors import normalise
from mnist_exp.inference.checkpoint import TrainedModel
from mnist_exp.inference.digit_image import IMAGE_SUFFIXES, mnist_digit


class InputError(Exception):
    """An image path that does not exist, or a directory without images."""


@dataclass(frozen=True)
class Prediction:
    file: str
    digit: int
    probability: float
    runner_up: int
    runner_up_probability: float
    probabilities: list[float]


def image_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise InputError(
                    f"{path}: no images in this directory (expected {', '.join(IMAGE_SUFFIXES)})"
                )
            files += sorted(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such image file or directory")
    return files


def predict(trained: TrainedModel, files: list[Path]) -> list[Prediction]:
    digits = torch.from_numpy(np.stack([mnist_digit(file) for file in files]))
    with torch.inference_mode():
        probabilities = trained.model(normalise(digits, trained.mean, trained.std)).softmax(dim=1)
    top = probabilities.topk(2, dim=1)
    return [
        Prediction(
            file=str(file),
            digit=int(top.indices[i, 0]),
            probability=float(top.values[i, 0]),
            runner_up=int(top.indices[i, 1]),
            runner_up_probability=float(top.values[i, 1]),
            probabilities=[round(float(p), 6) for p in probabilities[i]],
        )
        for i, file in enumerate(files)
    ]


def predictions_table(predictions: list[Prediction], checkpoint: str) -> Table:
    """`checkpoint` says which file predicted, and how its epoch was chosen."""
    table = Table(title=f"Predictions of {checkpoint}", title_justify="left")
    for header, justify in [("file", "left"), ("digit", "right"), ("probability", "right")]:
        table.add_column(header, justify=justify)
    table.add_column("runner-up", justify="right")
    table.add_column("probability", justify="right")
    for p in predictions:
        table.add_row(
            p.file, str(p.digit), f"{p.probability:.1%}", str(p.runner_up), f"{p.runner_up_probability:.1%}"
        )
    return table
