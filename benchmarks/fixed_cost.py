"""Where a run's time goes when it hardly trains: the fixed cost every run pays, by phase.

A one-step run (`trainer.epochs=1 data.train_subset=128` on the CPU) is started as a fresh
process, as a user starts one: first several times plainly, for the wall time, then once under
cProfile, whose cumulative time per phase (start-up and imports, config checks, data load, model
and trainer, TensorBoard's start, training, evaluation, the end-of-run diagnostics) says where
that wall time goes. cProfile slows Python code, so the phases add up to more than the plain wall
time: read them as shares.

    python benchmarks/fixed_cost.py                       # 5 plain runs, 1 profiled
    python benchmarks/fixed_cost.py --runs 3 --json outputs/fixed_cost.json -- model=v1
"""

from __future__ import annotations

import argparse
import json
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnist_exp.monitor.provenance import cpu_model  # the CPU's model name, as a run records it

ONE_STEP = ["trainer.epochs=1", "data.train_subset=128", "trainer.device=cpu"]
# Phase -> (file suffix, function name) whose cumulative time it is, in the order a run meets them.
PHASES = {
    "config checks (before the run dir)": ("mnist_exp/cli/preflight.py", "on_run_start"),
    "data onto the device": ("mnist_exp/data/tensors.py", "load_device_dataset"),
    "memory layout (timed only for runs long enough)": ("mnist_exp/accel/layout.py", "choose_layout"),
    "model, optimizer, schedule": ("mnist_exp/engine/state.py", "fresh"),
    "trainer (speed options, views)": ("mnist_exp/engine/trainer.py", "__init__"),
    "TensorBoard start (graph, config, digits)": ("mnist_exp/monitor/recorder.py", "start"),
    "training": ("mnist_exp/engine/trainer.py", "train_epoch"),
    "evaluation": ("mnist_exp/engine/trainer.py", "evaluate"),
    "end of run (checkpoint, diagnostics, figures)": ("mnist_exp/monitor/recorder.py", "finished"),
    "closing the event file": ("mnist_exp/monitor/recorder.py", "__exit__"),
    "sweep summary and callbacks after the run": ("hydra/_internal/callbacks.py", "on_run_end"),
}


def run(args: list[str], profile: Path | None = None) -> float:
    """Wall seconds of one fresh `python -m mnist_exp ARGS`, in a throwaway directory."""
    with tempfile.TemporaryDirectory() as cwd:
        prefix = ["-m", "cProfile", "-o", str(profile)] if profile else []
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, *prefix, "-m", "mnist_exp", *args, "hydra.run.dir=run"],
            cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return time.perf_counter() - started


def cumulative(stats: pstats.Stats, file_suffix: str, function: str) -> float:
    """The cumulative seconds of every function named `function` in a file ending `file_suffix`."""
    return sum(
        entry[3]
        for (file, _line, name), entry in stats.stats.items()
        if name == function and file.endswith(file_suffix)
    )


def phases(profile: Path) -> dict[str, float]:
    stats = pstats.Stats(str(profile))
    found = {phase: cumulative(stats, *where) for phase, where in PHASES.items()}
    main = cumulative(stats, "mnist_exp/train.py", "main")
    whole = max(entry[3] for entry in stats.stats.values())
    callbacks = ("config checks (before the run dir)", "sweep summary and callbacks after the run")
    around_main = sum(found[phase] for phase in callbacks)  # Hydra calls them outside the task
    found["start-up: interpreter, imports, Hydra's composition"] = whole - main - around_main
    found["whole process (profiled)"] = whole
    return found


def torch_version() -> str:
    return subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="plain runs for the wall time (default 5)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="more overrides for the run, after --")
    options = parser.parse_args()
    args = [*ONE_STEP, *options.overrides]

    walls = [run(args) for _ in range(options.runs)]
    with tempfile.TemporaryDirectory() as scratch:
        profile = Path(scratch) / "run.prof"
        run(args, profile)
        breakdown = phases(profile)

    machine = {"cpu": cpu_model(), "torch": torch_version(), "date": time.strftime("%Y-%m-%d")}
    print(f"python -m mnist_exp {' '.join(args)}")
    print(f"on {machine['cpu']}, torch {machine['torch']}, {machine['date']}")
    print(f"wall time, {options.runs} fresh runs: median {statistics.median(walls):.2f} s "
          f"(min {min(walls):.2f}, max {max(walls):.2f})")  # fmt: skip
    print("under cProfile, cumulative seconds by phase:")
    for phase, seconds in breakdown.items():
        print(f"  {seconds:6.2f}  {phase}")
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {**machine, "args": args, "wall_s": walls, "profiled_s": breakdown}
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
