"""`python -m mnist_exp.summarize DIR`: one row per run under DIR, and the mean over seeds.

It reads only what each job left on disk (`.hydra/overrides.yaml`, `metrics.json`, and the
`error.txt` that `mnist_exp.cli.sweep_summary` writes for a failed job), because that is the one
source every launcher shares: Hydra hands no job results to a callback under joblib, submitit or
Ray. So it works on a single run, a whole sweep, a sweep still running, or one with failed jobs.
Runs that differ only in `seed=...` form one group, with the mean and standard deviation of
their completed runs.
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mnist_exp.errors import OutputDirError
from mnist_exp.rundir.readers import find_run_dirs, read_metrics, read_overrides
from mnist_exp.rundir.writes import atomic_write_bytes

ERROR_FILE = "error.txt"
NO_METRICS = "no metrics"
ACCURACIES = ("final_test_acc", "best_test_acc", "final_val_acc", "best_val_acc")


@dataclass(frozen=True)
class JobResult:
    name: str  # the run dir relative to the summarised dir
    overrides: tuple[str, ...]
    status: str
    params: int | None = None
    final_test_acc: float | None = None
    best_test_acc: float | None = None
    final_val_acc: float | None = None
    best_val_acc: float | None = None
    duration_s: float | None = None
    error: str | None = None

    @property
    def group(self) -> str:
        """The overrides without `seed=...`: the runs a mean over seeds is taken across."""
        return " ".join(o for o in self.overrides if not o.lstrip("+~").startswith("seed=")) or "(defaults)"


@dataclass(frozen=True)
class GroupStats:
    overrides: str
    completed: int
    jobs: int
    means: dict[str, tuple[float, float | None] | None]  # accuracy key -> (mean, std or None)
    duration_s: float | None


def read_job(run_dir: Path, root: Path) -> JobResult:
    overrides = tuple(read_overrides(run_dir))
    error_file = run_dir / ERROR_FILE
    error = (error_file.read_text().strip().splitlines() or ["failed"])[0] if error_file.exists() else None
    name = str(run_dir.relative_to(root)) if run_dir != root else "."
    metrics, problem = read_metrics(run_dir)
    if problem:
        return JobResult(name, overrides, "failed" if error else NO_METRICS, error=error)
    status = metrics.get("status") or "running"
    if error and status == "running":
        status = "failed"
    return JobResult(
        name,
        overrides,
        status,
        params=metrics.get("params"),
        **{key: metrics.get(key) for key in ACCURACIES},
        duration_s=metrics.get("duration_s"),
        error=error,
    )


def collect(root: Path) -> list[JobResult]:
    return [read_job(run_dir, root) for run_dir in find_run_dirs(root)]


def mean_std(values: list[float]) -> tuple[float, float | None] | None:
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def group_over_seeds(jobs: list[JobResult]) -> list[GroupStats]:
    groups: dict[str, list[JobResult]] = {}
    for job in jobs:
        groups.setdefault(job.group, []).append(job)
    stats = []
    for overrides, members in groups.items():
        done = [job for job in members if job.status == "completed"]
        means = {
            key: mean_std([getattr(job, key) for job in done if getattr(job, key) is not None])
            for key in ACCURACIES
        }
        durations = [job.duration_s for job in done if job.duration_s is not None]
        mean_duration = statistics.fmean(durations) if durations else None
        stats.append(GroupStats(overrides, len(done), len(members), means, mean_duration))
    return stats


def fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def fmt_mean(stat: tuple[float, float | None] | None) -> str:
    if stat is None:
        return ""
    mean, std = stat
    return fmt(mean) if std is None else f"{mean:.2f} ± {std:.2f}"


def job_rows(jobs: list[JobResult], with_val: bool) -> tuple[list[str], list[list[str]]]:
    header = ["job", "overrides", "params", "final test %", "best test %"]
    header += ["final val %", "best val %"] if with_val else []
    header += ["duration s", "status"]
    rows = []
    for job in jobs:
        row = [job.name, " ".join(job.overrides), f"{job.params:,}" if job.params else ""]
        row += [fmt(job.final_test_acc), fmt(job.best_test_acc)]
        row += [fmt(job.final_val_acc), fmt(job.best_val_acc)] if with_val else []
        row += [fmt(job.duration_s, 1), job.status]
        rows.append(row)
    return header, rows


def group_rows(groups: list[GroupStats], with_val: bool) -> tuple[list[str], list[list[str]]]:
    header = ["overrides (all but seed)", "completed", "final test %", "best test %"]
    header += ["final val %", "best val %"] if with_val else []
    header += ["mean duration s"]
    rows = []
    for group in groups:
        row = [group.overrides, f"{group.completed}/{group.jobs}"]
        row += [fmt_mean(group.means[key]) for key in ACCURACIES[: 4 if with_val else 2]]
        row += [fmt(group.duration_s, 1)]
        rows.append(row)
    return header, rows


def rich_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in header:
        text_column = column in ("job", "status") or "overrides" in column
        table.add_column(column, justify="left" if text_column else "right")
    for row in rows:
        table.add_row(*row, style="red" if row[-1] in ("failed", "diverged", NO_METRICS) else None)
    return table


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, jobs: list[JobResult]) -> None:
    fields = ["job", "overrides", "status", "params", *ACCURACIES, "duration_s", "error"]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(fields)
    for job in jobs:
        writer.writerow(
            [job.name, " ".join(job.overrides), job.status, job.params]
            + [getattr(job, key) for key in ACCURACIES]
            + [job.duration_s, job.error]
        )
    atomic_write_bytes(path, buffer.getvalue().encode())


def summarize(root: Path, console: Console | None = None) -> list[JobResult]:
    """Print the tables, write summary.csv and summary.md into `root`, and return the jobs found."""
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    jobs = collect(root)
    if not jobs:
        console.print(f"No runs under {root}: a run dir holds metrics.json or .hydra/.")
        return jobs
    with_val = any(job.final_val_acc is not None for job in jobs)
    tables = [
        ("Runs", *job_rows(jobs, with_val)),
        ("Mean ± std over seeds (completed runs)", *group_rows(group_over_seeds(jobs), with_val)),
    ]
    failures = [f"- `{job.name}`: {job.error}" for job in jobs if job.error]
    markdown = [f"# Summary of {root}"]
    for title, header, rows in tables:
        console.print(rich_table(title, header, rows))
        markdown += [f"\n## {title}\n", markdown_table(header, rows)]
    if failures:
        console.print("Failed jobs:\n" + "\n".join(failures), style="red", markup=False, highlight=False)
        markdown += ["\n## Failed jobs\n", *failures]
    write_csv(root / "summary.csv", jobs)
    atomic_write_bytes(root / "summary.md", ("\n".join(markdown) + "\n").encode())
    console.print(f"Wrote {root / 'summary.csv'} and {root / 'summary.md'}")
    return jobs


def main(argv: list[str] | None = None) -> int:
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
