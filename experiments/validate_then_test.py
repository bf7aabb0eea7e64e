"""Choose a recipe on validation, then measure it on test: the runs behind a results-table row.

For each group of a plan, every candidate (overrides on top of the group's base) trains with
`data.val_size` images held out, once per pilot seed. The candidate with the best mean final
validation accuracy (the first listed wins a tie, so list the incumbent first) then trains on the
full training set once per seed, and only those runs' test accuracies are the group's result; a
group without candidates goes straight to its seeds. Every job is its own `python -m mnist_exp`
process, up to --workers at once, earlier groups first, and pilots seed by seed (every candidate's
first pilot seed before any candidate's second), so a deadline cuts short no candidate's pilots
more than another's. At --deadline the running jobs get SIGTERM (they save a checkpoint and can be
resumed) and whatever finished is reported.

    python experiments/validate_then_test.py experiments/plans/gpu_2026-11-26.json \\
        --out outputs/results/gpu --workers 12 --deadline 300

The plan is JSON: {"common": [overrides for every job], "val_size": 10000, "pilot_seeds": [0],
"groups": [{"name": "v3_plus", "base": ["experiment=v3_plus"], "seeds": [1, 2, 3],
"candidates": {"R2": [], "strong": ["data/augment=strong"]}}]}. Run dirs: OUT/pilots/GROUP/LABEL_sN
and OUT/GROUP/seedN; a summary goes to OUT/selection.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mnist_exp.rundir.metrics import FINISHED


@dataclass
class Job:
    group: str
    label: str  # candidate label for a pilot, "seedN" for a measured run
    overrides: list[str]
    run_dir: Path
    priority: int
    process: subprocess.Popen | None = field(default=None, repr=False)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mnist_exp", *self.overrides, f"hydra.run.dir={self.run_dir}"]

    def result(self) -> dict:
        metrics = self.run_dir / "metrics.json"
        return json.loads(metrics.read_text()) if metrics.exists() else {"status": "no metrics"}


def pilot_jobs(plan: dict, index: int, out: Path) -> list[Job]:
    group = plan["groups"][index]
    return [
        Job(group["name"], label, [*group["base"], *overrides, *plan.get("common", []), f"seed={seed}",
                                   f"data.val_size={plan.get('val_size', 10000)}"],
            out / "pilots" / group["name"] / f"{label}_s{seed}", index)
        for seed in plan.get("pilot_seeds", [0])
        for label, overrides in group.get("candidates", {}).items()
    ]  # fmt: skip


def measured_jobs(plan: dict, index: int, out: Path, winner: list[str]) -> list[Job]:
    group = plan["groups"][index]
    return [
        Job(group["name"], f"seed{seed}", [*group["base"], *winner, *plan.get("common", []), f"seed={seed}"],
            out / group["name"] / f"seed{seed}", index)
        for seed in group["seeds"]
    ]  # fmt: skip


def choose(candidates: dict[str, list[str]], pilots: list[Job]) -> tuple[str | None, dict[str, float]]:
    """The label with the highest mean final validation accuracy over its finished pilots
    (completed, or stopped early)."""
    scores = {}
    for label in candidates:
        accs = [r["final_val_acc"] for j in pilots if j.label == label
                if (r := j.result()).get("status") in FINISHED]  # fmt: skip
        if accs:
            scores[label] = statistics.mean(accs)
    best = max(scores.values(), default=None)
    winner = next((label for label, score in scores.items() if score == best), None)
    return winner, scores


def run_plan(plan: dict, out: Path, workers: int, deadline_s: float) -> dict:
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    queue: list[Job] = []
    waiting: dict[int, list[Job]] = {}  # group index -> its pilots, until all have ended
    for index in range(len(plan["groups"])):
        pilots = pilot_jobs(plan, index, out)
        if pilots:
            waiting[index] = pilots
            queue += pilots
        else:
            queue += measured_jobs(plan, index, out, [])
    running: list[Job] = []
    summary = {"groups": {g["name"]: {"scores": {}, "winner": None} for g in plan["groups"]}}
    while (queue or running) and time.monotonic() - started < deadline_s:
        for job in [j for j in running if j.process.poll() is not None]:
            running.remove(job)
            print(f"[{time.monotonic() - started:6.0f} s] ended {job.group}/{job.label}: "
                  f"{job.result().get('status')}", flush=True)  # fmt: skip
        for index, pilots in list(waiting.items()):
            if all(p.process is not None and p.process.poll() is not None for p in pilots):
                del waiting[index]
                group = plan["groups"][index]
                winner, scores = choose(group["candidates"], pilots)
                summary["groups"][group["name"]].update(scores=scores, winner=winner)
                print(f"{group['name']}: validation {scores} -> {winner}", flush=True)
                if winner is not None:
                    queue += measured_jobs(plan, index, out, group["candidates"][winner])
        queue.sort(key=lambda j: j.priority)
        while queue and len(running) < workers:
            job = queue.pop(0)
            job.run_dir.parent.mkdir(parents=True, exist_ok=True)
            with open(job.run_dir.parent / f"{job.run_dir.name}.log", "w") as log:
                job.process = subprocess.Popen(job.command(), stdout=log, stderr=subprocess.STDOUT)
            running.append(job)
        time.sleep(1)
    stop(running)
    summary["unstarted"] = [f"{j.group}/{j.label}" for j in queue]
    summary["wall_s"] = round(time.monotonic() - started, 1)
    for group in plan["groups"]:
        runs = sorted((out / group["name"]).glob("seed*/metrics.json"))
        summary["groups"][group["name"]]["runs"] = {
            path.parent.name: {k: json.loads(path.read_text()).get(k) for k in ("status", "final_test_acc")}
            for path in runs
        }
    (out / "selection.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def stop(running: list[Job]) -> None:
    """SIGTERM lets a run save a resumable checkpoint; a run still going 30 s later is killed."""
    for job in running:
        job.process.send_signal(signal.SIGTERM)
    for job in running:
        try:
            job.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            job.process.kill()


def plan_problem(groups: list[dict]) -> str | None:
    """What makes these groups unrunnable, checked before any job starts; None if nothing."""
    required = ("name", "base", "seeds")
    missing = [f"group {i}: {key}" for i, g in enumerate(groups) for key in required if key not in g]
    names = [g.get("name") for g in groups]
    if missing:
        return f"missing {missing}"
    if len(set(names)) != len(names):
        return f"group names repeat: {names}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("plan", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="absolute paths are safest")
    parser.add_argument("--workers", type=int, default=1, help="jobs at once")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds; then stop")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: at least 1 job must run at a time")
    try:
        plan = json.loads(args.plan.read_text())
        problem = plan_problem(plan["groups"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        parser.error(f"{args.plan}: not a readable plan ({error!r}); see the format above")
    if problem:
        parser.error(f"{args.plan}: {problem}")
    summary = run_plan(plan, args.out.resolve(), args.workers, args.deadline)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
