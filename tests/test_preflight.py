"""What a sweep job started again does with the run it finds in its own directory, and a sweep
pointed at an earlier sweep's directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mnist_exp.errors import OutputDirError
from mnist_exp.rundir.guard import continue_earlier_job, require_new_sweep_dir


def job_config():
    return OmegaConf.create({"resume": None, "seed": 1})


def write_metrics(job_dir: Path, status: str, epochs: int = 1) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": epoch} for epoch in range(1, epochs + 1)]
    (job_dir / "metrics.json").write_text(json.dumps({"status": status, "history": history}))


def test_a_job_in_an_empty_dir_starts_afresh(tmp_path):
    config = job_config()
    assert continue_earlier_job(config, tmp_path / "0_seed=1").resume is None


@pytest.mark.parametrize("status", ["interrupted", "completed"])
def test_a_job_with_its_earlier_checkpoint_resumes_from_it(tmp_path, status):
    job_dir = tmp_path / "seed=1"
    write_metrics(job_dir, status)
    (job_dir / "checkpoints").mkdir()
    (job_dir / "checkpoints" / "last.pt").write_bytes(b"saved")
    config = job_config()

    continued = continue_earlier_job(config, job_dir)

    assert continued.resume == str(job_dir)
    assert config.resume is None  # the caller's config is left as it was


@pytest.mark.parametrize("status", ["failed", "diverged"])
def test_a_run_that_ended_before_its_first_epoch_leaves_the_dir_to_a_new_start(tmp_path, status):
    """Nothing trained there: no checkpoint to go on from, no epoch to lose."""
    job_dir = tmp_path / "seed=1"
    write_metrics(job_dir, status, epochs=0)
    assert continue_earlier_job(job_config(), job_dir).resume is None


def test_an_earlier_run_without_its_checkpoint_is_refused_and_named(tmp_path):
    job_dir = tmp_path / "seed=1"
    write_metrics(job_dir, "interrupted")

    with pytest.raises(OutputDirError) as refused:
        continue_earlier_job(job_dir=job_dir, config=job_config())

    message = str(refused.value)
    assert f"{job_dir} already holds a run (interrupted) without its checkpoints/last.pt" in message
    assert message.endswith("Choose another hydra.sweep.dir.")
    assert json.loads((job_dir / "metrics.json").read_text())["status"] == "interrupted"


def sweep_config(sweep_dir: Path, subdir: str = "${mnist_exp_job_dir:}"):
    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir), "subdir": subdir}}})


@pytest.mark.parametrize("first_job", ["0_lr=0.001", "0"])
def test_a_sweep_dir_holding_an_earlier_sweeps_first_job_is_refused(tmp_path, first_job):
    """By its name today, or as sweeps named their jobs by number alone."""
    write_metrics(tmp_path / first_job, "completed")
    with pytest.raises(OutputDirError) as refused:
        require_new_sweep_dir(sweep_config(tmp_path))
    assert f"already holds an earlier sweep's jobs ({tmp_path / first_job}: completed)" in str(refused.value)
    with pytest.raises(OutputDirError):
        require_new_sweep_dir(sweep_config(tmp_path, subdir="${hydra.job.num}"))


def test_a_sweep_dir_without_a_trained_first_job_is_used(tmp_path):
    write_metrics(tmp_path / "0_lr=0.001", "failed", epochs=0)  # refused before its first epoch
    write_metrics(tmp_path / "10_lr=0.01", "completed")  # job 10, not job 0
    (tmp_path / ".submitit" / "0").mkdir(parents=True)
    require_new_sweep_dir(sweep_config(tmp_path))


def test_jobs_named_by_their_overrides_alone_may_join_an_earlier_sweep(tmp_path):
    write_metrics(tmp_path / "0_seed=1", "completed")
    require_new_sweep_dir(sweep_config(tmp_path, subdir="${hydra.job.override_dirname}"))
