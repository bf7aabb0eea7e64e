"""The runs under the directories a user names, each with its metrics, config and overrides.

Finding run directories and reading their metrics and overrides live in `mnist_exp.rundir.readers`,
shared with `mnist_exp.summarize`; only the composed config, which the report needs, is read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mnist_exp.rundir.readers import find_run_dirs, read_metrics, read_overrides


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
    metrics, problem = read_metrics(run_dir)
    return Run(
        path=run_dir,
        name=run_dir.resolve().name if relative == "." else relative,
        status=problem or str(metrics.get("status", "unknown")),
        metrics=metrics,
        config=read_config(run_dir),
        overrides=read_overrides(run_dir),
    )


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
