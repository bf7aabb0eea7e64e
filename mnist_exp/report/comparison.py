"""The report's table of rows: which columns it shows, and report.md and report.csv.

The console and Markdown show the same formatted columns ("98.61 ± 0.05"); the CSV keeps every
number in a column of its own, unformatted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from mnist_exp.fs.atomic import atomic_write_bytes
from mnist_exp.report import tables
from mnist_exp.report.stats import Stat
from mnist_exp.report.summary import Row
from mnist_exp.report.tables import DASH, plus_minus

DATASET_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row], str]
    numeric: bool = True


def epochs_text(row: Row) -> str:
    low, high = row.epochs_done
    done = str(low) if low == high else f"{low}-{high}"
    return done if row.epochs in (None, low) and low == high else f"{done}/{row.epochs or '?'}"


def dataset_text(row: Row) -> str:
    return DATASET_NAMES.get(row.dataset, row.dataset or DASH)


def display_columns(rows: list[Row], with_runs: bool, with_command: bool = False) -> list[Column]:
    """The columns worth showing: config and validation ones only when some row has them."""
    columns = [
        Column("model", lambda r: r.model, numeric=False),
        Column("dataset", dataset_text, numeric=False),
    ]
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
    ]
    if any(row.final_val_acc or row.best_val_acc for row in rows):
        columns += [
            Column("final val %", lambda r: plus_minus(r.final_val_acc)),
            Column("best val %", lambda r: plus_minus(r.best_val_acc)),
        ]
    columns += [
        Column("s/epoch", lambda r: plus_minus(r.seconds_per_epoch, digits=1)),
        Column("device", lambda r: r.devices or DASH, numeric=False),
        *(
            [Column("torch", lambda r: r.torch or DASH, numeric=False)]
            if any(row.torch for row in rows)
            else []
        ),
        Column("status", lambda r: r.status, numeric=False),
    ]
    if with_runs:
        columns.append(Column("runs", lambda r: ", ".join(run.name for run in r.runs), numeric=False))
    if with_command:
        columns.append(Column("command", lambda r: f"`{r.command}`", numeric=False))
    return columns


def headline_columns() -> list[Column]:
    """A short table for a front page: what each row is, how well it does, what it costs, and the
    command that trains it again."""
    return [
        Column("model", lambda r: r.model, numeric=False),
        Column("dataset", dataset_text, numeric=False),
        Column("params", lambda r: f"{r.params:,}" if r.params is not None else DASH),
        Column("epochs", epochs_text),
        Column("test % (final)", lambda r: plus_minus(r.final_test_acc)),
        Column("seeds", lambda r: ", ".join(map(str, r.seeds)) or DASH, numeric=False),
        Column("min/run", lambda r: plus_minus(r.minutes_per_run, digits=1)),
        Column("command", lambda r: f"`{r.command}`", numeric=False),
    ]


def headline_caption(rows: list[Row]) -> str:
    devices = sorted({row.devices for row in rows if row.devices})
    return (
        "Test accuracy at the final epoch, in percent: mean ± sample std over the seeds. "
        f"min/run: minutes per run on {', '.join(devices) or 'the machine that ran it'}."
    )


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


def cells(rows: list[Row], columns: list[Column]) -> tuple[list[str], list[list[str]], list[bool]]:
    """(header, formatted rows, which columns are numeric)."""
    header = [column.header for column in columns]
    return header, [[column.cell(row) for column in columns] for row in rows], [c.numeric for c in columns]


def rich_table(rows: list[Row]) -> Table:
    header, body, numeric = cells(rows, display_columns(rows, with_runs=False))
    return tables.rich_table("Runs", header, body, numeric, caption=caption(rows))


def headline_table(rows: list[Row]) -> str:
    header, body, numeric = cells(rows, headline_columns())
    return tables.markdown_table(header, body, numeric) + "\n"


def markdown_table(rows: list[Row], for_readme: bool = False) -> str:
    """The report's table; for a README, each row with the command that reproduces it instead of
    the run directories, which exist only on the machine that ran them."""
    header, body, numeric = cells(
        rows, display_columns(rows, with_runs=not for_readme, with_command=for_readme)
    )
    return tables.markdown_table(header, body, numeric) + "\n"


def write_markdown(path: Path, rows: list[Row], plots: list[str]) -> None:
    images = "".join(f"\n![{Path(name).stem}]({name})\n" for name in plots)
    text = f"# Runs\n\n{markdown_table(rows)}\n{caption(rows)}\n{images}"
    atomic_write_bytes(path, text.encode())


def stat_fields(name: str, value: Stat | None) -> dict:
    return {
        f"{name}_mean": "" if value is None else value.mean,
        f"{name}_std": "" if value is None or value.std is None else value.std,
    }


def csv_record(row: Row) -> dict:
    low, high = row.epochs_done
    return {
        "model": row.model,
        "dataset": row.dataset or "",
        "config": row.label,
        "status": row.status,
        "n": len(row.runs),
        "seeds": " ".join(map(str, row.seeds)),
        "params": "" if row.params is None else row.params,
        "params_reduction_pct": "" if row.params_reduction is None else row.params_reduction,
        "epochs_done": low if low == high else f"{low}-{high}",
        "epochs": "" if row.epochs is None else row.epochs,
        **stat_fields("final_test_acc", row.final_test_acc),
        **stat_fields("final_val_acc", row.final_val_acc),
        **stat_fields("best_val_acc", row.best_val_acc),
        **stat_fields("seconds_per_epoch", row.seconds_per_epoch),
        "device": row.devices,
        "torch": row.torch,
        "runs": ";".join(run.name for run in row.runs),
    }


def write_csv(path: Path, rows: list[Row]) -> None:
    records = [csv_record(row) for row in rows]
    tables.write_csv(path, list(records[0]), [list(record.values()) for record in records])
