"""`mnist-exp-report RUN_OR_SWEEP_DIR...`: compare runs in one table and four plots.

The report goes to `--out`, by default `report/` inside the one directory named, or inside the
deepest directory holding all of them when several are named.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rich.console import Console

from mnist_exp.errors import OutputDirError
from mnist_exp.report.comparison import (
    caption,
    headline_caption,
    headline_table,
    markdown_table,
    rich_table,
    write_csv,
    write_markdown,
)
from mnist_exp.report.drift import pin_drifted_commands
from mnist_exp.report.plots import write_plots
from mnist_exp.report.readme import README_END, README_START, readme_markers, replace_between_markers
from mnist_exp.report.runs import NoRunsError, collect_runs, common_parent
from mnist_exp.report.summary import Row, mixed_provenance, summarise
from mnist_exp.report.tables import wide_console

PROG = "mnist-exp-report"
BLOCK_NAME = re.compile(r"[A-Za-z0-9_-]+")  # it goes inside an HTML comment in the README


class ReportError(Exception):
    """What stops the report after its arguments were taken: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_SWEEP_DIR")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for report.md, report.csv and the PNGs (default: <the directory named>/report, "
        "or <their common parent>/report for several)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        help="also put the table, with each row's reproducing command, between the "
        f"{README_START} and {README_END} lines of this file (e.g. README.md)",
    )
    parser.add_argument(
        "--readme-block",
        metavar="NAME",
        help="with --readme: use the {} and {} lines instead, for a second table made from other runs".format(
            *readme_markers("NAME")
        ),
    )
    parser.add_argument(
        "--headline",
        action="store_true",
        help="with --readme: a short table for a front page (model, dataset, params, epochs, final test "
        "accuracy, seeds, minutes per run, command) instead of the full one",
    )
    parser.add_argument(
        "--reduction-from",
        type=int,
        metavar="PARAMS",
        help="count the reduction column against this many parameters (e.g. 420614, V1's) instead of "
        "the first row's model's, for a table that leaves that model out",
    )
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The arguments, refused (exit code 2, before anything is read) when they do not fit together."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.readme_block is not None:
        if not args.readme:
            parser.error("--readme-block needs --readme FILE, the file that holds the block")
        if not BLOCK_NAME.fullmatch(args.readme_block):
            parser.error(f"--readme-block {args.readme_block!r}: use letters, digits, '_' and '-' only")
    if args.headline and not args.readme:
        parser.error("--headline needs --readme FILE, the file that holds the table")
    if args.reduction_from is not None and args.reduction_from < 1:
        parser.error(f"--reduction-from {args.reduction_from}: a parameter count, 1 or more")
    return args


def write_report(out_dir: Path, rows: list[Row]) -> list[str]:
    """Write the PNGs, report.md and report.csv; returns the PNGs' names."""
    try:
        plots = write_plots(out_dir, rows)
        write_markdown(out_dir / "report.md", rows, plots)
        write_csv(out_dir / "report.csv", rows)
    except OutputDirError as error:
        raise ReportError(error) from error
    return plots


def update_readme(readme: Path, block: str | None, rows: list[Row], headline: bool = False) -> None:
    """Put the table, each command pinned to what its runs trained, into the README's block; warn
    of each command that still cannot reproduce its runs."""
    readme_rows, stale_commands = pin_drifted_commands(rows)
    for problem in stale_commands:
        print(f"{PROG}: warning: {problem}", file=sys.stderr)
    if headline:
        table = headline_table(readme_rows) + "\n" + headline_caption(readme_rows) + "\n"
    else:
        table = markdown_table(readme_rows, for_readme=True) + "\n" + caption(readme_rows) + "\n"
    try:
        replace_between_markers(readme, table, block)
    except (OSError, ValueError, OutputDirError) as error:
        raise ReportError(error) from error


def report(args: argparse.Namespace, console: Console) -> None:
    runs = collect_runs(args.paths)
    out_dir = args.out or common_parent(args.paths) / "report"
    rows = summarise(runs, args.reduction_from)
    console.print(rich_table(rows))
    for difference in mixed_provenance(rows):
        print(f"{PROG}: warning: {difference}", file=sys.stderr)
    plots = write_report(out_dir, rows)
    if args.readme:
        update_readme(args.readme, args.readme_block, rows, args.headline)
        console.print(f"Updated the table in {args.readme}")
    console.print(f"Wrote report.md, report.csv, {', '.join(plots)} to {out_dir}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report(args, wide_console())
    except (NoRunsError, ReportError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0
