"""Real sweeps in subprocesses on real MNIST (tiny subsets, one epoch), under each launcher preset.

Each launcher's test is skipped, with the extra to install, when its Hydra plugin is missing; the
SLURM one also needs a running cluster (`eval "$(scripts/slurm_cluster.sh start)"`).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import plugin_data_pb2

from mnist_exp.cli.plugins import JOBLIB, OPTUNA, RAY, SUBMITIT, plugin_installed
from mnist_exp.rundir.job_names import job_number
from tests.conftest import run_cli, start_cli, wait_for_line

pytestmark = pytest.mark.sweep

QUICK = ["trainer.epochs=1", "data.train_subset=500", "trainer.device=cpu", "trainer.threads=1"]


def needs_plugin(plugin: tuple[str, str, str]):
    module, _, extra = plugin
    return pytest.mark.skipif(
        not plugin_installed(module), reason=f'{module} is not installed: pip install "mnist-exp[{extra}]"'
    )


needs_joblib = needs_plugin(JOBLIB)
needs_submitit = needs_plugin(SUBMITIT)
needs_optuna = needs_plugin(OPTUNA)
needs_ray = needs_plugin(RAY)


def sweep(*args: str, cwd: Path, env: dict | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    """Run `python -m mnist_exp -m ARGS` in `cwd`; returns the result and the one sweep dir."""
    result = run_cli("-m", *args, *QUICK, cwd=cwd, env=env)
    sweeps = list((cwd / "multirun").iterdir())
    assert len(sweeps) == 1, result.stderr[-3000:]
    return result, sweeps[0]


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's job dirs (`0_seed=1`, `1_seed=2`, ...) in job-number order."""
    numbered = (p for p in sweep_dir.iterdir() if job_number(p.name) is not None)
    return sorted(numbered, key=lambda p: job_number(p.name))


def wait_for_job_dir(sweep_dir: Path, num: int, timeout: float = 300) -> Path:
    """Job `num`'s dir once the job has made it, by whatever overrides it is named."""
    deadline = time.monotonic() + timeout
    while not (
        found := [p for p in job_dirs(sweep_dir) if job_number(p.name) == num] if sweep_dir.is_dir() else []
    ):
        assert time.monotonic() < deadline, f"no dir of job {num} in {sweep_dir}"
        time.sleep(0.1)
    return found[0]


def metrics(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


def summary_rows(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "summary.csv") as handle:
        return list(csv.DictReader(handle))


def assert_one_completed_row_per_job(result: subprocess.CompletedProcess, sweep_dir: Path, names: list[str]):
    """Each job's dir is named by its number and the overrides the sweep varies, those alone:
    the swept keys reached the process that ran the job, whichever launcher started it."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in job_dirs(sweep_dir)] == names
    assert all(metrics(job)["status"] == "completed" for job in job_dirs(sweep_dir))
    rows = summary_rows(sweep_dir)
    assert [(row["job"], row["status"]) for row in rows] == [(name, "completed") for name in names]


@pytest.fixture(scope="module")
def basic_sweep(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """Two learning rates x two seeds with Hydra's own launcher, one job after another."""
    return sweep("optimizer.lr=0.001,0.003", "seed=1,2", cwd=tmp_path_factory.mktemp("basic"))


def test_basic_sweep_writes_one_run_dir_and_summary_row_per_job(basic_sweep):
    result, sweep_dir = basic_sweep
    names = ["0_lr=0.001_seed=1", "1_lr=0.001_seed=2", "2_lr=0.003_seed=1", "3_lr=0.003_seed=2"]
    assert_one_completed_row_per_job(result, sweep_dir, names)
    assert "Mean ± std over seeds" in result.stdout


def test_summary_groups_the_seeds_of_each_learning_rate(basic_sweep):
    _, sweep_dir = basic_sweep
    markdown = (sweep_dir / "summary.md").read_text()
    for lr in ("0.001", "0.003"):
        group_row = next(line for line in markdown.splitlines() if line.startswith(f"| optimizer.lr={lr} "))
        assert "| 2/2 |" in group_row and " ± " in group_row


def hparams_of(run_events_dir: Path) -> dict[str, object]:
    """The hyperparameters of the HParams session this run dir's events start."""
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(run_events_dir))
    multiplexer.Reload()
    (run,) = multiplexer.Runs()
    content = multiplexer.SummaryMetadata(run, "_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}


def test_tensorboard_sees_each_job_as_its_own_run_with_the_swept_keys_as_hparams(basic_sweep):
    _, sweep_dir = basic_sweep
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(sweep_dir))
    multiplexer.Reload()
    assert sorted(multiplexer.Runs()) == [
        "0_lr=0.001_seed=1",
        "1_lr=0.001_seed=2",
        "2_lr=0.003_seed=1",
        "3_lr=0.003_seed=2",
    ]
    for tags in multiplexer.Runs().values():
        assert {"accuracy/test", "summary/duration_s"} <= set(tags["scalars"])
        # No experiment summary per run: TensorBoard builds one from every run's session, so the
        # HParams table shows every job with all their keys as columns.
        assert "_hparams_/experiment" not in tags["tensors"]

    swept = []
    for job_dir in job_dirs(sweep_dir):
        hparams = hparams_of(job_dir)
        overrides_file = job_dir / ".hydra" / "overrides.yaml"
        overrides = dict(o.split("=", 1) for o in yaml.safe_load(overrides_file.read_text()))
        assert hparams["optimizer.lr"] == pytest.approx(float(overrides["optimizer.lr"]))
        assert hparams["seed"] == int(overrides["seed"])
        assert {"model", "optimizer", "data.batch_size", "trainer.epochs"} <= set(hparams)
        swept.append((hparams["optimizer.lr"], hparams["seed"]))
    assert len(set(swept)) == 4


@needs_joblib
def test_parallel_sweep_writes_one_run_dir_and_summary_row_per_job(tmp_path):
    result, sweep_dir = sweep("hydra/launcher=parallel", "seed=1,2", cwd=tmp_path)
    assert_one_completed_row_per_job(result, sweep_dir, ["0_seed=1", "1_seed=2"])


@needs_joblib
def test_a_diverging_job_in_a_parallel_sweep_leaves_the_other_job_to_finish(tmp_path):
    """The diverged job's error comes back to the launcher pickled; it once broke the process pool."""
    result, sweep_dir = sweep(
        "hydra/launcher=parallel", "optimizer=sgd", "optimizer.lr=1e30,0.01", cwd=tmp_path
    )
    assert result.returncode == 1
    diverged, completed = job_dirs(sweep_dir)
    assert (metrics(diverged)["status"], metrics(completed)["status"]) == ("diverged", "completed")
    assert (diverged / "error.txt").read_text().startswith("Diverged: Training diverged: the loss is")


@needs_joblib
def test_ctrl_c_on_a_parallel_sweep_ends_it_with_every_job_resumable(tmp_path):
    """joblib stops its workers as soon as the launcher sees Ctrl-C, most often before they save
    their partial epoch: a job then keeps its last finished epoch's checkpoint, status `running`
    (resuming from such a checkpoint is the SIGKILL test's part)."""
    long_jobs = ["trainer.epochs=3", "data.train_subset=6000", "data.batch_size=32"]
    process = start_cli(
        "-m", "hydra/launcher=parallel", "seed=1,2", *QUICK, *long_jobs, cwd=tmp_path, own_process_group=True
    )
    for _job in range(2):
        wait_for_line(process, "Epoch 1/3 |")
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    deadline = time.monotonic() + 60
    while len(list(sweep_dir.glob("*/metrics.json"))) < 2:  # each job's first epoch is on disk
        assert time.monotonic() < deadline, "no metrics.json from both jobs within 60 s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output[-3000:]
    assert "Error: the sweep was interrupted by Ctrl-C; the files written are complete" in output
    assert "Traceback" not in output
    assert {row["status"] for row in summary_rows(sweep_dir)} <= {"running", "interrupted"}
    for job in job_dirs(sweep_dir):  # resumable: a whole checkpoint of an unfinished run
        state = torch.load(job / "checkpoints" / "last.pt", weights_only=True)
        # A worker stopped between its checkpoint and its metrics.json leaves them a status apart.
        assert state["status"] in {"running", "interrupted"} and len(state["history"]) >= 1


@needs_submitit
def test_local_isolated_sweep_runs_each_job_in_its_own_process(tmp_path):
    result, sweep_dir = sweep("hydra/launcher=local_isolated", "seed=1,2", cwd=tmp_path)
    assert_one_completed_row_per_job(result, sweep_dir, ["0_seed=1", "1_seed=2"])
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 2


def wait_for_file_line(path: Path, text: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not (path.is_file() and text in path.read_text()):
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.1)


@needs_submitit
def test_a_job_stopped_by_sigusr2_saves_then_submitit_requeues_it_to_go_on(tmp_path):
    """Submitit sends a job SIGUSR2 before its time limit or pre-emption (on SLURM, through
    sbatch's `--signal`) and requeues it; its local launcher does the same. The job first stops
    at a batch boundary and saves, so the requeued job goes on from there, mid-epoch."""
    sweep_dir = tmp_path / "sweep"
    long_epochs = ["trainer.epochs=2", "data.train_subset=6000", "data.batch_size=32"]
    process = start_cli(
        "-m", "hydra/launcher=local_isolated", *QUICK, *long_epochs, "seed=7", f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    job = wait_for_job_dir(sweep_dir, 0)
    wait_for_file_line(job / "train.log", "Epoch 1/2 |")
    os.kill(int((job / ".lock").read_text()), signal.SIGUSR2)
    output = process.communicate(timeout=300)[0]

    assert process.returncode == 0, output[-3000:]
    log = (job / "train.log").read_text()
    stopped = re.search(r"Interrupted by SIGUSR2 at epoch 2, step (\d+); state saved", log)
    assert stopped, log[-3000:]
    assert "Continuing the unfinished run (interrupted)" in log
    assert f"from epoch 2, step {stopped[1]}" in log
    assert metrics(job)["status"] == "completed" and len(metrics(job)["history"]) == 2
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["completed"]


def test_a_sweep_with_a_failed_job_still_ends_with_its_summary(tmp_path):
    """Hydra skips `on_multirun_end` when a job failed; the summary comes as the process exits."""
    result, sweep_dir = sweep("optimizer.lr=0.001,-1", cwd=tmp_path)
    assert result.returncode == 1
    ok, failed = summary_rows(sweep_dir)
    assert (ok["overrides"].split()[0], ok["status"]) == ("optimizer.lr=0.001", "completed")
    assert (failed["overrides"].split()[0], failed["status"]) == ("optimizer.lr=-1", "failed")
    assert (ok["job"], failed["job"]) == ("0_lr=0.001", "1_lr=-1")
    assert f"- `1_lr=-1`: {failed['error']}" in result.stdout
    assert failed["error"] == "ConfigError: Invalid config: optimizer.lr=-1.0 is not allowed: must be > 0"


CTRL_C_AS_SCORED = """
import os, signal, sys
import mnist_exp.engine.loop
from mnist_exp.train import cli

score = mnist_exp.engine.loop.predict_logits
def ctrl_c_then_score(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    return score(*args, **kwargs)

mnist_exp.engine.loop.predict_logits = ctrl_c_then_score
sys.argv[0] = "mnist_exp"
cli()
"""


def test_ctrl_c_as_a_jobs_last_epoch_is_scored_stops_the_sweep_after_that_job(tmp_path):
    """Too late to stop the job, which completes; the next job must not start in its place."""
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_AS_SCORED, "-m", "seed=1,2", *QUICK],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 130, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    assert "Error: SIGINT received as the run was finishing: it finished all the same" in result.stderr
    assert [p.name for p in job_dirs(sweep_dir)] == ["0_seed=1"]
    assert metrics(sweep_dir / "0_seed=1")["status"] == "completed"
    assert [(row["job"], row["status"]) for row in summary_rows(sweep_dir)] == [("0_seed=1", "completed")]


@needs_optuna
def test_optuna_runs_three_trials_maximising_validation_accuracy(tmp_path):
    result, sweep_dir = sweep(
        "hparams_search=optuna", "hydra.sweeper.n_trials=3", "data.val_size=1000", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = [metrics(job) for job in job_dirs(sweep_dir)]
    assert len(trials) == 3 and all(trial["status"] == "completed" for trial in trials)
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(trial["final_val_acc"] for trial in trials)
    searched = {"optimizer", "optimizer.lr", "optimizer.weight_decay", "data.batch_size"}
    assert set(best["best_params"]) == searched
    assert len(summary_rows(sweep_dir)) == 3


def ended_slurm_job(job_id: str, timeout: float = 60) -> str:
    """`scontrol show job` once the job has ended: it is RUNNING until its process exits, which
    can be just after the sweep has its result."""
    deadline = time.monotonic() + timeout
    while True:
        job = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        if not re.search(r"JobState=(PENDING|RUNNING|COMPLETING)", job) or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


@pytest.mark.slurm
@needs_submitit
@pytest.mark.skipif(
    not (os.environ.get("SLURM_CONF") and shutil.which("sbatch")),
    reason='no SLURM cluster: start one with eval "$(scripts/slurm_cluster.sh start)" (needs root)',
)
def test_slurm_sweep_runs_each_job_as_a_slurm_array_task(tmp_path):
    result, sweep_dir = sweep(
        "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=2",
        "seed=1,2",
        cwd=tmp_path,
    )
    assert_one_completed_row_per_job(result, sweep_dir, ["0_seed=1", "1_seed=2"])
    for job_dir in job_dirs(sweep_dir):
        # submitit sets hydra.job.id from SLURM's array job and task ids; the controller knows the job.
        job_id = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"]
        assert re.fullmatch(rf"\d+_{job_number(job_dir.name)}", job_id), job_id
        job = ended_slurm_job(job_id)
        assert "JobName=mnist-exp" in job and "JobState=COMPLETED" in job and "ExitCode=0:0" in job, job
        assert (sweep_dir / ".submitit" / job_id / f"{job_id}_0_log.out").exists()


@needs_ray
def test_ray_sweep_writes_one_run_dir_and_summary_row_per_job(tmp_path):
    result, sweep_dir = sweep(
        "hydra/launcher=ray_tasks", "seed=1,2", cwd=tmp_path,
        env={"RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_niceness": "0"},  # not starved on a busy machine
    )  # fmt: skip
    assert_one_completed_row_per_job(result, sweep_dir, ["0_seed=1", "1_seed=2"])
