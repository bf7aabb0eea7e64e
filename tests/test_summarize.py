"""The sweep summary reads any runs dir from disk: one row per job, and the mean over seeds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from mnist_exp.cli.sweep_summary import SweepSummary
from mnist_exp.report.runs import runs_under
from mnist_exp.report.sweep import group_over_seeds
from mnist_exp.summarize import main, summarize


def make_job(
    job_dir: Path, overrides: list[str], status: str | None = "completed", acc: float = 98.0, val=None
) -> Path:
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if status is not None:
        metrics = {
            "model": "v3",
            "params": 18_594,
            "status": status,
            "final_test_acc": acc,
            "best_test_acc": acc + 0.5,
            "duration_s": 10.0,
        }
        if val is not None:
            metrics |= {"final_val_acc": val, "best_val_acc": val}
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
    return job_dir


@pytest.mark.parametrize("name", ["{num}_seed={num}", "{num}"], ids=["named", "numbered"])
def test_one_row_per_job_in_job_number_order(tmp_path, name):
    """`10_seed=10` after `9_seed=9`, as sweeps name their jobs; `10` after `9` in older sweeps."""
    for num in (10, 9, 2, 1):
        make_job(tmp_path / name.format(num=num), [f"seed={num}"])
    expected = [name.format(num=num) for num in (1, 2, 9, 10)]
    assert [job.name for job in runs_under(tmp_path)] == expected
    summarize(tmp_path)
    with open(tmp_path / "summary.csv") as handle:
        assert [row["job"] for row in csv.DictReader(handle)] == expected


def test_seeds_are_averaged_within_groups_of_equal_other_overrides(tmp_path):
    make_job(tmp_path / "0_lr=0.001_seed=1", ["optimizer.lr=0.001", "seed=1"], acc=97.0)
    make_job(tmp_path / "1_lr=0.001_seed=2", ["optimizer.lr=0.001", "seed=2"], acc=99.0)
    make_job(tmp_path / "2_lr=0.003_seed=1", ["optimizer.lr=0.003", "seed=1"], acc=95.0)
    groups = {group.overrides: group for group in group_over_seeds(runs_under(tmp_path))}
    assert set(groups) == {"optimizer.lr=0.001", "optimizer.lr=0.003"}
    mean, std = groups["optimizer.lr=0.001"].means["final_test_acc"]
    assert (mean, round(std, 4)) == (98.0, 1.4142)
    assert groups["optimizer.lr=0.003"].means["final_test_acc"] == (95.0, None)


def test_only_completed_jobs_enter_the_mean(tmp_path):
    make_job(tmp_path / "0_seed=1", ["seed=1"], acc=98.0)
    make_job(tmp_path / "1_seed=2", ["seed=2"], status="interrupted", acc=50.0)
    (group,) = group_over_seeds(runs_under(tmp_path))
    assert (group.finished, group.jobs, group.means["final_test_acc"]) == (1, 2, (98.0, None))


def test_a_job_dir_without_metrics_is_reported_not_skipped(tmp_path):
    make_job(tmp_path / "0_seed=1", ["seed=1"], status=None)
    (job,) = runs_under(tmp_path)
    assert (job.status, job.metrics.get("final_test_acc")) == ("no metrics yet", None)


def test_a_job_with_error_file_is_failed(tmp_path):
    make_job(tmp_path / "0_lr=-1", ["optimizer.lr=-1"], status=None)
    (tmp_path / "0_lr=-1" / "error.txt").write_text("ValueError: Invalid learning rate: -1\n")
    make_job(tmp_path / "1_lr=1", ["optimizer.lr=1"], status="running")
    (tmp_path / "1_lr=1" / "error.txt").write_text("RuntimeError: boom\n")
    assert [(job.status, job.error) for job in runs_under(tmp_path)] == [
        ("failed", "ValueError: Invalid learning rate: -1"),
        ("failed", "RuntimeError: boom"),
    ]


def test_a_single_run_dir_and_hidden_dirs(tmp_path):
    make_job(tmp_path, ["model=v2"])
    (tmp_path / ".submitit" / "1_0" / ".hydra").mkdir(parents=True)
    (job,) = runs_under(tmp_path)
    assert (job.name, job.overrides) == (".", ("model=v2",))


def test_summary_files_hold_every_job_and_validation_columns(tmp_path):
    make_job(tmp_path / "0_seed=1", ["seed=1"], val=97.25)
    make_job(tmp_path / "1_seed=2", ["seed=2"], status=None)
    summarize(tmp_path)
    with open(tmp_path / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["job"], row["status"], row["final_val_acc"]) for row in rows] == [
        ("0_seed=1", "completed", "97.25"),
        ("1_seed=2", "no metrics yet", ""),
    ]
    markdown = (tmp_path / "summary.md").read_text()
    assert "final val %" in markdown and "97.25" in markdown and "| 1/2 |" in markdown


def test_cli_exit_codes(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert main([str(tmp_path)]) == 1
    make_job(tmp_path / "0", [])
    assert main([str(tmp_path)]) == 0
    assert "(defaults)" in capsys.readouterr().out


def test_a_summary_that_cannot_be_written_exits_2_naming_it(tmp_path, capsys):
    make_job(tmp_path / "0", [])
    (tmp_path / "summary.md").mkdir()  # where the file should go
    assert main([str(tmp_path)]) == 2
    assert f"error: cannot write {tmp_path / 'summary.md'} (Is a directory" in capsys.readouterr().err


def test_a_sweep_whose_summary_cannot_be_written_logs_one_error(tmp_path, caplog):
    make_job(tmp_path / "0", [])
    (tmp_path / "summary.md").mkdir()
    SweepSummary().on_multirun_end(config=OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    (error,) = [record for record in caplog.records if record.levelname == "ERROR"]
    assert error.getMessage().startswith(f"cannot write {tmp_path / 'summary.md'} (Is a directory")


def test_callback_leaves_error_file_only_for_a_failed_job(tmp_path):
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(tmp_path)}}})
    failed = JobReturn(status=JobStatus.FAILED, hydra_cfg=hydra_cfg)
    failed.return_value = ValueError("Invalid learning rate: -1")
    SweepSummary().on_job_end(config=OmegaConf.create(), job_return=failed)
    assert (tmp_path / "error.txt").read_text() == "ValueError: Invalid learning rate: -1\n"

    (tmp_path / "error.txt").unlink()
    completed = JobReturn(status=JobStatus.COMPLETED, hydra_cfg=hydra_cfg)
    completed.return_value = 98.0
    SweepSummary().on_job_end(config=OmegaConf.create(), job_return=completed)
    assert not (tmp_path / "error.txt").exists()
