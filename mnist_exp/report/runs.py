"""The runs under the directories a user names, each with its metrics, config, overrides, error
and status: the one reading of run directories that the report and the sweep summary share.

File names and the tolerant readers live in `mnist_exp.rundir`; what is decided here is how a run
is named and which status it shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mnist_exp.rundir.layout import best_checkpoint, hydra_file, last_checkpoint
from mnist_exp.rundir.readers import find_run_dirs, read_error, read_metrics, read_overrides, read_provenance

FAILED = "failed"


class NoRunsError(Exception):
    """A named path holds no run; the message says which path and what was expected."""


@dataclass(frozen=True)
class Run:
    path: Path
    name: str
    status: str
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    error: str | None = None  # the first line of the error.txt a failed sweep job left
    provenance: tuple[dict, ...] = ()  # each process that trained it: versions, machine, command

    @property
    def last_attempt(self) -> dict:
        """What the run's last training process recorded of itself; empty for runs from before
        provenance.json existed."""
        return self.provenance[-1] if self.provenance else {}

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
        new = [run_dir for run_dir in run_dirs_of(path) if run_dir.resolve() not in seen]
        seen.update(run_dir.resolve() for run_dir in new)
        runs += [read_run(run_dir, name_below(run_dir, base)) for run_dir in new]
    return runs


def run_dirs_of(path: Path) -> list[Path]:
    """The run dirs under a path the user named; NoRunsError when there are none."""
    if not path.is_dir():
        problem = "not a directory" if path.exists() else "no such directory"
        raise NoRunsError(f"{path}: {problem} (expected a run or sweep directory)")
    run_dirs = find_run_dirs(path)
    if not run_dirs:
        raise NoRunsError(
            f"{path}: no runs found (expected a run directory holding metrics.json or .hydra/, "
            "or a directory with such runs below it)"
        )
    return run_dirs


def name_below(run_dir: Path, base: Path) -> str:
    """The run's path below `base`; its own directory's name when it is `base`, as `.` would say
    nothing in a table of runs gathered from several places."""
    relative = os.path.relpath(run_dir.resolve(), base)
    return run_dir.resolve().name if relative == "." else relative


def runs_under(root: Path) -> list[Run]:
    """Every run at or under `root`, named by its path below it (`.` for `root` itself), as a
    sweep numbers its jobs."""
    return [
        read_run(run_dir, str(run_dir.relative_to(root)), with_config=False)
        for run_dir in find_run_dirs(root)
    ]


def read_run(run_dir: Path, name: str, with_config: bool = True) -> Run:
    """The run in `run_dir`; `with_config=False` skips its composed config, which the sweep
    summary never shows (and which may need torch to read from a checkpoint)."""
    metrics, problem = read_metrics(run_dir)
    error = read_error(run_dir)
    return Run(
        path=run_dir,
        name=name,
        status=run_status(metrics, problem, error),
        metrics=metrics,
        config=read_config(run_dir) if with_config else {},
        overrides=tuple(read_overrides(run_dir)),
        error=error,
        provenance=tuple(read_provenance(run_dir)),
    )


def run_status(metrics: dict, problem: str | None, error: str | None) -> str:
    """What metrics.json says, unless the sweep recorded an error for a run that never said how it
    ended: a job that died before its first epoch, or one whose metrics still say running, failed."""
    if problem:
        return FAILED if error else problem
    status = str(metrics.get("status") or "running")
    return FAILED if error and status == "running" else status


def read_config(run_dir: Path) -> dict:
    """The composed config from `.hydra/config.yaml`, else from a checkpoint, else empty."""
    hydra_config = hydra_file(run_dir, "config.yaml")
    if hydra_config.is_file():
        try:
            config = OmegaConf.load(hydra_config)
        except (OSError, yaml.YAMLError):
            return {}
        try:
            return OmegaConf.to_container(config, resolve=True)
        except OmegaConfBaseException:
            return OmegaConf.to_container(config, resolve=False)
    for checkpoint in (last_checkpoint(run_dir), best_checkpoint(run_dir)):
        if checkpoint.is_file():
            return checkpoint_config(checkpoint)
    return {}


def checkpoint_config(path: Path) -> dict:
    """The config a checkpoint saved, or empty when the file cannot be read as one."""
    # Imported here so that torch loads only for a run whose config survives in a checkpoint alone.
    from mnist_exp.rundir.checkpoints import CheckpointError, read_checkpoint

    try:
        config = read_checkpoint(path).get("config")
    except CheckpointError:
        return {}
    return config if isinstance(config, dict) else {}
