"""`${job_gpu:}` spreads a sweep's jobs over the GPUs by job number, and leaves CPU machines alone."""

from __future__ import annotations

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from mnist_exp.config.job_gpu import job_gpu, register_job_gpu


@pytest.fixture
def job_number(monkeypatch):
    """job_number(k): make the running Hydra job number k."""

    def _set(num: int) -> None:
        monkeypatch.setattr(HydraConfig, "get", lambda: OmegaConf.create({"job": {"num": num}}))

    return _set


def test_job_k_runs_on_gpu_k_mod_gpu_count(job_number, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    devices = []
    for num in range(5):
        job_number(num)
        devices.append(job_gpu())
    assert devices == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]


def test_without_cuda_it_resolves_to_auto(job_number, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    job_number(1)
    assert job_gpu() == "auto"


def test_the_resolver_works_in_a_config(job_number, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    register_job_gpu()
    register_job_gpu()  # registering twice is harmless
    job_number(3)
    assert OmegaConf.create({"device": "${job_gpu:}"}).device == "cuda:1"


def test_a_jobs_dir_name_starts_with_the_number_its_gpu_is_chosen_by(job_number, monkeypatch):
    """Job 3 of a sweep on two GPUs, as a launcher resolves it: `3_seed=4` trains on cuda:1."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    register_job_gpu()
    job_number(3)
    job = OmegaConf.create(
        {
            "hydra": {
                "job": {"num": 3},
                "overrides": {"task": ["seed=4"]},
                "sweep": {"subdir": "${mnist_exp_job_dir:}"},
            },
            "device": "${job_gpu:}",
        }
    )
    assert (job.hydra.sweep.subdir, job.device) == ("3_seed=4", "cuda:1")
