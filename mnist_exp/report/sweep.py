"""The sweep summary: one row per job under a directory, and the mean over seeds.

It reads only what each job left on disk (`.hydra/`, `metrics.json`, and the `error.txt` that
`mnist_exp.cli.sweep_summary` writes for a failed job), because that is the one source every
launcher shares: Hydra hands no job results to a callback under joblib, submitit or Ray. So it
works on a single run, a whole sweep, a sweep still running, or one with failed jobs. Jobs whose
command-line overrides differ only in `seed=...` form one group, with the mean and standard
deviation of their finished runs; the report groups by the whole config instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mnist_exp.fs.atomic import atomic_write_bytes
from mnist_exp.report import tables
from mnist_exp.report.runs import FAILED, Run, runs_under
from mnist_exp.report.stats import Stat, group_by, stat
from mnist_exp.report.tables import plus_minus
from mnist_exp.rundir.metrics import FINISHED
from mnist_exp.rundir.readers import NO_METRICS, UNREADABLE_METRICS

# A peak picked on the test set is no result: older runs' best_test_acc is not shown.
ACCURACIES = ("final_test_acc", "final_val_acc", "best_val_acc")
SHOWN_RED = (FAILED, "diverged", NO_METRICS, UNREADABLE_METRICS)  # statuses a reader should look at
GROUPS_TITLE = "Mean ± std over seeds (finished runs)"
# The csv module's own line end, which readers of summary.csv get.
CSV_LINE_END = "\r\n"


@dataclass(frozen=True)
class GroupStats:
    overrides: str
    finished: int
    jobs: int
    means: dict[str, Stat | None]  # accuracy key -> its Stat over the finished runs
    duration_s: float | None


def seed_free_overrides(run: Run) -> str:
    """The overrides without `seed=...`: the runs a mean over seeds is taken across."""
    return " ".join(o for o in run.overrides if not o.lstrip("+~").startswith("seed=")) or "(defaults)"


def group_over_seeds(runs: list[Run]) -> list[GroupStats]:
    return [group_stats(label, members) for label, members in group_by(runs, seed_free_overrides).items()]


def group_stats(label: str, members: list[Run]) -> GroupStats:
    """Only finished runs (completed, or stopped early) enter the means: an interrupted one would
    pull them down."""
    done = [run for run in members if run.status in FINISHED]
    means = {key: stat(run.metrics.get(key) for run in done) for key in ACCURACIES}
    duration = stat(run.metrics.get("duration_s") for run in done)
    return GroupStats(label, len(done), len(members), means, duration.mean if duration else None)


def fixed(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def job_table(runs: list[Run], with_val: bool) -> tuple[list[str], list[list[str]]]:
    header = ["job", "overrides", "params", "final test %"]
    header += ["final val %", "best val %"] if with_val else []
    header += ["duration s", "status"]
    rows = []
    for run in runs:
        params = run.metrics.get("params")
        row = [run.name, " ".join(run.overrides), f"{params:,}" if params else ""]
        row += [fixed(run.metrics.get(key)) for key in ACCURACIES[: 3 if with_val else 1]]
        row += [fixed(run.metrics.get("duration_s"), 1), run.status]
        rows.append(row)
    return header, rows


def group_table(groups: list[GroupStats], with_val: bool) -> tuple[list[str], list[list[str]]]:
    header = ["overrides (all but seed)", "finished", "final test %"]
    header += ["final val %", "best val %"] if with_val else []
    header += ["mean duration s"]
    rows = []
    for group in groups:
        row = [group.overrides, f"{group.finished}/{group.jobs}"]
        row += [plus_minus(group.means[key], missing="") for key in ACCURACIES[: 3 if with_val else 1]]
        row += [fixed(group.duration_s, 1)]
        rows.append(row)
    return header, rows


def rich_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    numeric = [not (column in ("job", "status") or "overrides" in column) for column in header]
    return tables.rich_table(
        title, header, rows, numeric, row_style=lambda row: "red" if row[-1] in SHOWN_RED else None
    )


def write_csv(path: Path, runs: list[Run]) -> None:
    header = ["job", "overrides", "status", "params", *ACCURACIES, "duration_s", "error"]
    rows = [
        [run.name, " ".join(run.overrides), run.status, run.metrics.get("params")]
        + [run.metrics.get(key) for key in ACCURACIES]
        + [run.metrics.get("duration_s"), run.error]
        for run in runs
    ]
    tables.write_csv(path, header, rows, line_end=CSV_LINE_END)


def markdown_text(root: Path, sections: list[tuple], failures: list[str]) -> str:
    lines = [f"# Summary of {root}"]
    for title, header, rows in sections:
        lines += [f"\n## {title}\n", tables.markdown_table(header, rows)]
    if failures:
        lines += ["\n## Failed jobs\n", *failures]
    return "\n".join(lines) + "\n"


def summarize(root: Path, console: Console | None = None) -> list[Run]:
    """Print the tables, write summary.csv and summary.md into `root`, and return the runs found."""
    console = console or tables.wide_console()
    runs = runs_under(root)
    if not runs:
        console.print(f"No runs under {root}: a run dir holds metrics.json or .hydra/.")
        return runs
    with_val = any(run.metrics.get("final_val_acc") is not None for run in runs)
    sections = [
        ("Runs", *job_table(runs, with_val)),
        (GROUPS_TITLE, *group_table(group_over_seeds(runs), with_val)),
    ]
    failures = [f"- `{run.name}`: {run.error}" for run in runs if run.error]
    for title, header, rows in sections:
        console.print(rich_table(title, header, rows))
    if failures:
        console.print("Failed jobs:\n" + "\n".join(failures), style="red", markup=False, highlight=False)
    write_csv(root / "summary.csv", runs)
    atomic_write_bytes(root / "summary.md", markdown_text(root, sections, failures).encode())
    console.print(f"Wrote {root / 'summary.csv'} and {root / 'summary.md'}")
    return runs
