"""`hydra/launcher=packed` end to end on real MNIST (tiny subsets): a packed group's jobs are runs
of their own on disk, a job that cannot pack runs alone and says why, Ctrl-C saves every job and
they resume packed again, and a copy that diverges ends alone while the others finish."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mnist_exp.errors import Diverged
from mnist_exp.packing.plan import ALONE_IN_ITS_SHARE
from tests.conftest import run_cli, start_cli, wait_for_line
from tests.test_sweeps import QUICK, job_dirs, metrics, summary_rows

pytestmark = pytest.mark.sweep
PACKED = ("-m", "hydra/launcher=packed", "model=tiny_5k")


def test_a_packed_sweep_leaves_each_job_a_run_of_its_own(tmp_path):
    """Seeds 1-3 with at most 2 copies a group: 1 and 2 pack, 3 runs alone and the log says why.
    Every job has its own log (its own epoch line, once), a summary row, and a checkpoint that
    `mnist-exp-eval` scores as the run's own final test accuracy."""
    result = run_cli(*PACKED, "seed=1,2,3", "hydra.launcher.max_copies=2", *QUICK, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    jobs = job_dirs(sweep_dir)
    assert [job.name for job in jobs] == ["0_seed=1", "1_seed=2", "2_seed=3"]
    output = result.stdout + result.stderr
    assert "#0,1 0_seed=1 1_seed=2: packed" in output
    assert f"#2 2_seed=3: alone, as {ALONE_IN_ITS_SHARE}" in output
    assert "Training 2 jobs packed as one network: seeds [1, 2]" in output
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["completed"] * 3
    for job in jobs:
        log = (job / "train.log").read_text()
        assert log.count("Epoch 1/1 |") == 1, job.name
        assert (job / ".hydra" / "overrides.yaml").read_text().count("seed=") == 1
    assert metrics(jobs[0])["history"] != metrics(jobs[1])["history"], "each copy its own seed"
    test = run_eval(jobs[1], tmp_path)["test"]
    final = metrics(jobs[1])["history"][-1]
    assert test["accuracy"] == final["test_acc"] and test["loss"] == pytest.approx(
        final["test_loss"], abs=1e-6
    )
    assert_the_readers_take_packed_jobs_as_runs_alone(sweep_dir, jobs, tmp_path)


def assert_the_readers_take_packed_jobs_as_runs_alone(
    sweep_dir: Path, jobs: list[Path], tmp_path: Path
) -> None:
    """`mnist-exp-predict` loads a packed job as one network, the report counts the three seeds
    as one config, and each job's events hold its own HParams session for TensorBoard's table."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from mnist_exp.data import ensure_named, load_split
    from mnist_exp.inference.checkpoint import load_trained_model
    from mnist_exp.report.cli import main as report

    images, _labels = load_split(ensure_named("mnist", None), train=False)
    digits = [tmp_path / f"digit_{i}.png" for i in range(3)]
    for image, path in zip(images[:3], digits, strict=True):
        Image.fromarray(image.numpy()).save(path)
    predicted = subprocess.run(
        [sys.executable, "-m", "mnist_exp.predict", str(jobs[0]), *map(str, digits), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert len(json.loads(predicted.stdout)) == 3
    network = load_trained_model(jobs[0]).model
    assert sum(p.numel() for p in network.parameters()) == metrics(jobs[0])["params"], (
        "one copy, not the pack"
    )

    report([str(sweep_dir), "--out", str(tmp_path / "report")])
    with open(tmp_path / "report" / "report.csv", newline="") as handle:
        (row,) = csv.DictReader(handle)
    finals = [metrics(job)["final_test_acc"] for job in jobs]
    assert (row["n"], row["seeds"]) == ("3", "1 2 3")
    assert float(row["final_test_acc_mean"]) == pytest.approx(statistics.fmean(finals))

    for seed, job in enumerate(jobs, start=1):
        sessions = EventAccumulator(str(job)).Reload().PluginTagToContent("hparams")
        assert set(sessions) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}, job.name
        start = plugin_data_pb2.HParamsPluginData.FromString(sessions["_hparams_/session_start_info"])
        hparams = start.session_start_info.hparams
        assert (hparams["seed"].number_value, hparams["status"].string_value) == (seed, "completed")


def run_eval(job: Path, cwd: Path) -> dict:
    """`mnist-exp-eval JOB`'s scores of the job's own checkpoint."""
    result = subprocess.run(
        [sys.executable, "-m", "mnist_exp.eval", str(job), "trainer.device=cpu"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((job / "eval" / "last_mnist" / "evaluation.json").read_text())["splits"]


def test_ctrl_c_saves_every_packed_job_and_they_resume_packed_again(tmp_path):
    long_jobs = ["trainer.epochs=2", "data.train_subset=6000", "data.batch_size=32"]
    process = start_cli(*PACKED, "seed=1,2", *QUICK[2:], *long_jobs, cwd=tmp_path, own_process_group=True)
    wait_for_line(process, "Epoch 1/2 |")
    wait_for_line(process, "Epoch 1/2 |")
    time.sleep(1)  # into epoch 2
    os.killpg(process.pid, signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output[-3000:]
    assert "the state of all 2 packed jobs is saved" in output and "Traceback" not in output
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    jobs = job_dirs(sweep_dir)
    for job in jobs:
        state = torch.load(job / "checkpoints" / "last.pt", weights_only=False)
        assert state["status"] == "interrupted" and state["epoch_progress"]["next_batch"] > 0
    stopped_at = {torch.load(job / "checkpoints" / "last.pt", weights_only=False)["step"] for job in jobs}
    assert len(stopped_at) == 1, "every copy stops at the same batch boundary"

    alone = tmp_path / "alone"  # a copy of job 0, resumed by itself
    shutil.copytree(jobs[0], alone)
    by_itself = run_cli(f"resume={alone}", cwd=tmp_path)
    assert by_itself.returncode == 0, by_itself.stderr[-3000:]
    assert metrics(alone)["status"] == "completed" and len(metrics(alone)["history"]) == 2

    command = re.search(
        r"Resume them packed: python -m mnist_exp (-m hydra/launcher=packed) \"(.+?)\",", output
    )
    assert command, output[-3000:]
    resumed = run_cli(*command[1].split(), command[2], cwd=tmp_path)  # as printed, the shell's quotes gone
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Training 2 jobs packed as one network: seeds [1, 2]" in resumed.stdout + resumed.stderr
    (step,) = stopped_at
    for job in jobs:
        assert metrics(job)["status"] == "completed" and len(metrics(job)["history"]) == 2
        assert f"from epoch 2, step {step}" in (job / "train.log").read_text()


def test_workers_train_the_groups_at_once_in_processes_of_their_own(tmp_path):
    """`hydra.launcher.workers=2`: seeds 1-4 make two groups, trained at once in two worker
    processes, each job a run of its own."""
    quick = run_cli(*PACKED, "hydra.launcher.workers=2", "seed=1,2,3,4", *QUICK, cwd=tmp_path)
    assert quick.returncode == 0, quick.stderr[-3000:]
    output = quick.stdout + quick.stderr
    assert "Launching 4 jobs in 2 groups, 2 worker processes at a time" in output
    for seeds in ("[1, 2]", "[3, 4]"):
        assert f"Training 2 jobs packed as one network: seeds {seeds}" in output
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["completed"] * 4
    for job in job_dirs(sweep_dir):
        assert (job / "train.log").read_text().count("Epoch 1/1 |") == 1, job.name


@pytest.mark.parametrize(("stop", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_launcher_alone_stops_every_worker_with_its_jobs_saved(tmp_path, stop, exit_code):
    """Sent to the launcher alone (as by `kill`), SIGINT or SIGTERM reaches both workers, which
    save every job and say how to resume it; nothing is called failed."""
    long_jobs = ["trainer.epochs=2", "data.train_subset=6000", "data.batch_size=32"]
    process = start_cli(
        *PACKED, "hydra.launcher.workers=2", "seed=1,2,3,4", *QUICK[2:], *long_jobs, cwd=tmp_path
    )
    wait_for_line(process, "Epoch 1/2 |")
    time.sleep(1)
    process.send_signal(stop)  # the launcher only: it hands the signal on
    output = process.communicate(timeout=120)[0]
    assert process.returncode == exit_code, output[-3000:]
    assert output.count("the state of all 2 packed jobs is saved") == 2 and "Traceback" not in output
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    for job in job_dirs(sweep_dir):
        assert torch.load(job / "checkpoints" / "last.pt", weights_only=False)["status"] == "interrupted"
        assert not (job / "error.txt").exists(), job.name


def test_a_worker_killed_outright_fails_its_own_jobs_saying_so_while_the_other_group_finishes(tmp_path):
    long_jobs = ["trainer.epochs=2", "data.train_subset=3000", "data.batch_size=32"]
    process = start_cli(
        *PACKED, "hydra.launcher.workers=2", "seed=1,2,3,4", *QUICK[2:], *long_jobs, cwd=tmp_path
    )
    wait_for_line(process, "Epoch 1/2 |")
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(children) == 2, children
    os.kill(int(children[0]), signal.SIGKILL)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 1, output[-3000:]
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    jobs = job_dirs(sweep_dir)
    killed = [job for job in jobs if (job / "error.txt").exists()]
    assert killed in (jobs[:2], jobs[2:]), "the killed worker's group, both its jobs"
    numbers = "[0, 1]" if killed == jobs[:2] else "[2, 3]"
    for job in killed:
        error = (job / "error.txt").read_text()
        assert f"the worker process training jobs {numbers} ended with exit code -9 before reporting" in error
    assert [metrics(job)["status"] for job in jobs if job not in killed] == ["completed", "completed"]


def test_resume_paths_without_checkpoints_fail_each_job_with_its_path_as_the_basic_launcher_does(tmp_path):
    missing = [tmp_path / "gone_a", tmp_path / "gone_b"]
    result = run_cli(*PACKED, f"resume='{missing[0]}','{missing[1]}'", "trainer.device=cpu", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    for job, path in zip(job_dirs(sweep_dir), missing, strict=True):
        error = (job / "error.txt").read_text()
        assert f"resume={path}: no checkpoint at {path}" in error, error
        assert not (job / "checkpoints").exists() and not path.exists()


def test_a_diverging_copy_ends_alone_while_the_others_finish(tmp_path, compose_config, monkeypatch):
    """Copy 1's weights go to NaN on the second step: its job ends `diverged` with its error, and
    the other two finish as usual."""
    from mnist_exp.packing import run as packed_run
    from mnist_exp.packing.training import PackedTraining
    from mnist_exp.rundir.signals import StopRequests
    from mnist_exp.train import Job

    step = PackedTraining.step

    def poisoned_step(self, inputs, targets):
        if self.states[0].step == 1:
            with torch.no_grad():
                self.network[0].weight.chunk(self.copies)[1].fill_(float("nan"))
        return step(self, inputs, targets)

    monkeypatch.setattr(PackedTraining, "step", poisoned_step)
    jobs = []
    for k, seed in enumerate((1, 2, 3)):
        cfg = compose_config("model=tiny_5k", f"seed={seed}", *QUICK)
        job = Job(tmp_path / f"{k}_seed={seed}", {}, [f"seed={seed}"], True, ("seed",))
        job.run_dir.mkdir()  # as the launcher makes it
        jobs.append(packed_run.PackedJob(cfg, job, contextlib.nullcontext))
    packed_run.run_group(jobs, StopRequests())

    assert isinstance(jobs[1].result, Diverged)
    assert [metrics(job.job.run_dir)["status"] for job in jobs] == ["completed", "diverged", "completed"]
    assert all(isinstance(jobs[k].result, float) for k in (0, 2))
