"""The report's four PNGs, drawn with matplotlib's object API so no display is ever needed.

`loss.png`, `accuracy.png` and `lr.png` draw one curve per table row (the mean over its seeds,
with a ± std band when there are several); `comparison.png` draws every run's test accuracy.
Each row has one colour and one legend entry, below the plot: a legend of a dozen rows with their
overrides would otherwise cover the curves or squeeze the axes to nothing.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mnist_exp.fs.atomic import atomic_write_bytes
from mnist_exp.report.runs import Run
from mnist_exp.report.stats import stat
from mnist_exp.report.summary import Row
from mnist_exp.rundir.metrics import FINISHED

WIDTH_INCHES, PLOT_HEIGHT_INCHES = 8, 5
DPI = 100  # so every PNG is 800 pixels wide, 500 tall plus the legend's lines
LEGEND_LINE_INCHES = 0.2  # one line of a "small" legend entry, with its spacing
LEGEND_LINE_CHARS = 105  # what fits on one line across the figure
PLOT_NAMES = ("loss.png", "accuracy.png", "lr.png", "comparison.png")


def write_plots(out_dir: Path, rows: list[Row]) -> list[str]:
    """Write the four PNGs into `out_dir`; returns their file names."""
    draw = {
        "loss.png": lambda ax: draw_train_and_test(ax, rows, "loss", "Loss per epoch", "cross-entropy loss"),
        "accuracy.png": lambda ax: draw_train_and_test(ax, rows, "acc", "Accuracy per epoch", "accuracy (%)"),
        "lr.png": lambda ax: draw_learning_rate(ax, rows),
        "comparison.png": lambda ax: draw_comparison(ax, rows),
    }
    legend_lines = sum(row_label(row).count("\n") + 1 for row in rows)
    for name in PLOT_NAMES:
        height = PLOT_HEIGHT_INCHES + LEGEND_LINE_INCHES * legend_lines
        figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
        ax = figure.add_subplot()
        draw[name](ax)
        if ax.get_legend_handles_labels()[0]:
            figure.legend(loc="outside lower center", fontsize="small", frameon=False)
        save_png(figure, out_dir / name)
    return list(PLOT_NAMES)


def row_colour(index: int) -> tuple[float, ...]:
    """tab10's colours for the first ten rows, then tab20's lighter shades of them: distinct up to 20."""
    return colormaps["tab20"](2 * (index % 10) + (index // 10) % 2)


def save_png(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())


def row_label(row: Row) -> str:
    """Model, overrides, seeds and status, wrapped to the figure's width."""
    label = f"{row.model} {row.label}".strip()
    if len(row.runs) > 1:
        label += f" (n={len(row.runs)})"
    if not all(run.status in FINISHED for run in row.runs):
        label += f" [{row.status}]"
    return textwrap.fill(label, LEGEND_LINE_CHARS, subsequent_indent="    ")


def per_epoch(runs: list[Run], key: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and std (0 for one run) of `key` over the runs that recorded it."""
    values: dict[int, list[float]] = {}
    for run in runs:
        for record in run.history:
            if record.get(key) is not None:
                values.setdefault(record["epoch"], []).append(float(record[key]))
    epochs = sorted(values)
    stats = [stat(values[epoch]) for epoch in epochs]
    return epochs, [s.mean for s in stats], [s.std or 0.0 for s in stats]


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
    if not has_data:
        ax.text(0.5, 0.5, "no epoch finished yet", ha="center", va="center", transform=ax.transAxes)


def draw_train_and_test(ax: Axes, rows: list[Row], metric: str, title: str, ylabel: str) -> None:
    has_data = False
    for index, row in enumerate(rows):
        if not any(run.history for run in row.runs):
            continue
        has_data = True
        color = row_colour(index)
        plot_mean(ax, row.runs, f"test_{metric}", color=color, label=row_label(row))
        plot_mean(ax, row.runs, f"train_{metric}", color=color, linestyle="--")
    if metric == "loss" and has_data:
        ax.set_yscale("log")
    finish(ax, f"{title}: test solid, train dashed", ylabel, has_data)


def draw_learning_rate(ax: Axes, rows: list[Row]) -> None:
    has_data = False
    for index, row in enumerate(rows):
        if any(run.history for run in row.runs):
            has_data = True
            plot_mean(ax, row.runs, "lr", color=row_colour(index), label=row_label(row))
    finish(ax, "Learning rate at the start of each epoch", "learning rate", has_data)


def draw_comparison(ax: Axes, rows: list[Row]) -> None:
    has_data = False
    for index, row in enumerate(rows):
        label = row_label(row)  # once per row: its seeds share the colour
        for run in row.runs:
            epochs, accuracy, _ = per_epoch([run], "test_acc")
            if epochs:
                has_data = True
                ax.plot(epochs, accuracy, marker=".", color=row_colour(index), label=label)
                label = None
    finish(ax, "Test accuracy of every run, one colour per row", "test accuracy (%)", has_data)
