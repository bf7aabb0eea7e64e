"""How often `trainer.channels_last=auto` picks the slower memory layout, quiet or under load.

Each trial takes the start-up timing's rounds (`mnist_exp.accel.layout.layout_rounds`: warm and
timed steps of a fresh scratch copy of the run's network in each layout, interleaved) and scores
them two ways: each layout's median round and its fastest round. With `--load`, a child process
meanwhile burns every core in random bursts (0.2-0.8 s, 0.2-1.5 s apart), as other work on a
shared machine does. The layout that wins in a quiet steady-state measurement first is the right
answer; the output counts the trials each rule got wrong.

    python benchmarks/layout_choice.py --trials 150 --load
    python benchmarks/layout_choice.py --trials 20 model=v1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

import mnist_exp.train  # noqa: F401  (registers the config schemas)
from mnist_exp.accel.layout import layout_rounds
from mnist_exp.engine.probe import probe_step
from mnist_exp.monitor.provenance import cpu_model

BURNER = """
import multiprocessing, random, sys, time

def burn(seconds):
    end = time.time() + seconds
    while time.time() < end:
        pass

random.seed(0)
while True:
    time.sleep(random.uniform(0.2, 1.5))
    seconds = random.uniform(0.2, 0.8)
    burners = [multiprocessing.Process(target=burn, args=(seconds,)) for _ in range(int(sys.argv[1]))]
    for process in burners:
        process.start()
    for process in burners:
        process.join()
"""


def faster(samples: dict[str, list[float]], score) -> str:
    scores = {name: score(times) for name, times in samples.items()}
    return min(scores, key=scores.get)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--load", action="store_true", help="burn every core in random bursts meanwhile")
    parser.add_argument("overrides", nargs="*", help="config overrides (default: the default run's)")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    with initialize_config_module("mnist_exp.conf", version_base="1.3"):
        cfg = compose("config", overrides=args.overrides)
    cpu = torch.device("cpu")
    make_step = probe_step(cfg, cpu, lambda: instantiate(cfg.model))
    right = faster(layout_rounds(cpu, make_step, rounds=6, timed_steps=20), statistics.median)
    burner = subprocess.Popen([sys.executable, "-c", BURNER, str(os.cpu_count())]) if args.load else None
    wrong = {"median round": 0, "fastest round": 0}
    try:
        for _ in range(args.trials):
            samples = layout_rounds(cpu, make_step)  # a fresh scratch network, as each run builds
            wrong["median round"] += faster(samples, statistics.median) != right
            wrong["fastest round"] += faster(samples, min) != right
    finally:
        if burner is not None:
            burner.kill()
    setting = f"{torch.get_num_threads()} threads, {args.overrides or 'defaults'}"
    print(
        f"{cpu_model()}, torch {torch.__version__}, {setting}, "
        f"{'under bursts of load' if args.load else 'quiet'}: {right} is faster in steady state; "
        f"of {args.trials} timings, picked the slower layout: {wrong}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
