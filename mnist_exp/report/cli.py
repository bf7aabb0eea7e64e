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
from mnist_exp.report.drift import pin_drifted_commands
from mnist_exp.report.plots import write_plots
from mnist_exp.report.runs import NoRunsError, collect_runs, common_parent
from mnist_exp.report.summary import summarise
from mnist_exp.report.tables import (
    README_END,
    README_START,
    caption,
    markdown_table,
    readme_markers,
    replace_between_markers,
    rich_table,
    write_csv,
    write_markdown,
)

PROG = "mnist-exp-report"
WIDE_ENOUGH = 200  # when piped or logged, print the table unwrapped rather than at 80 columns
BLOCK_NAME = re.compile(r"[A-Za-z0-9_-]+")  # it goes inside an HTML comment in the README


def main(argv: list[str] | None = None) -> int:
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
        "--reduction-from",
        type=int,
        metavar="PARAMS",
        help="count the reduction column against this many parameters (e.g. 420614, V1's) instead of "
        "the first row's model's, for a table that leaves that model out",
    )
    args = parser.parse_args(argv)
    if args.readme_block is not None:
        if not args.readme:
            parser.error("--readme-block needs --readme FILE, the file that holds the block")
        if not BLOCK_NAME.fullmatch(args.readme_block):
            parser.error(f"--readme-block {args.readme_block!r}: use letters, digits, '_' and '-' only")
    if args.reduction_from is not None and args.reduction_from < 1:
        parser.error(f"--reduction-from {args.reduction_from}: a parameter count, 1 or more")
    try:
        runs = collect_runs(args.paths)
    except NoRunsError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2

    out_dir = args.out or common_parent(args.paths) / "report"
    rows = summarise(runs, args.reduction_from)
    console = Console(width=None if sys.stdout.isatty() else WIDE_ENOUGH)
    console.print(rich_table(rows))
    try:
        plots = write_plots(out_dir, rows)
        write_markdown(out_dir / "report.md", rows, plots)
        write_csv(out_dir / "report.csv", rows)
    except OutputDirError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if args.readme:
        readme_rows, stale_commands = pin_drifted_commands(rows)
        for problem in stale_commands:
            print(f"{PROG}: warning: {problem}", file=sys.stderr)
        try:
            replace_between_markers(
                args.readme,
                markdown_table(readme_rows, for_readme=True) + "\n" + caption(readme_rows) + "\n",
                args.readme_block,
            )
        except (OSError, ValueError, OutputDirError) as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return 2
        console.print(f"Updated the table in {args.readme}")
    console.print(f"Wrote report.md, report.csv, {', '.join(plots)} to {out_dir}")
    return 0
