"""The report's four PNGs, drawn with matplotlib's object API so no display is ever needed.

`loss.png`, `accuracy.png` and `lr.png` draw one curve per table row (the mean over its seeds,
with a ± std band when there are several); `comparison.png` draws every run's test accuracy.
"""

from __future__ import annotations

import io
import statistics
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mnist_exp.report.runs import Run
from mnist_exp.report.summary import Row
from mnist_exp.run_files import atomic_write_bytes

FIGSIZE_INCHES = (8, 5)
DPI = 100  # so every PNG is 800 x 500 pixels
PLOT_NAMES = ("loss.png", "accuracy.png", "lr.png", "comparison.png")


def write_plots(out_dir: Path, rows: list[Row]) -> list[str]:
    """Write the four PNGs into `out_dir`; returns their file names."""
    draw = {
        "loss.png": lambda ax: draw_train_and_test(ax, rows, "loss", "Loss per epoch", "cross-entropy loss"),
        "accuracy.png": lambda ax: draw_train_and_test(ax, rows, "acc", "Accuracy per epoch", "accuracy (%)"),
        "lr.png": lambda ax: draw_learning_rate(ax, rows),
        "comparison.png": lambda ax: draw_comparison(ax, rows),
    }
    for name in PLOT_NAMES:
        figure = Figure(figsize=FIGSIZE_INCHES, dpi=DPI, layout="constrained")
        draw[name](figure.add_subplot())
        save_png(figure, out_dir / name)
    return list(PLOT_NAMES)


def save_png(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())


def row_label(row: Row) -> str:
    label = f"{row.model} {row.label}".strip()
    if len(row.runs) > 1:
        label += f" (n={len(row.runs)})"
    if row.status != "completed":
        label += f" [{row.status}]"
    return label


def per_epoch(runs: list[Run], key: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and std (0 for one run) of `key` over the runs that recorded it."""
    values: dict[int, list[float]] = {}
    for run in runs:
        for record in run.history:
            if record.get(key) is not None:
                values.setdefault(record["epoch"], []).append(float(record[key]))
    epochs = sorted(values)
    means = [statistics.fmean(values[e]) for e in epochs]
    stds = [statistics.stdev(values[e]) if len(values[e]) > 1 else 0.0 for e in epochs]
    return epochs, means, stds


def plot_mean(ax: Axes, runs: list[Run], key: str, **style) -> None:
    epochs, means, stds = per_epoch(runs, key)
    if not epochs:
        return
    ax.plot(epochs, means, marker=".", **style)
    if len(runs) > 1:
        lower = [m - s for m, s in zip(means, stds, strict=True)]
        upper = [m + s for m, s in zip(means, stds, strict=True)]
        ax.fill_between(epochs, lower, upper, color=style.get("color"), alpha=0.15, linewidth=0)


def finish(ax: Axes, title: str, ylabel: str, has_data: bool) -> None:
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if has_data:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no epoch finished yet", ha="center", va="center", transform=ax.transAxes)


def draw_train_and_test(ax: Axes, rows: list[Row], metric: str, title: str, ylabel: str) -> None:
    has_data = False
    for index, row in enumerate(rows):
        if not any(run.history for run in row.runs):
            continue
        has_data = True
        color = f"C{index % 10}"
        plot_mean(ax, row.runs, f"test_{metric}", color=color, label=f"{row_label(row)} test")
        plot_mean(
            ax, row.runs, f"train_{metric}", color=color, linestyle="--", label=f"{row_label(row)} train"
        )
    if metric == "loss" and has_data:
        ax.set_yscale("log")
    finish(ax, f"{title}: test solid, train dashed", ylabel, has_data)


def draw_learning_rate(ax: Axes, rows: list[Row]) -> None:
    has_data = False
    for index, row in enumerate(rows):
        if any(run.history for run in row.runs):
            has_data = True
            plot_mean(ax, row.runs, "lr", color=f"C{index % 10}", label=row_label(row))
    finish(ax, "Learning rate at the start of each epoch", "learning rate", has_data)


def draw_comparison(ax: Axes, rows: list[Row]) -> None:
    has_data = False
    for index, row in enumerate(rows):
        for run in row.runs:
            epochs, accuracy, _ = per_epoch([run], "test_acc")
            if epochs:
                has_data = True
                ax.plot(
                    epochs, accuracy, marker=".", color=f"C{index % 10}", label=f"{run.name} ({row.model})"
                )
    finish(ax, "Test accuracy of every run", "test accuracy (%)", has_data)
