"""`python -m mnist_exp.summarize DIR`: one row per run under DIR, and the mean over seeds.

The summary itself is `mnist_exp.report.sweep`, the view of the report package that the sweep
callback also prints; this module is its command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_exp.errors import OutputDirError
from mnist_exp.report.sweep import summarize

__all__ = ["main", "summarize"]


def main(argv: list[str] | None = None) -> int:
    """Exit 0 with runs summarised, 1 when DIR holds none, 2 when DIR or the summary files are
    unusable."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_exp.summarize",
        description="One row per run under DIR, and the mean over seeds; writes DIR/summary.csv and .md.",
    )
    parser.add_argument(
        "dir", type=Path, help="a run dir, a sweep dir, or a dir of them (outputs/, multirun/)"
    )
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a directory", file=sys.stderr)
        return 2
    try:
        return 0 if summarize(args.dir) else 1
    except OutputDirError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
