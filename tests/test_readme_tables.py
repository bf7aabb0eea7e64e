"""The READMEs' result tables are what the report tool writes from the run records in the repo.

Each table's command is run again on the records under `experiments/records/` and must give the
file back byte for byte, with no warning but that of a table comparing devices. A preset change
that alters what a row's command trains fails here until the tables are written again, which pins
the old values into their commands.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from mnist_exp.report.cli import main

REPO = Path(__file__).resolve().parents[1]
TABLE_START = re.compile(r"^<!-- mnist-exp-report:(?:([\w-]+):)?start -->$", re.MULTILINE)


def load_write_tables():
    spec = importlib.util.spec_from_file_location("write_tables", REPO / "scripts" / "write_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRITE_TABLES = load_write_tables()
READMES = WRITE_TABLES.PAGES


def run_paths(args: list[str]) -> list[Path]:
    return [REPO / arg for arg in args[: next(i for i, arg in enumerate(args) if arg.startswith("--"))]]


COMMANDS = WRITE_TABLES.table_commands(REPO)
WITH_RECORDS = sorted(table for table, args in COMMANDS.items() if all(p.is_dir() for p in run_paths(args)))


def test_every_table_has_its_command_and_its_records_in_the_repo():
    tables = {
        f"{readme} {block or 'main'}"
        for readme in READMES
        for block in TABLE_START.findall((REPO / readme).read_text())
    }
    assert set(COMMANDS) == tables
    assert set(WITH_RECORDS) == tables


@pytest.mark.parametrize("table", WITH_RECORDS)
def test_a_table_is_what_the_report_writes_from_its_records(table, tmp_path, capsys):
    args = COMMANDS[table]
    readme = REPO / args[args.index("--readme") + 1]
    copy = tmp_path / "README.md"
    shutil.copy(readme, copy)
    options = args[len(run_paths(args)) :]
    options[options.index("--readme") + 1] = str(copy)
    options[options.index("--out") + 1] = str(tmp_path / "report")

    assert main([*map(str, run_paths(args)), *options]) == 0

    # The one warning a table may give: that it compares runs on different devices, which its
    # device column shows. A command that no longer trains what its runs trained fails here.
    warnings = capsys.readouterr().err.splitlines()
    assert all("compares runs on different devices" in warning for warning in warnings), warnings
    assert copy.read_text() == readme.read_text()
