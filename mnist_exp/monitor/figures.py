"""Pictures of a model's test mistakes, rendered by matplotlib into arrays TensorBoard can show.

Only matplotlib's object API is used (no pyplot), so nothing depends on a display or a backend.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

GRID_COLUMNS = 10
CAPTION_HEIGHT = 10  # mosaic pixels above each digit for its caption
CELL_HEIGHT = CAPTION_HEIGHT + 28
CELL_WIDTH = 30


def figure_to_rgb(figure: Figure) -> np.ndarray:
    """uint8 [H, W, 3], for `SummaryWriter.add_image(..., dataformats="HWC")`."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def confusion_image(
    counts: np.ndarray, scored: str = "test images", labels: list[str] | None = None
) -> np.ndarray:
    """Counts written in each cell, coloured by the share of the true class (the row); the title
    says what was `scored`, and `labels` name the classes where digits would not."""
    classes = len(counts)
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = Figure(figsize=(6.5, 6), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    ax.imshow(row_share, cmap="Blues", vmin=0, vmax=1)
    for true in range(classes):
        for predicted in range(classes):
            dark = row_share[true, predicted] > 0.5
            ax.text(
                predicted,
                true,
                str(counts[true, predicted]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    if labels is not None and labels != [str(index) for index in range(classes)]:
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_yticklabels(labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    accuracy = 100.0 * np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"Confusion matrix: {counts.sum()} {scored}, {accuracy:.2f}% correct")
    return figure_to_rgb(figure)


def mistakes_image(
    digits: np.ndarray, true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, total: int
) -> np.ndarray:
    """A grid of digits ([N, 28, 28] in 0..1), each headed `true→predicted confidence%`.

    The digits are tiled into one picture drawn once, with a caption strip above each: a hundred
    separate subplots would take seconds to render at the end of every run.
    """
    rows = max(1, math.ceil(len(digits) / GRID_COLUMNS))
    mosaic = np.ones((rows * CELL_HEIGHT, GRID_COLUMNS * CELL_WIDTH), dtype=np.float32)
    for index, digit in enumerate(digits):
        row, col = divmod(index, GRID_COLUMNS)
        top, left = row * CELL_HEIGHT + CAPTION_HEIGHT, col * CELL_WIDTH + 1
        mosaic[top : top + 28, left : left + 28] = digit
    figure = Figure(figsize=(GRID_COLUMNS * 0.9, rows * 1.2 + 0.4), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for index in range(len(digits)):
        row, col = divmod(index, GRID_COLUMNS)
        ax.text(
            col * CELL_WIDTH + CELL_WIDTH / 2,
            row * CELL_HEIGHT + CAPTION_HEIGHT / 2,
            f"{true[index]}→{predicted[index]} {100 * confidence[index]:.0f}%",
            ha="center",
            va="center",
            fontsize=7,
        )
    if len(digits) == 0:
        ax.text(GRID_COLUMNS * CELL_WIDTH / 2, CELL_HEIGHT / 2, "no misclassified test digits", ha="center")
    ax.set_title(f"{len(digits)} of {total} misclassified test digits, most confident first (true→predicted)")
    ax.axis("off")
    return figure_to_rgb(figure)
