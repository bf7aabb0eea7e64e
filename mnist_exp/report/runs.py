"""Finding the runs under the directories a user names, and reading what each one left behind.

A run directory is one holding `metrics.json` or a `.hydra/` folder, so a run that has not
finished its first epoch, or died before it, is still found and reported with its status.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

NO_METRICS = "no metrics yet"
UNREADABLE_METRICS = "unreadable metrics.json"


class NoRunsError(Exception):
    """A named path holds no run; the message says which path and what was expected."""


@dataclass(frozen=True)
class Run:
    path: Path
    name: str
    status: str
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    @property
    def history(self) -> list[dict]:
        return self.metrics.get("history") or []


def natural_key(text: str) -> list:
    """Sort `9` before `10`, as a person reads a sweep's job numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_run_dir(path: Path) -> bool:
    return (path / "metrics.json").is_file() or (path / ".hydra").is_dir()


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


def common_parent(paths: list[Path]) -> Path:
    """The one directory named, or the deepest directory holding all of them."""
    resolved = [path.resolve() for path in paths]
    return resolved[0] if len(resolved) == 1 else Path(os.path.commonpath(resolved))


def collect_runs(paths: list[Path]) -> list[Run]:
    """The runs under each path (each run once), named relative to the paths' common parent."""
    base = common_parent(paths)
    runs: list[Run] = []
    seen: set[Path] = set()
    for path in paths:
        if not path.is_dir():
            problem = "not a directory" if path.exists() else "no such directory"
            raise NoRunsError(f"{path}: {problem} (expected a run or sweep directory)")
        run_dirs = find_run_dirs(path)
        if not run_dirs:
            raise NoRunsError(
                f"{path}: no runs found (expected a run directory holding metrics.json or .hydra/, "
                "or a directory with such runs below it)"
            )
        new = [run_dir for run_dir in run_dirs if run_dir.resolve() not in seen]
        seen.update(run_dir.resolve() for run_dir in new)
        runs += [read_run(run_dir, base) for run_dir in new]
    return runs


def read_run(run_dir: Path, base: Path) -> Run:
    relative = os.path.relpath(run_dir.resolve(), base)
    metrics, status = read_metrics(run_dir / "metrics.json")
    return Run(
        path=run_dir,
        name=run_dir.resolve().name if relative == "." else relative,
        status=status,
        metrics=metrics,
        config=read_config(run_dir),
        overrides=read_overrides(run_dir / ".hydra" / "overrides.yaml"),
    )


def read_metrics(path: Path) -> tuple[dict, str]:
    """(metrics, status); a missing or unreadable file gives no metrics and says so as the status."""
    if not path.is_file():
        return {}, NO_METRICS
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}, UNREADABLE_METRICS
    if not isinstance(metrics, dict):
        return {}, UNREADABLE_METRICS
    return metrics, str(metrics.get("status", "unknown"))


def read_config(run_dir: Path) -> dict:
    """The composed config from `.hydra/config.yaml`, else from a checkpoint, else empty."""
    hydra_config = run_dir / ".hydra" / "config.yaml"
    if hydra_config.is_file():
        try:
            config = OmegaConf.load(hydra_config)
        except (OSError, yaml.YAMLError):
            return {}
        try:
            return OmegaConf.to_container(config, resolve=True)
        except OmegaConfBaseException:
            return OmegaConf.to_container(config, resolve=False)
    for name in ("last.pt", "best.pt"):
        checkpoint = run_dir / "checkpoints" / name
        if checkpoint.is_file():
            return checkpoint_config(checkpoint)
    return {}


def checkpoint_config(path: Path) -> dict:
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return {}
    config = state.get("config") if isinstance(state, dict) else None
    return config if isinstance(config, dict) else {}


def read_overrides(path: Path) -> list[str]:
    if not path.is_file():
        return []
    try:
        overrides = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [str(item) for item in overrides] if isinstance(overrides, list) else []
