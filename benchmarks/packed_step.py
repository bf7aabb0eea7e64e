"""Where a training step's time goes on a CPU, one network against K copies packed as one.

Packing pays only for the part of a step that does not grow with the images: per-op overhead,
thin elementwise kernels, the optimizer. This splits a warm step, per image, into the
convolutions (forward and backward, profiled) and everything else, for one network and for K
packed copies, in fp32 and bf16 autocast, channels_last, the variants interleaved round by
round in one process. With one thread (the default) it is the shape of one `parallel` worker or
one `hydra.launcher.workers` process; if the convolutions cost the same per image packed or not,
the rest bounds what packing can gain on that CPU.

    python benchmarks/packed_step.py                      # V3 of experiment=seed_v3, 4 copies
    python benchmarks/packed_step.py --copies 2 --threads 2 --json outputs/packed_step.json
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from torch.profiler import ProfilerActivity, profile

import mnist_exp.train  # noqa: F401  (registers the config schemas)
from mnist_exp.accel.precision import cpu_has_native_bf16
from mnist_exp.engine.probe import probe_step
from mnist_exp.monitor.provenance import cpu_model
from mnist_exp.packing.training import scratch_network

CPU = torch.device("cpu")
CONVOLUTION_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=4, help="copies in the packed network (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps a variant and round (default 20)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", default=["experiment=seed_v3"], help="config overrides")
    args = parser.parse_args(argv)
    if args.copies < 1 or args.threads < 1 or args.rounds < 1 or args.steps < 1:
        parser.error("--copies, --threads, --rounds and --steps must each be at least 1")
    return args


def step_function(cfg, copies: int, precision: str):
    """One warm training step of `copies` packed networks (0: one network, unpacked), channels_last,
    as the start-up layout timing takes it (`engine.probe.probe_step`: the config's batch size per
    copy, random data); returns it and its images per step."""
    cfg = copy.deepcopy(cfg)
    cfg.trainer.precision = precision
    if copies == 0:
        make = probe_step(cfg, CPU, lambda: instantiate(cfg.model))
    else:
        make = probe_step(cfg, CPU, lambda: scratch_network(cfg, copies, CPU), copies=copies)
    network, step = make()
    network.to(memory_format=torch.channels_last).train()
    return functools.partial(step, torch.channels_last), cfg.data.batch_size * max(copies, 1)


def measure(step, images: int, steps: int) -> dict[str, float]:
    """Microseconds per image: the whole step timed plainly, then its convolutions' share profiled."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - start) / steps / images * 1e6
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        for _ in range(steps):
            step()
    self_times = {event.key: event.self_cpu_time_total for event in profiled.key_averages()}
    convolutions = sum(self_times.get(op, 0.0) for op in CONVOLUTION_OPS) / sum(self_times.values())
    return {"step_us": wall, "convolution_us": wall * convolutions, "rest_us": wall * (1 - convolutions)}


def variant_name(copies: int, precision: str) -> str:
    return f"{'1 network' if copies == 0 else f'{copies} packed'}, {precision}"


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def report(args: argparse.Namespace, results: dict[str, dict[str, float]]) -> str:
    header = (
        f"{cpu_model()}, native bf16: {cpu_has_native_bf16()}, "
        f"torch {torch.__version__}, {args.threads} thread(s), {args.overrides}, "
        f"median of {args.rounds} rounds of {args.steps} steps"
    )
    lines = [header, f"{'variant':20s} {'step':>9s} {'convolutions':>13s} {'the rest':>9s}  (us per image)"]
    for name, r in results.items():
        lines.append(f"{name:20s} {r['step_us']:9.1f} {r['convolution_us']:13.1f} {r['rest_us']:9.1f}")
    for precision in ("fp32", "bf16"):
        alone, packed = results[variant_name(0, precision)], results[variant_name(args.copies, precision)]
        gain, bound = alone["step_us"] / packed["step_us"], alone["step_us"] / packed["convolution_us"]
        lines.append(
            f"{precision}: packed {gain:.2f}x the images/s of one network; "
            f"with no time outside its convolutions it could reach {bound:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with initialize_config_module("mnist_exp.conf", version_base="1.3"):
        cfg = compose("config", overrides=args.overrides)
    variants = {
        variant_name(copies, precision): step_function(cfg, copies, precision)
        for precision in ("fp32", "bf16")
        for copies in (0, args.copies)
    }
    for step, _ in variants.values():
        for _ in range(5):
            step()
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (step, images) in variants.items():
            samples[name].append(measure(step, images, args.steps))
    results = {name: medians(runs) for name, runs in samples.items()}
    print(report(args, results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        written = {"cpu": cpu_model(), "args": vars(args) | {"json": str(args.json)}, "results": results}
        args.json.write_text(json.dumps(written, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
