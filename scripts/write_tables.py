"""Write every result table in the docs again from its runs' records.

Each table between `<!-- mnist-exp-report:NAME:start -->` and `...:end -->` markers is written by
the `python -m mnist_exp.report ... --readme PAGE` command printed above it; this runs every such
command as printed, from the repository root, so that a change to the report tool or to a preset
reaches every table at once. `tests/test_readme_tables.py` checks that running it changes nothing.

    python scripts/write_tables.py
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/results.md", "experiments/LOG.md")
REPORT_COMMAND = re.compile(r"^python -m mnist_exp\.report ((?:.*\\\n)*.*)$", re.MULTILINE)


def table_commands(repo: Path = REPO) -> dict[str, list[str]]:
    """`PAGE BLOCK` -> the arguments of the report command that writes that table."""
    commands = {}
    for page in PAGES:
        for match in REPORT_COMMAND.finditer((repo / page).read_text()):
            args = shlex.split(match.group(1).replace("\\\n", " "))
            if "--readme" in args:
                block = args[args.index("--readme-block") + 1] if "--readme-block" in args else "main"
                commands[f"{page} {block}"] = args
    return commands


def main() -> int:
    from mnist_exp.report.cli import main as report

    failed = [table for table, args in table_commands().items() if report(args) != 0]
    for table in failed:
        print(f"write_tables: {table} was not written", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    import os

    os.chdir(REPO)
    sys.exit(main())
