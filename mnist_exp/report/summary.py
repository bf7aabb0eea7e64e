"""Runs that differ only in their seed become one row, with the mean and spread over the seeds.

Runs are grouped by their whole composed config except `seed` (and `resume`, which says how a
run was started, not what it trained), and by status: a run still going or one that was
interrupted is its own row rather than pulling down the mean of finished ones. Seeds that ran
all their epochs and seeds that early stopping ended share a row: both finished by design.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from mnist_exp.report.runs import Run
from mnist_exp.report.stats import Stat, group_by, stat
from mnist_exp.rundir.metrics import FINISHED

IGNORED_KEYS = ("seed", "resume")
HIDDEN_OVERRIDE_PREFIXES = ("seed=", "resume=", "hydra.", "+hydra.", "++hydra.")


@dataclass(frozen=True)
class Row:
    """One table row: a group of runs that share everything but their seed, and their status."""

    model: str
    label: str  # the command-line overrides that set this row apart from the others
    status: str
    runs: list[Run]
    seeds: list[int]
    params: int | None
    params_reduction: float | None  # percent fewer parameters than reference_params
    reference_params: int | None  # the first row's model's, unless the report was given a count
    epochs_done: tuple[int, int]  # (fewest, most) epochs finished by the group's runs
    epochs: int | None  # epochs planned
    final_test_acc: Stat | None
    final_val_acc: Stat | None
    best_val_acc: Stat | None
    seconds_per_epoch: Stat | None
    minutes_per_run: Stat | None  # each run's whole duration, resumes included
    dataset: str | None  # the data.name the runs trained on
    devices: str  # where the runs trained, e.g. "cpu" or "cpu 2, cuda 1": s/epoch depends on it
    torch: str  # the torch versions the runs trained with, where they recorded it
    overrides: tuple[str, ...]  # those of the command that trains this row's runs again, less seeds

    @property
    def command(self) -> str:
        """`python -m mnist_exp [-m] OVERRIDES seed=...`, every run's seed."""
        seeds = sorted(set(self.seeds))
        if len(seeds) > 1:
            return " ".join(["python -m mnist_exp -m", *self.overrides, "seed=" + ",".join(map(str, seeds))])
        return " ".join(["python -m mnist_exp", *self.overrides, *(f"seed={seed}" for seed in seeds)])


def group_key(run: Run) -> str:
    if not run.config:
        return f"run:{run.path}"
    config = {key: value for key, value in run.config.items() if key not in IGNORED_KEYS}
    status = "finished" if run.status in FINISHED else run.status
    return json.dumps([config, status], sort_keys=True, default=str)


def group_status(runs: list[Run]) -> str:
    """The group's status; for finished runs, how many early stopping ended."""
    stopped = sum(run.status == "stopped_early" for run in runs)
    if stopped == 0 or stopped == len(runs):
        return runs[0].status
    return f"completed, {stopped} stopped early"


def distinguishing_labels(groups: list[list[Run]]) -> list[str]:
    """Each group's command-line overrides, less the seed, Hydra's own and those all groups share."""
    overrides = [
        [o for o in group[0].overrides if not o.startswith(HIDDEN_OVERRIDE_PREFIXES)] for group in groups
    ]
    shared = set.intersection(*(set(o) for o in overrides)) if len(groups) > 1 else set()
    return [" ".join(o for o in group if o not in shared) for group in overrides]


def first_known(runs: list[Run], read) -> object:
    for run in runs:
        value = read(run)
        if value is not None:
            return value
    return None


def model_name(run: Run) -> str | None:
    return run.metrics.get("model") or (run.config.get("model") or {}).get("name")


def params_of(run: Run) -> int | None:
    return run.metrics.get("params")


def planned_epochs(run: Run) -> int | None:
    return run.metrics.get("epochs") or (run.config.get("trainer") or {}).get("epochs")


def run_minutes(run: Run) -> float | None:
    seconds = run.metrics.get("duration_s")
    return seconds / 60 if isinstance(seconds, int | float) else None


def dataset_name(run: Run) -> str | None:
    return (run.config.get("data") or {}).get("name")


def mean_epoch_seconds(run: Run) -> float | None:
    seconds = stat(record.get("seconds") for record in run.history)
    return seconds.mean if seconds else None


def summarise(runs: list[Run], reference_params: int | None = None) -> list[Row]:
    """One row per group; the params reduction is relative to `reference_params`, by default the
    first row's model's."""
    groups = list(group_by(runs, group_key).values())
    labels = distinguishing_labels(groups)
    reference = reference_params or first_known(groups[0], params_of)
    return [summarise_group(group, label, reference) for group, label in zip(groups, labels, strict=True)]


def summarise_group(runs: list[Run], label: str, reference_params: int | None) -> Row:
    done = [len(run.history) for run in runs]
    params = first_known(runs, params_of)
    return Row(
        model=first_known(runs, model_name) or "?",
        label=label,
        status=group_status(runs),
        runs=runs,
        seeds=[run.config.get("seed") for run in runs if "seed" in run.config],
        params=params,
        params_reduction=100.0 * (1 - params / reference_params) if params and reference_params else None,
        reference_params=reference_params,
        epochs_done=(min(done), max(done)),
        epochs=first_known(runs, planned_epochs),
        final_test_acc=stat([run.metrics.get("final_test_acc") for run in runs]),
        final_val_acc=stat([run.metrics.get("final_val_acc") for run in runs]),
        best_val_acc=stat([run.metrics.get("best_val_acc") for run in runs]),
        seconds_per_epoch=stat([mean_epoch_seconds(run) for run in runs]),
        minutes_per_run=stat([run_minutes(run) for run in runs]),
        dataset=first_known(runs, dataset_name),
        devices=device_counts(runs),
        torch=", ".join(torch_versions(runs)),
        overrides=reproducing_overrides(runs),
    )


def device_label(run: Run) -> str | None:
    """`cpu`, or with provenance the model too: `cpu (AMD EPYC)`, `cuda (NVIDIA H200)`."""
    device = run.metrics.get("device")
    if not device:
        return None
    name = run.last_attempt.get("device_name")
    kind = str(device).split(":")[0]
    return f"{kind} ({name})" if name else kind


def torch_versions(runs: list[Run]) -> list[str]:
    return sorted({str(run.last_attempt["torch"]) for run in runs if run.last_attempt.get("torch")})


def device_counts(runs: list[Run]) -> str:
    """The device when all runs share it, else a count of each, e.g. `cpu 2, cuda 1`."""
    counts = Counter(label for label in map(device_label, runs) if label)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{device} {count}" for device, count in sorted(counts.items()))


def reproducing_overrides(runs: list[Run]) -> tuple[str, ...]:
    """The first run's overrides, with the epoch count the row shows pinned when they left it to a
    preset, so that a later round lengthening the preset does not change what the row trains."""
    overrides = [o for o in runs[0].overrides if not o.startswith(HIDDEN_OVERRIDE_PREFIXES)]
    epochs = planned_epochs(runs[0])
    if epochs and not any(o.startswith("trainer.epochs=") for o in overrides):
        overrides.append(f"trainer.epochs={epochs}")
    return tuple(overrides)


def mixed_provenance(rows: list[Row]) -> list[str]:
    """One line for each thing a table's runs differ in that changes their numbers beyond the
    recipe: torch versions, and the devices they trained on (only as far as runs recorded it)."""
    runs = [run for row in rows for run in row.runs]
    problems = []
    versions = torch_versions(runs)
    if len(versions) > 1:
        problems.append(f"the table compares runs from different torch versions: {', '.join(versions)}")
    devices = sorted({label for label in map(device_label, runs) if label})
    if len(devices) > 1:
        problems.append(f"the table compares runs on different devices: {', '.join(devices)}")
    return problems
