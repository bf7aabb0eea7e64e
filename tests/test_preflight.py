"""What a sweep job started again does with the run it finds in its own directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mnist_exp.errors import OutputDirError
from mnist_exp.rundir.guard import continue_earlier_job


def job_config():
    return OmegaConf.create({"resume": None, "seed": 1})


def write_metrics(job_dir: Path, status: str, epochs: int = 1) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": epoch} for epoch in range(1, epochs + 1)]
    (job_dir / "metrics.json").write_text(json.dumps({"status": status, "history": history}))


def test_a_job_in_an_empty_dir_starts_afresh(tmp_path):
    config = job_config()
    assert continue_earlier_job(config, tmp_path / "0").resume is None


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
