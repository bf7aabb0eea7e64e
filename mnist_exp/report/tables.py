"""The summary rows as a rich table for the console, a Markdown table and a CSV file.

The console and Markdown show the same formatted columns ("98.61 ± 0.05"); the CSV keeps every
number in a column of its own, unformatted, for pandas or a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from mnist_exp.report.summary import Row, Stat
from mnist_exp.rundir.writes import atomic_write_bytes

DASH = "—"
README_START = "<!-- mnist-exp-report:start -->"
README_END = "<!-- mnist-exp-report:end -->"


def readme_markers(block: str | None) -> tuple[str, str]:
    """The lines around a README table: the unnamed pair, or `<!-- mnist-exp-report:NAME:start -->`
    and its end for a named block, so one README can hold tables made from different sets of runs
    (say a later round's, measured where the runs behind the first table are not kept)."""
    if block is None:
        return README_START, README_END
    return f"<!-- mnist-exp-report:{block}:start -->", f"<!-- mnist-exp-report:{block}:end -->"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row], str]
    numeric: bool = True


def plus_minus(value: Stat | None, digits: int = 2) -> str:
    if value is None:
        return DASH
    if value.std is None:
        return f"{value.mean:.{digits}f}"
    return f"{value.mean:.{digits}f} ± {value.std:.{digits}f}"


def epochs_text(row: Row) -> str:
    low, high = row.epochs_done
    done = str(low) if low == high else f"{low}-{high}"
    return done if row.epochs in (None, low) and low == high else f"{done}/{row.epochs or '?'}"


def display_columns(rows: list[Row], with_runs: bool, with_command: bool = False) -> list[Column]:
    """The columns worth showing: config and validation ones only when some row has them."""
    columns = [Column("model", lambda r: r.model, numeric=False)]
    if any(row.label for row in rows):
        columns.append(Column("config", lambda r: r.label, numeric=False))
    columns += [
        Column("n", lambda r: str(len(r.runs))),
        Column("seeds", lambda r: ", ".join(map(str, r.seeds)) or DASH, numeric=False),
        Column("params", lambda r: f"{r.params:,}" if r.params is not None else DASH),
        Column(
            "reduction",
            lambda r: f"{r.params_reduction:.1f}%" if r.params_reduction is not None else DASH,
        ),
        Column("epochs", epochs_text),
        Column("final test %", lambda r: plus_minus(r.final_test_acc)),
        Column("best test %", lambda r: plus_minus(r.best_test_acc)),
    ]
    if any(row.final_val_acc or row.best_val_acc for row in rows):
        columns += [
            Column("final val %", lambda r: plus_minus(r.final_val_acc)),
            Column("best val %", lambda r: plus_minus(r.best_val_acc)),
        ]
    columns += [
        Column("s/epoch", lambda r: plus_minus(r.seconds_per_epoch, digits=1)),
        Column("device", lambda r: r.devices or DASH, numeric=False),
        Column("status", lambda r: r.status, numeric=False),
    ]
    if with_runs:
        columns.append(Column("runs", lambda r: ", ".join(run.name for run in r.runs), numeric=False))
    if with_command:
        columns.append(Column("command", lambda r: f"`{r.command}`", numeric=False))
    return columns


def caption(rows: list[Row]) -> str:
    first = rows[0]
    reference = f"the first row ({first.model})"
    if first.reference_params and first.params != first.reference_params:
        reference = f"{first.reference_params:,}"
    return (
        f"Reduction: fewer params than {reference}, in percent. "
        "Accuracies in percent. "
        "Runs differing only in seed share a row: mean ± sample std over the n seeds."
    )


def rich_table(rows: list[Row]) -> Table:
    table = Table(title="Runs", title_justify="left", caption=caption(rows), caption_justify="left")
    columns = display_columns(rows, with_runs=False)
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in rows:
        table.add_row(*(column.cell(row) for column in columns))
    return table


def markdown_table(rows: list[Row], for_readme: bool = False) -> str:
    """The report's table; for a README, each row with the command that reproduces it instead of
    the run directories, which exist only on the machine that ran them."""
    columns = display_columns(rows, with_runs=not for_readme, with_command=for_readme)

    def line(cells) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    lines = [
        line(column.header for column in columns),
        "|" + "|".join("---:" if column.numeric else "---" for column in columns) + "|",
        *(line(column.cell(row) for column in columns) for row in rows),
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, rows: list[Row], plots: list[str]) -> None:
    images = "".join(f"\n![{Path(name).stem}]({name})\n" for name in plots)
    text = f"# Runs\n\n{markdown_table(rows)}\n{caption(rows)}\n{images}"
    atomic_write_bytes(path, text.encode())


def replace_between_markers(path: Path, table: str, block: str | None = None) -> None:
    """Put `table` between the block's start and end lines in `path`, leaving the rest as it was."""
    start_line, end_line = readme_markers(block)
    text = path.read_text()
    start, end = text.find(start_line), text.find(end_line)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no {start_line} ... {end_line} block to put the table in")
    updated = text[: start + len(start_line)] + "\n" + table + text[end:]
    atomic_write_bytes(path, updated.encode())


def stat_fields(name: str, value: Stat | None) -> dict:
    return {
        f"{name}_mean": "" if value is None else value.mean,
        f"{name}_std": "" if value is None or value.std is None else value.std,
    }


def csv_record(row: Row) -> dict:
    low, high = row.epochs_done
    return {
        "model": row.model,
        "config": row.label,
        "status": row.status,
        "n": len(row.runs),
        "seeds": " ".join(map(str, row.seeds)),
        "params": "" if row.params is None else row.params,
        "params_reduction_pct": "" if row.params_reduction is None else row.params_reduction,
        "epochs_done": low if low == high else f"{low}-{high}",
        "epochs": "" if row.epochs is None else row.epochs,
        **stat_fields("final_test_acc", row.final_test_acc),
        **stat_fields("best_test_acc", row.best_test_acc),
        **stat_fields("final_val_acc", row.final_val_acc),
        **stat_fields("best_val_acc", row.best_val_acc),
        **stat_fields("seconds_per_epoch", row.seconds_per_epoch),
        "device": row.devices,
        "runs": ";".join(run.name for run in row.runs),
    }


def write_csv(path: Path, rows: list[Row]) -> None:
    records = [csv_record(row) for row in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_bytes(path, buffer.getvalue().encode())
