"""What a person sees: rich tables and lines on the console, plain-text copies in the run's log.

Log lines go through `logging` (Hydra sends them to the console and the run's log file). Tables
are printed by rich and their plain text is logged to `mnist_exp.logfile`, a logger that writes
to the file only, so the log file reads like the console without showing anything twice.
"""

from __future__ import annotations

import io
import logging

from omegaconf import DictConfig, OmegaConf
from rich import get_console
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

log = logging.getLogger("mnist_exp")
file_log = logging.getLogger("mnist_exp.logfile")


def show(renderable) -> None:
    """Print a rich renderable and keep its plain text in the log file."""
    get_console().print(renderable)
    plain = Console(file=io.StringIO(), width=110, color_system=None, force_terminal=False)
    plain.print(renderable)
    file_log.info("\n" + plain.file.getvalue().rstrip())


def show_config(cfg: DictConfig) -> None:
    yaml = OmegaConf.to_yaml(cfg, resolve=True)
    show(Syntax(yaml.rstrip(), "yaml", theme="ansi_dark", background_color="default"))


def show_model_summary(rows: list[tuple[str, str, int]], total: int) -> None:
    """The course notebook's torchsummary-style table: layer, output shape, parameters, and the total."""
    table = Table(title="Model summary", title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output shape")
    table.add_column("Param #", justify="right")
    for name, shape, count in rows:
        table.add_row(name, shape, f"{count:,}")
    table.add_section()
    table.add_row("Total params", "", f"{total:,}", style="bold")
    show(table)


def epoch_progress(shown: bool = True) -> Progress:
    """A transient per-epoch bar with the running batch loss; silent when not on a terminal, or
    not `shown` (a terminal shows one live display at a time)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        transient=True,
        console=get_console(),
        disable=not (shown and get_console().is_terminal),
    )


def log_epoch(record: dict, epochs: int) -> None:
    splits = [s for s in ("train", "val", "test") if f"{s}_loss" in record]
    parts = [f"{s} loss {record[f'{s}_loss']:.4f} acc {record[f'{s}_acc']:.2f}%" for s in splits]
    log.info(
        "Epoch %d/%d | %s | lr %.2e | %.1f s",
        record["epoch"],
        epochs,
        " | ".join(parts),
        record["lr"],
        record["seconds"],
    )


def show_final_summary(metrics: dict, run_dir: str) -> None:
    table = Table(title=f"Run {metrics['status'].replace('_', ' ')}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("model", f"{metrics['model']} ({metrics['params']:,} params) on {metrics['device']}")
    table.add_row("epochs", f"{len(metrics['history'])}/{metrics['epochs']}")
    if "final_val_acc" in metrics:
        table.add_row("final val acc", f"{metrics['final_val_acc']:.2f}%")
    table.add_row("final test acc", f"{metrics['final_test_acc']:.2f}%")
    table.add_row("duration", f"{metrics['duration_s']:.1f} s")
    table.add_row("run dir", run_dir)
    show(table)
