"""The report's table inside a README, between marker lines that the report alone rewrites."""

from __future__ import annotations

from pathlib import Path

from mnist_exp.fs.atomic import atomic_write_bytes

README_START = "<!-- mnist-exp-report:start -->"
README_END = "<!-- mnist-exp-report:end -->"


def readme_markers(block: str | None) -> tuple[str, str]:
    """The lines around a README table: the unnamed pair, or `<!-- mnist-exp-report:NAME:start -->`
    and its end for a named block, so one README can hold tables made from different sets of runs
    (say a later round's, measured where the runs behind the first table are not kept)."""
    if block is None:
        return README_START, README_END
    return f"<!-- mnist-exp-report:{block}:start -->", f"<!-- mnist-exp-report:{block}:end -->"


def replace_between_markers(path: Path, table: str, block: str | None = None) -> None:
    """Put `table` between the block's start and end lines in `path`, leaving the rest as it was."""
    start_line, end_line = readme_markers(block)
    text = path.read_text()
    start, end = text.find(start_line), text.find(end_line)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no {start_line} ... {end_line} block to put the table in")
    updated = text[: start + len(start_line)] + "\n" + table + text[end:]
    atomic_write_bytes(path, updated.encode())
