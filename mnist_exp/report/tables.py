"""Tables as text: a rich table for the console, a Markdown table and a CSV file, for every view.

Each view decides its columns and formats its cells; these writers only lay them out, so the
report and the sweep summary escape, align and write their files the same way.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mnist_exp.fs.atomic import atomic_write_bytes
from mnist_exp.report.stats import Stat

DASH = "—"
WIDE_ENOUGH = 200  # when piped or logged, print a table unwrapped rather than at 80 columns


def wide_console() -> Console:
    """The terminal's width, or WIDE_ENOUGH when the output goes to a file or a pipe."""
    return Console(width=None if sys.stdout.isatty() else WIDE_ENOUGH)


def plus_minus(value: Stat | None, digits: int = 2, missing: str = DASH) -> str:
    """Mean ± std to `digits` places, as in "98.61 ± 0.05"; the mean alone when there is no spread."""
    if value is None:
        return missing
    if value.std is None:
        return f"{value.mean:.{digits}f}"
    return f"{value.mean:.{digits}f} ± {value.std:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] = ()) -> str:
    """The table's lines, without a newline after the last; `numeric` columns are right-aligned.
    A `|` inside a cell is escaped so it cannot split the cell."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    aligned = list(numeric) or [False] * len(header)
    return "\n".join(
        [
            line(header),
            "|" + "|".join("---:" if right else "---" for right in aligned) + "|",
            *(line(row) for row in rows),
        ]
    )


def rich_table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[bool],
    caption: str | None = None,
    row_style: Callable[[Sequence[str]], str | None] = lambda row: None,
) -> Table:
    """Numeric columns right-aligned, text ones left; `row_style` may colour a row by its cells."""
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for column, right in zip(header, numeric, strict=True):
        table.add_column(column, justify="right" if right else "left")
    for row in rows:
        table.add_row(*row, style=row_style(row))
    return table


def write_csv(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[object]], line_end: str = "\n"
) -> None:
    """One atomic write: a reader never sees half a file. None is written as an empty field, and
    numbers unformatted, for pandas or a spreadsheet."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())
