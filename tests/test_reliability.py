"""Faults fed for real to the CLI in subprocesses: bad input, signals, hard kills, divergence."""

from __future__ import annotations

import fcntl
import json
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import mnist_exp
from tests.conftest import run_cli, start_cli, wait_for_line

CONF = Path(mnist_exp.__file__).parent / "conf"
TINY = ["trainer.epochs=1", "data.train_subset=500", "trainer.device=cpu", "trainer.threads=1"]


def history_without_timing(run_dir: Path) -> list[dict]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return [{k: v for k, v in record.items() if k != "seconds"} for record in metrics["history"]]


def assert_user_error(result: subprocess.CompletedProcess, first_line_part: str, code: int = 2) -> None:
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    assert first_line_part in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# --- bad input -------------------------------------------------------------------------------


def test_out_of_range_value_exits_2_with_one_message_and_no_traceback(tmp_path):
    result = run_cli("model.dropout=1.5", *TINY, cwd=tmp_path)
    assert_user_error(result, "Error: Invalid config: model.dropout=1.5 is not allowed: must be in [0, 1)")
    assert list(tmp_path.iterdir()) == [], "refused before Hydra made a run dir"


def test_a_data_cache_that_cannot_be_made_is_one_message_naming_the_fix(tmp_path):
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the data cache should be")
    result = run_cli(*TINY, f"data.root={not_a_directory}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_user_error(result, f"Error: MNIST: cannot create the data cache {not_a_directory}/MNIST/raw")
    assert "Point data.root (or --root) at a directory you can write to" in result.stderr
    assert "cannot create the data cache" in (tmp_path / "run" / "train.log").read_text()


def test_full_trace_only_with_hydra_full_error(tmp_path):
    result = run_cli("optimizer.lr=-1", *TINY, cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert list(tmp_path.iterdir()) == [], "refused before Hydra made a run dir"


def test_wrong_type_is_refused_while_composing(tmp_path):
    result = run_cli("trainer.epochs=ten", cwd=tmp_path)
    assert result.returncode == 1
    assert "Value 'ten' of type 'str' could not be converted to Integer" in result.stderr
    assert "full_key: trainer.epochs" in result.stderr


@pytest.mark.parametrize("group", ["model", "optimizer", "data/augment"])
def test_unknown_group_option_lists_the_available_ones_and_nothing_else(tmp_path, group):
    """The list holds the group's YAML options only, not the typed schemas that check them."""
    result = run_cli(f"{group}=nonesuch", cwd=tmp_path)
    assert result.returncode == 1
    assert f"Could not find '{group}/nonesuch'" in result.stderr
    listed = result.stderr.split(f"Available options in '{group}':\n")[1].split("Config search path")[0]
    assert listed.split() == sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def help_section(text: str, title: str) -> list[str]:
    """The lines under `== TITLE ==` in the help, up to the next blank line."""
    section = text.split(f"== {title} ==\n")[1]
    return section.split("\n\n")[0].splitlines()


def test_help_says_what_the_program_does_with_examples_and_only_the_groups_a_user_chooses_from(tmp_path):
    """Not the typed schemas, and not Hydra's own groups; not the raw config dump either."""
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("mnist-exp: train small CNNs on MNIST")
    assert "powered by Hydra" not in result.stdout and "_target_" not in result.stdout
    examples = help_section(result.stdout, "Examples")
    assert 6 <= len(examples) <= 10
    groups = help_section(result.stdout, "Configuration groups (group=option)")
    listed = [line.split(":")[0] for line in groups if ":" in line]
    shipped = {str(path.parent.relative_to(CONF)) for path in CONF.glob("**/*.yaml")}
    assert listed == sorted(group for group in shipped if group != "." and not group.startswith("hydra"))


def test_the_trainer_keys_in_the_help_exist_with_the_defaults_it_states(tmp_path, compose_config):
    result = run_cli("--help", cwd=tmp_path)
    keys = help_section(result.stdout, "Main trainer keys (trainer.KEY=VALUE)")
    trainer = compose_config().trainer
    assert len(keys) >= 8
    for line in keys:
        key, default = line.split()[0], line.rsplit("(", 1)[1].rstrip(")")
        assert str(OmegaConf.select(trainer, key)).lower() == default.lower(), line


def test_the_help_examples_compose(tmp_path):
    """Each example of `python -m mnist_exp` gives a config, as `--cfg job` prints it, untrained."""
    examples = help_section(run_cli("--help", cwd=tmp_path).stdout, "Examples")
    commands = [line.split("#")[0].split() for line in examples if "-m mnist_exp" in line]
    assert len(commands) >= 5
    for command in commands:
        # A sweep's first job stands for the sweep; the launcher and a run to resume are not composed.
        overrides = [arg.split(",")[0] for arg in command[3:] if arg != "-m" and "hydra/launcher" not in arg]
        overrides = [arg for arg in overrides if not arg.startswith("resume=")]
        result = run_cli(*overrides, "--cfg", "job", cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr[-1000:])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.epoch=3", "Key 'epoch' not in 'TrainerConfig'"),
        ("schema=adam", "Key 'schema' not in 'RunConfig'"),  # a schema is no group to choose from
        # Options that are gone, as unknown as a typo:
        ("trainer.teacher=outputs/run", "Key 'teacher' not in 'TrainerConfig'"),
        ("data.augment.elastic=1", "Key 'elastic' not in 'AugmentConfig'"),
        ("model=separable_7k", "Could not find 'model/separable_7k'"),
    ],
)
def test_unknown_key_is_refused_while_composing(tmp_path, override, message):
    result = run_cli(override, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr


def test_following_hydras_advice_to_add_the_unknown_key_with_plus_is_refused_too(tmp_path):
    result = run_cli("+trainer.epoch=3", *TINY, cwd=tmp_path)
    assert_user_error(
        result, "Error: Invalid config: trainer.epoch=3 is not a known key: did you mean trainer.epochs?"
    )
    assert list(tmp_path.iterdir()) == [], "refused before Hydra made a run dir"


@pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has a GPU"
)
@pytest.mark.parametrize("device", ["cuda", "cuda:3", "mps"])
def test_absent_cuda_says_what_is_available(tmp_path, device):
    result = run_cli(f"trainer.device={device}", "trainer.epochs=1", "data.train_subset=500", cwd=tmp_path)
    assert_user_error(result, f"trainer.device={device} is not available on this machine")
    assert "Available: cpu" in result.stderr
    assert list(tmp_path.iterdir()) == [], "refused before Hydra made a run dir"


def test_unwritable_output_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli(f"hydra.run.dir={blocker}/run", *TINY, cwd=tmp_path)
    assert_user_error(result, f"Error: the output directory {blocker}/run cannot be written")
    assert "Loading" not in result.stdout


# --- signals, resume, hard kill --------------------------------------------------------------

# One thread: tests may share the machine with other work, where torch's default threads crawl.
LONG = ["trainer.epochs=2", "data.train_subset=6000", "data.batch_size=32", "trainer.device=cpu",
        "trainer.threads=1", "scheduler=onecycle", "seed=7"]  # fmt: skip


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGUSR2, 140)])
def test_signal_stops_at_a_batch_boundary_and_saves_resumable_state(tmp_path, signum, code):
    run_dir = tmp_path / "run"
    process = start_cli(*LONG, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    wait_for_line(process, "Epoch 1/2 |")
    process.send_signal(signum)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == code, output[-3000:]
    assert f"Interrupted by {signal.Signals(signum).name}" in output
    assert f"python -m mnist_exp resume={run_dir}" in output
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["status"] == "interrupted" and len(state["history"]) == 1
    assert list(run_dir.glob("events.out.tfevents.*")), "TensorBoard flushed"


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tmp_path):
    # 375 batches an epoch: time to land mid-epoch. Augmentation and the weight average are on, so
    # their random stream and running average must survive the interruption too.
    # One memory layout for both runs: `auto` could time its way to a different one in each.
    args = [
        *LONG,
        "data.train_subset=12000",
        "data.augment=light",
        "trainer.ema_decay=0.99",
        "trainer.channels_last=false",
    ]
    straight = tmp_path / "straight"
    result = run_cli(*args, f"hydra.run.dir={straight}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    resumed = tmp_path / "resumed"
    process = start_cli(*args, f"hydra.run.dir={resumed}", cwd=tmp_path)
    wait_for_line(process, "Epoch 1/2 |")
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 130
    state = torch.load(resumed / "checkpoints" / "last.pt", weights_only=True)
    assert 0 < state["epoch_progress"]["next_batch"] < 375, "stopped mid-epoch"

    result = run_cli(f"resume={resumed}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert history_without_timing(resumed) == history_without_timing(straight)
    assert json.loads((resumed / "metrics.json").read_text())["status"] == "completed"
    assert not list(tmp_path.glob("outputs")), "resume reuses the run's own directory"


def run_python(script: str) -> subprocess.CompletedProcess:
    """A Python script in a process of its own: signals sent there reach nothing else."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_second_ctrl_c_exits_at_once(tmp_path):
    script = (
        "import os, signal, time\n"
        "from mnist_exp.rundir.signals import StopRequests\n"
        "with StopRequests() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    assert stop.requested()\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(30)\n"
    )
    started = time.monotonic()
    result = run_python(script)
    assert result.returncode == 130
    assert time.monotonic() - started < 25, "did not wait for the sleep"


def test_the_stop_notice_is_written_even_when_the_signal_lands_inside_a_write():
    """A signal handler runs between any two steps of the main thread, even inside a write to the
    console; a stream that refuses a re-entrant write, as Python's buffered writers do, stands in."""
    script = (
        "import logging, os, signal\n"
        "from mnist_exp.rundir.signals import StopRequests\n"
        "class MidWrite:\n"
        "    def write(self, _text): raise RuntimeError('reentrant call inside <_io.BufferedWriter>')\n"
        "    def flush(self): pass\n"
        "logging.basicConfig(stream=MidWrite(), level=logging.INFO)\n"
        "with StopRequests() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    assert stop.requested()\n"
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    notice = "SIGTERM received: stopping at the next batch boundary (Ctrl-C again to exit at once)"
    assert result.stderr == notice + "\n"


def test_sigusr2_goes_on_to_the_handler_it_displaced_only_when_handed_over():
    """Submitit's SIGUSR2 handler requeues a SLURM job at once; the run must save first."""
    script = (
        "import os, signal\n"
        "from mnist_exp.rundir.signals import StopRequests\n"
        "seen = []\n"
        "signal.signal(signal.SIGUSR2, lambda signum, _frame: seen.append(signum))\n"
        "with StopRequests() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGUSR2)\n"
        "    assert stop.requested() and seen == []\n"
        "stop.hand_over()\n"
        "assert seen == [signal.SIGUSR2], seen\n"
        "with StopRequests() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "stop.hand_over()\n"
        "assert seen == [signal.SIGUSR2], 'only SIGUSR2 is handed over'\n"
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr


def test_ctrl_c_before_the_training_loop_exits_130_without_a_traceback(tmp_path):
    """Here while another process holds the data cache's lock, so before the loop's own handler."""
    lock = tmp_path / "data" / "MNIST" / ".lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        process = start_cli(*TINY, f"data.root={tmp_path / 'data'}", cwd=tmp_path)
        wait_for_line(process, "waiting for another process holding")
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output[-2000:]
    assert "Error: interrupted by Ctrl-C while starting or finishing" in output
    assert "Traceback" not in output


def test_resume_refuses_a_contradicting_command_line(tmp_path):
    run_dir = tmp_path / "run"
    process = start_cli(*LONG, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    wait_for_line(process, "Epoch 1/2 |")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    result = run_cli(f"resume={run_dir}", "model=v1", cwd=tmp_path)
    assert_user_error(result, "Error: model=v1 contradicts the checkpoint being resumed")
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_into_another_directory_is_refused(tmp_path):
    """It would fork the run into a dir without its `.hydra/` and leave the original unfinished."""
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    result = run_cli(*TINY, "model=tiny_5k", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = run_dir / "checkpoints" / "last.pt"
    torch.save({**torch.load(checkpoint, weights_only=True), "status": "running"}, checkpoint)
    before = run_files_of(run_dir)

    result = run_cli(f"resume={run_dir}", f"hydra.run.dir={elsewhere}", cwd=tmp_path)
    assert_user_error(
        result, f"Error: resume={run_dir} continues that run in its own directory, {run_dir}, not in"
    )
    assert not elsewhere.exists() and run_files_of(run_dir) == before


def test_resume_of_a_missing_checkpoint_is_a_clear_error(tmp_path):
    result = run_cli(f"resume={tmp_path}/nowhere", cwd=tmp_path)
    assert_user_error(result, f"Error: resume={tmp_path}/nowhere: no checkpoint at")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"junk", "checkpoints/last.pt is not a PyTorch checkpoint (expected a file written by torch.save)"),
        (None, "checkpoints/last.pt is not an mnist-exp training checkpoint (it has no model, optimizer,"),
    ],
    ids=["corrupt", "weights-only"],
)
def test_resume_of_a_file_that_is_no_training_checkpoint_is_a_clear_error(tmp_path, content, message):
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    if content is None:
        torch.save({"weight": torch.zeros(2)}, checkpoint)  # a tensor file, as torch.save writes
    else:
        checkpoint.write_bytes(content)
    before = checkpoint.read_bytes()
    result = run_cli(f"resume={tmp_path / 'run'}", cwd=tmp_path)
    assert_user_error(result, f"Error: resume={tmp_path / 'run'}: {checkpoint.parent}/last.pt")
    assert message in result.stderr
    assert checkpoint.read_bytes() == before


def test_sigkill_never_leaves_half_written_files_and_resume_finishes(tmp_path):
    run_dir = tmp_path / "run"
    args = ["trainer.epochs=3", "data.train_subset=2000", "trainer.device=cpu", "trainer.threads=1"]
    args.append(f"hydra.run.dir={run_dir}")
    process = start_cli(*args, cwd=tmp_path)
    wait_for_line(process, "Epoch 1/3 |")
    time.sleep(0.3)  # somewhere inside epoch 2 or its checkpoint write
    process.kill()
    process.wait()
    metrics = json.loads((run_dir / "metrics.json").read_text())  # parses: complete
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)  # loads: complete
    assert len(state["history"]) >= 1 and metrics["status"] == "running"

    result = run_cli(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    final = json.loads((run_dir / "metrics.json").read_text())
    assert [r["epoch"] for r in final["history"]] == [1, 2, 3]
    assert not list(run_dir.rglob("*.tmp"))


CHECKPOINT_WRITE_FAILED = (
    "Error: cannot write {run_dir}/checkpoints/last.pt (File too large); any earlier copy of it is left "
    "whole. Free disk space or make its directory writable, then run again"
)
TENSORBOARD_WRITE_FAILED = (
    "Error: cannot write into {run_dir} (File too large). Free disk space or make it writable; "
    "a run that saved checkpoints/last.pt then continues with: python -m mnist_exp resume={run_dir}"
)


@pytest.mark.parametrize(
    ("max_file_bytes", "expected"),
    [(40_000, CHECKPOINT_WRITE_FAILED), (10_000, TENSORBOARD_WRITE_FAILED)],
    ids=["checkpoint-about-80kB", "tensorboard-events-from-its-thread"],
)
def test_a_full_disk_stops_the_run_with_one_line_naming_the_fix(tmp_path, max_file_bytes, expected):
    """RLIMIT_FSIZE fails a write past the limit (EFBIG), as a full disk fails every write (ENOSPC)."""
    run_dir = tmp_path / "run"

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    result = subprocess.run(
        [sys.executable, "-m", "mnist_exp", *TINY, "model=tiny_5k", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=small_files,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [expected.format(run_dir=run_dir)]
    assert not (run_dir / "checkpoints" / "last.pt").exists() and not list(run_dir.rglob("*.tmp"))


def test_a_full_disk_at_the_start_is_named_before_hydra_writes(tmp_path):
    """A full disk still takes the empty files a run starts with, so Hydra's config writes failed
    with a traceback; a limit under one block fails the start's probe as a full disk does."""
    run_dir = tmp_path / "run"

    def no_room_for_a_block() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    result = subprocess.run(
        [sys.executable, "-m", "mnist_exp", *TINY, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=no_room_for_a_block,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f"Error: the output directory {run_dir} cannot be written (File too large). "
        "Free disk space there, or set hydra.run.dir=/a/writable/path."
    ]
    assert list(run_dir.iterdir()) == []


@contextmanager
def locked_as_if_training(run_dir: Path, pid: int):
    """Hold the run dir's lock, with `pid` in it, as a training process does."""
    with open(run_dir / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.truncate(0)
        held.write(f"{pid}\n")
        held.flush()
        yield


def run_files_of(run_dir: Path, *besides: str) -> dict[str, bytes]:
    """Every file's bytes but `.lock`'s, where each process that checks the lock leaves its pid,
    and but those named `besides`."""
    skipped = (".lock", *besides)
    files = (path for path in run_dir.rglob("*") if path.is_file() and path.name not in skipped)
    return {str(path.relative_to(run_dir)): path.read_bytes() for path in files}


def test_resume_while_the_run_still_trains_is_refused_and_touches_nothing(tmp_path):
    """The test holds the run dir's lock, as the run's own process does while it trains."""
    run_dir = tmp_path / "run"
    result = run_cli(*TINY, "model=tiny_5k", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = run_dir / "checkpoints" / "last.pt"
    torch.save({**torch.load(checkpoint, weights_only=True), "status": "running"}, checkpoint)

    before = run_files_of(run_dir, "train.log")  # train.log gets the error

    with locked_as_if_training(run_dir, pid=4242):
        result = run_cli(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: another process (pid 4242) is training in {run_dir}. Wait for it to finish, or stop it "
        f"(kill -INT 4242) and resume it with: python -m mnist_exp resume={run_dir}"
    ]
    after = run_files_of(run_dir, "train.log")
    assert after == before, "no checkpoint, metrics or TensorBoard file written or removed"


def test_a_new_run_pointed_at_a_run_dir_in_use_is_refused_before_hydra_writes_there(tmp_path):
    run_dir = tmp_path / "busy"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("the running process's config\n")
    with locked_as_if_training(run_dir, pid=4242):
        result = run_cli(*TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: another process (pid 4242) is training in {run_dir}.")
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "the running process's config\n"


@pytest.mark.parametrize("status", ["completed", "interrupted"])
def test_a_new_run_pointed_at_an_earlier_runs_dir_is_refused_before_hydra_writes_there(tmp_path, status):
    run_dir = tmp_path / "earlier"
    result = run_cli(*TINY, "model=tiny_5k", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics_file = run_dir / "metrics.json"
    metrics = metrics_file.read_text()
    metrics_file.write_text(metrics.replace('"status": "completed"', f'"status": "{status}"'))
    before = run_files_of(run_dir)

    result = run_cli(*TINY, "model=v3", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert_user_error(result, f"Error: {run_dir} already holds a run ({status}); a new run there would")
    resume_hint = f"Continue it with: python -m mnist_exp resume={run_dir}."
    assert (resume_hint in result.stderr) == (status != "completed")
    assert run_files_of(run_dir) == before, "no file written, .hydra/ included"


def test_a_sweep_pointed_at_an_earlier_sweeps_dir_is_refused_before_it_starts(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_cli("-m", "seed=1", *TINY, "model=tiny_5k", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    before = run_files_of(sweep_dir)

    [first_job] = sweep_dir.glob("0_*")  # named by the job's number and overrides
    first_job_before = run_files_of(first_job)

    result = run_cli("-m", "seed=3", *TINY, "model=tiny_5k", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    earlier = f"already holds an earlier sweep's jobs ({first_job}: completed)"
    assert_user_error(result, f"Error: hydra.sweep.dir={sweep_dir} {earlier}")
    assert run_files_of(sweep_dir) == before
    # Jobs named by their overrides alone have dirs of their own: adding to such a sweep is allowed.
    by_name = ["hydra.sweep.subdir=${hydra.job.override_dirname}", f"hydra.sweep.dir={sweep_dir}"]
    result = run_cli("-m", "seed=3", *TINY, "model=tiny_5k", *by_name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_files_of(first_job) == first_job_before


def test_a_sweep_job_started_again_goes_on_from_its_earlier_run_in_its_dir(tmp_path):
    """A requeued SLURM task, or a sweep run again with jobs named by their overrides, runs a job
    in the dir it ran in before: it used to train from scratch over what was there."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *LONG, "model=tiny_5k", "hydra.sweep.subdir=${hydra.job.override_dirname}",
            f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    process = start_cli(*args, cwd=tmp_path)
    wait_for_line(process, "Epoch 1/2 |")
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output[-3000:]
    [job_dir] = [path.parent for path in sweep_dir.glob("*/metrics.json")]
    # Its dir's name holds '=' and ',': the printed command quotes it, for Hydra and the shell.
    [resume] = re.findall(r"Resume with: python -m mnist_exp (.*)$", output, re.MULTILINE)
    first_epoch = history_without_timing(job_dir)
    (job_dir / "error.txt").write_text("OutputDirError: as a sweep writes for a job that failed\n")

    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Continuing the unfinished run (interrupted)" in (job_dir / "train.log").read_text()
    assert json.loads((job_dir / "metrics.json").read_text())["status"] == "completed"
    assert history_without_timing(job_dir)[:1] == first_epoch and len(history_without_timing(job_dir)) == 2
    assert not (job_dir / "error.txt").exists(), "the stopped attempt's error is not the run's"

    before = run_files_of(job_dir, "train.log")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "holds this job's completed run: its result stands" in (job_dir / "train.log").read_text()
    assert run_files_of(job_dir, "train.log") == before
    result = run_cli(*shlex.split(resume), cwd=tmp_path)
    assert_user_error(result, f"Error: resume={job_dir}: that run already completed; there is nothing to")


def test_a_stopped_sweep_job_resumes_with_the_command_it_printed(tmp_path):
    """A job's dir is named by its number and swept override, `0_lr=0.001`: the printed command
    quotes the '=' for Hydra and the shell, and pasted as printed it finishes the run in that dir."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *LONG, "model=tiny_5k", "optimizer.lr=0.001,0.002", f"hydra.sweep.dir={sweep_dir}"]
    process = start_cli(*args, cwd=tmp_path)
    wait_for_line(process, "Epoch 1/2 |")
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output[-3000:]
    job_dir = sweep_dir / "0_lr=0.001"
    [resume] = re.findall(r"Resume with: python -m mnist_exp (.*)$", output, re.MULTILINE)
    assert resume == f"\"resume='{job_dir}'\""

    result = run_cli(*shlex.split(resume), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((job_dir / "metrics.json").read_text())["status"] == "completed"
    assert len(history_without_timing(job_dir)) == 2
    assert [path.name for path in sweep_dir.iterdir() if path.is_dir()] == [job_dir.name], "no other dir"


def test_resume_after_the_last_epoch_was_recorded_finishes_the_run(tmp_path):
    """A kill between the last epoch's checkpoint and the run's completion: resuming trains
    nothing more, marks the run completed and writes the test diagnostics for its final weights."""
    run_dir = tmp_path / "run"
    result = run_cli(*TINY, "model=tiny_5k", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = run_dir / "checkpoints" / "last.pt"
    state = torch.load(checkpoint, weights_only=True)
    torch.save({**state, "status": "running"}, checkpoint)
    (run_dir / "confusion.json").unlink()
    history = history_without_timing(run_dir)

    result = run_cli(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and history_without_timing(run_dir) == history
    counts = json.loads((run_dir / "confusion.json").read_text())["counts"]
    assert sum(counts[i][i] for i in range(10)) == round(metrics["final_test_acc"] * 100)


# --- a fault nobody foresaw ------------------------------------------------------------------

FAILING_MID_EPOCH = """
import sys
import mnist_exp.engine.loop as loop

real_step, steps = loop.optimizer_step, []

def step_failing_at_the_tenth(*args):
    steps.append(1)
    if len(steps) == 10:
        raise RuntimeError("injected fault")
    return real_step(*args)

loop.optimizer_step = step_failing_at_the_tenth
from mnist_exp.train import cli

sys.argv[0] = "mnist_exp"
cli()
"""


def test_an_unforeseen_exception_mid_epoch_leaves_the_run_failed_with_its_reason(tmp_path):
    """Eight steps an epoch: the fault comes in epoch 2. metrics.json says `failed` and why, keeps
    epoch 1, and TensorBoard's file holds the batch losses logged just before the fault (written
    only when the writer is flushed). The run then resumes from epoch 1's checkpoint."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    args = ["trainer.epochs=2", "data.train_subset=512", "data.batch_size=64", "trainer.log_every_n_steps=1"]
    result = subprocess.run(
        [sys.executable, "-c", FAILING_MID_EPOCH, *args, *TINY[2:], f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1 and "RuntimeError: injected fault" in result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["status"], metrics["error"]) == ("failed", "RuntimeError: injected fault")
    assert [record["epoch"] for record in metrics["history"]] == [1]
    events = EventAccumulator(str(run_dir)).Reload()
    assert [event.step for event in events.Scalars("loss/train_batch")] == list(range(1, 10))

    resumed = run_cli(f"resume={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    failed, completed = json.loads((run_dir / "provenance.json").read_text())["attempts"]
    assert (failed["ended_as"], completed["ended_as"]) == ("failed", "completed")
    assert failed["command"].endswith(f"hydra.run.dir={run_dir}") and "resume=" in completed["command"]
    assert (
        completed["torch"] == torch.__version__ and completed["device"] == "cpu" and completed["device_name"]
    )
    assert failed["started_utc"] <= failed["ended_utc"] <= completed["started_utc"] <= completed["ended_utc"]


# --- divergence ------------------------------------------------------------------------------


def test_divergence_stops_with_epoch_step_and_lr(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("optimizer=sgd", "optimizer.lr=1e30", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert_user_error(result, "Error: Training diverged: the loss is nan at epoch 1, step", code=3)
    assert "(lr 1e+30)" in result.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "diverged"


def test_a_diverging_job_does_not_stop_the_rest_of_a_sweep(tmp_path):
    """Hydra then ends the sweep with the failed job's message, not its traceback."""
    result = run_cli("-m", "optimizer=sgd", "optimizer.lr=1e30,0.01", *TINY, cwd=tmp_path)
    assert result.returncode == 1
    statuses = sorted(json.loads(p.read_text())["status"] for p in tmp_path.rglob("metrics.json"))
    assert statuses == ["completed", "diverged"]
    assert "Traceback" not in result.stderr
    ending = result.stderr.strip().splitlines()[-4:]
    assert ending[0].startswith("Error executing job with overrides: ['optimizer=sgd', 'optimizer.lr=1e+30'")
    assert ending[1].startswith("Training diverged: the loss is")
