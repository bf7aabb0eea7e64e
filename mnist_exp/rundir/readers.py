"""Finding run directories and reading the files each run leaves, for the summary and the report.

Every reader here tolerates a missing or broken file, since a sweep is often read while jobs are
still running or have died.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from mnist_exp.rundir.layout import ERROR, METRICS, PROVENANCE, hydra_file, is_run_dir

NO_METRICS = "no metrics yet"
UNREADABLE_METRICS = "unreadable metrics.json"


def natural_key(text: str) -> list:
    """Sort `9` before `10`, as a person reads a sweep's job numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def find_run_dirs(root: Path) -> list[Path]:
    """Every run directory at or under `root`, in natural order; runs are not searched inside."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_run_dir(here):
            found.append(here)
            dirnames.clear()
        else:
            dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
    return found


def read_metrics(run_dir: Path) -> tuple[dict, str | None]:
    """(metrics, problem): problem is None once read, else NO_METRICS or UNREADABLE_METRICS."""
    path = run_dir / METRICS
    if not path.is_file():
        return {}, NO_METRICS
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}, UNREADABLE_METRICS
    if not isinstance(metrics, dict):
        return {}, UNREADABLE_METRICS
    return metrics, None


def read_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides of the run, from `.hydra/overrides.yaml`; empty if unreadable."""
    path = hydra_file(run_dir, "overrides.yaml")
    if not path.is_file():
        return []
    try:
        overrides = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [str(item) for item in overrides] if isinstance(overrides, list) else []


def read_error(run_dir: Path) -> str | None:
    """The first line of the `error.txt` a failed sweep job left, or None."""
    path = run_dir / ERROR
    if not path.is_file():
        return None
    try:
        lines = path.read_text().strip().splitlines()
    except (OSError, UnicodeDecodeError):
        return "failed"
    return lines[0] if lines else "failed"


def read_provenance(run_dir: Path) -> list[dict]:
    """The attempts `provenance.json` records, oldest first; empty when it is missing or broken
    (runs made before it existed have none)."""
    try:
        document = json.loads((run_dir / PROVENANCE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    attempts = document.get("attempts") if isinstance(document, dict) else None
    return [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []
