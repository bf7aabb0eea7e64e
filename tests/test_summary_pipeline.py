"""The sweep summary and the report are one pipeline: the same runs, statuses, statistics and tables.

`tests/fixtures/summary_sweep` is a small sweep as its jobs leave it on disk: two seeds of one
config, a different config with a validation split, an interrupted run, a job refused before
training (error.txt, no metrics.json), a job that died mid-run (error.txt, metrics still say
running) and a job that has not finished an epoch (no metrics.json, no error).
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from rich.console import Console

from mnist_exp.report.runs import collect_runs, runs_under
from mnist_exp.report.stats import Stat, group_by, stat
from mnist_exp.report.summary import summarise
from mnist_exp.report.tables import markdown_table
from mnist_exp.rundir.job_names import job_dir_name
from mnist_exp.rundir.readers import read_overrides
from mnist_exp.summarize import summarize

FIXTURES = Path(__file__).parent / "fixtures"


def copy_of_sweep(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "summary_sweep", tmp_path / "summary_sweep"))


def test_summary_files_are_byte_for_byte_what_the_summary_wrote_before(tmp_path, monkeypatch):
    """summary_expected.md and .csv were written by the summary before it moved into the report
    package (`python -m mnist_exp.summarize summary_sweep` on a copy of the fixture), with two
    changes since: the job without metrics.json reads `no metrics yet`, where it read
    `no metrics`, the wording the report uses; no "best test %" columns (a peak picked on the
    test set is no result), though the fixture's runs record one; and
    the means over seeds are over "finished" runs (completed, or stopped early). The sweep is
    named by a relative path so that the Markdown's heading does not depend on where the test
    runs."""
    copy_of_sweep(tmp_path)
    monkeypatch.chdir(tmp_path)
    summarize(Path("summary_sweep"), Console(file=io.StringIO(), width=200))
    for name in ("summary.md", "summary.csv"):
        expected = (FIXTURES / name.replace("summary.", "summary_expected.")).read_bytes()
        assert (tmp_path / "summary_sweep" / name).read_bytes() == expected, name


def test_jobs_named_by_their_overrides_are_summarised_alike_under_their_names(tmp_path, monkeypatch):
    """The fixture's jobs renamed as sweeps name them today (`0_model=v3_lr=0.001_seed=1`): the
    same rows in the same order, only the job column changed."""
    sweep = copy_of_sweep(tmp_path)
    names = {}
    for job_dir in sorted(sweep.iterdir(), key=lambda path: int(path.name)):
        names[job_dir.name] = job_dir_name(int(job_dir.name), read_overrides(job_dir))
        job_dir.rename(sweep / names[job_dir.name])
    monkeypatch.chdir(tmp_path)
    summarize(Path("summary_sweep"), Console(file=io.StringIO(), width=200))
    with open(FIXTURES / "summary_expected.csv", newline="") as handle:
        expected = [{**row, "job": names[row["job"]]} for row in csv.DictReader(handle)]
    with open(sweep / "summary.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == expected
    rows = summarise(collect_runs([sweep]))
    assert [run.name for row in rows for run in row.runs] == list(names.values())


def test_the_summary_and_the_report_give_each_run_the_same_status(tmp_path):
    sweep = copy_of_sweep(tmp_path)
    expected = ["completed", "completed", "completed", "interrupted", "failed", "failed", "no metrics yet"]
    assert [run.status for run in runs_under(sweep)] == expected
    rows = summarise(collect_runs([sweep]))
    assert [(row.status, [run.name for run in row.runs]) for row in rows] == [
        ("completed", ["0", "1"]),
        ("completed", ["2"]),
        ("interrupted", ["3"]),
        ("failed", ["4"]),
        ("failed", ["5"]),
        ("no metrics yet", ["6"]),
    ]


def test_a_run_named_alone_is_dot_in_the_summary_and_its_dir_name_in_the_report(tmp_path):
    run_dir = copy_of_sweep(tmp_path) / "0"
    assert [run.name for run in runs_under(run_dir)] == ["."]
    assert [run.name for run in collect_runs([run_dir])] == ["0"]


def test_stat_is_the_mean_and_sample_std_with_no_spread_for_one_value():
    assert stat([97.0, None, 99.0]) == Stat(98.0, 2**0.5)
    assert stat([98]) == (98.0, None)
    assert stat([None]) is None and stat([]) is None


def test_groups_keep_the_order_their_first_member_came_in():
    groups = group_by(["b1", "a1", "b2"], key=lambda item: item[0])
    assert list(groups.items()) == [("b", ["b1", "b2"]), ("a", ["a1"])]


def test_markdown_table_escapes_pipes_and_right_aligns_numeric_columns():
    table = markdown_table(["name", "n"], [["a|b", "3"]], numeric=[False, True])
    assert table == "| name | n |\n|---|---:|\n| a\\|b | 3 |"
    assert markdown_table(["name"], [["x"]]).splitlines()[1] == "|---|"
