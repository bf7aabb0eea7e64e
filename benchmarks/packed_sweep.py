"""One seed sweep, four ways: the wall time of a 4-seed V3 sweep under Hydra's basic launcher (one
job after another in one process), `parallel` (2 worker processes x 1 thread), `packed` (the
seeds trained as one packed network) and `packed-2w` (`hydra.launcher.workers=2`: two packed
groups at once, each in a worker process with half the seeds and half the cores), each a fresh
`python -m mnist_exp -m ...` as a user types it. Mode `one` is a single run (seed 1) of the same
recipe, the yardstick of the GPU target: the packed sweep's wall time over one run's.

Modes run interleaved (basic, parallel, packed, packed-2w, then again) so that a machine that
slows down or speeds up weighs on all of them alike; the median wall time per mode, the ratios,
each job's final test accuracy (by seed) and the memory layout each mode chose are printed and
written as JSON.

    python benchmarks/packed_sweep.py                                  # 4 seeds, V3, 3 epochs, 1 round
    python benchmarks/packed_sweep.py --rounds 2 --json outputs/packed_sweep.json
    python benchmarks/packed_sweep.py --modes parallel packed-2w -- trainer.precision=bf16
    python benchmarks/packed_sweep.py --device cuda --seeds 8 --epochs 20 --modes one packed
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from mnist_exp.monitor.provenance import cpu_model

MODES = {
    "one": [],
    "basic": [],
    "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "trainer.threads=1"],
    "packed": ["hydra/launcher=packed"],
    "packed-2w": ["hydra/launcher=packed", "hydra.launcher.workers=2"],
}
PACKED = {mode for mode in MODES if mode.startswith("packed")}


def sweep(mode: str, seeds: int, epochs: int, extra: list[str]) -> dict:
    """One fresh sweep in a throwaway directory: its wall time, jobs' accuracies and layouts."""
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        done = subprocess.run(
            command(mode, 1 if mode == "one" else seeds, epochs, extra),
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{mode} sweep failed ({done.returncode}):\n{done.stderr[-3000:]}")
        sweep_dir = Path(cwd) / "sweep"
        by_seed = {}
        with open(sweep_dir / "summary.csv") as handle:
            for row in csv.DictReader(handle):
                by_seed[int(re.search(r"\bseed=(\d+)", row["overrides"])[1])] = float(row["final_test_acc"])
        accuracies = [by_seed[seed] for seed in sorted(by_seed)]
        return {"wall_s": round(wall, 1), "final_test_acc": accuracies, "layouts": layouts(sweep_dir)}


def command(mode: str, seeds: int, epochs: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "mnist_exp", "-m", *MODES[mode], "experiment=seed_v3",
        f"trainer.epochs={epochs}", "hydra.sweep.dir=sweep",
        f"seed={','.join(str(seed) for seed in range(1, seeds + 1))}", *extra,
    ]  # fmt: skip


def layouts(sweep_dir: Path) -> list:
    """The memory layout each job trained in, as its provenance.json records it."""
    found = []
    for provenance in sorted(sweep_dir.glob("*/provenance.json")):
        attempt = json.loads(provenance.read_text())["attempts"][-1]
        found.append(attempt.get("memory_layout"))
    return found


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=[m for m in MODES if m != "one"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("overrides", nargs="*", help="more overrides for every sweep (after --)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device cuda: torch {torch.__version__} sees no CUDA GPU here; leave --device out")

    runs: dict[str, list[dict]] = {mode: [] for mode in args.modes}
    for round_number in range(1, args.rounds + 1):
        for mode in args.modes:
            result = sweep(mode, args.seeds, args.epochs, [f"trainer.device={args.device}", *args.overrides])
            runs[mode].append(result)
            accuracy = result["final_test_acc"]
            print(
                f"round {round_number} {mode:10s} {result['wall_s']:7.1f} s  final test % by seed {accuracy}"
            )
    medians = {mode: statistics.median(r["wall_s"] for r in results) for mode, results in runs.items()}
    report = {
        "cpu": cpu_model(),
        "cores": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "sweep": f"experiment=seed_v3, {args.seeds} seeds, {args.epochs} epochs, {' '.join(args.overrides)}",
        "runs": runs,
        "median_wall_s": medians,
    }
    others = {mode: wall for mode, wall in medians.items() if mode not in PACKED | {"one"}}
    for packed in PACKED & medians.keys():
        if others:
            best = min(others, key=others.get)
            report.setdefault("speed_up_over_the_best_unpacked", {})[packed] = {
                best: round(others[best] / medians[packed], 2)
            }
            report.setdefault("speed_up_over_each", {})[packed] = {
                mode: round(wall / medians[packed], 2) for mode, wall in others.items()
            }
        if "one" in medians:
            report.setdefault("wall_over_one_run", {})[packed] = round(medians[packed] / medians["one"], 2)
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
