"""Training and evaluation throughput: the seed's pipeline vs mnist-exp's default and fastest paths.

One process, the variants interleaved pass by pass so that machine noise hits them alike; each
figure is the median of several warm timed passes, in images per second. Then, optionally, the
end-to-end wall time of a short full run (start-up, data load, epochs, evaluation) of the seed
pipeline and of `python -m mnist_exp`, each as a fresh subprocess.

    python benchmarks/throughput.py                          # V1, V2, V3 on the CPU
    python benchmarks/throughput.py --models v3 --e2e-epochs 2 --json outputs/bench.json
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import subprocess
import sys
import time
from itertools import cycle
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from seed_pipeline import SEED_TEST_BATCH, seed_config, seed_loaders, seed_model_and_optimizer, train_batch  # noqa: E402

from mnist_exp.accel.graph_step import GraphedStep  # noqa: E402
from mnist_exp.accel.precision import autocast, cpu_has_native_bf16, memory_format, speed_up  # noqa: E402
from mnist_exp.data.tensors import load_device_dataset  # noqa: E402
from mnist_exp.engine.loop import (  # noqa: E402
    EpochProgress,
    cross_entropy,
    evaluate,
    optimizer_step,
    train_epoch,
)
from mnist_exp.engine.optim import build_optimizer  # noqa: E402

BATCH = 128


class SeedPipeline:
    """(a) DataLoader over PIL images with per-sample transforms, as the seed's notebooks did."""

    def __init__(self, model_name: str, device: torch.device):
        self.device = device
        self.train_loader, self.test_loader = seed_loaders(model_name)
        self.batches = cycle(self.train_loader)  # cycle() keeps one pass of batches: fine for timing
        self.model, self.optimizer, _ = seed_model_and_optimizer(model_name)
        self.model.to(device)

    def train(self, batches: int) -> None:
        for _ in range(batches):
            images, labels = next(self.batches)
            train_batch(self.model, self.optimizer, images.to(self.device), labels.to(self.device))

    def evaluate(self) -> None:
        self.model.eval()
        with torch.no_grad():
            for images, _labels in self.test_loader:
                self.model(images.to(self.device)).argmax(1)


class MnistExpPath:
    """(b)/(c) resident tensors and mnist-exp's own loop, with the given trainer options."""

    def __init__(self, model_name: str, device: torch.device, overrides: list[str], test_batch: int):
        from hydra.utils import instantiate

        cfg = OmegaConf.merge(seed_config(model_name), OmegaConf.from_dotlist(overrides))
        self.cfg, self.device, self.test_batch = cfg, device, test_batch
        self.data = load_device_dataset(cfg.data, device, memory_format(cfg.trainer))
        model = instantiate(cfg.model).to(device)
        self.optimizer = build_optimizer(cfg.optimizer, model)
        self.model = speed_up(model, cfg.trainer)
        self.precision = lambda: autocast(cfg.trainer.precision, device)
        step = functools.partial(optimizer_step, self.model, cross_entropy(), self.precision, None)
        if cfg.trainer.cuda_graphs:
            self.take_step = GraphedStep(self.optimizer, step)
        else:
            self.take_step = functools.partial(step, self.optimizer)
        self.generator = torch.Generator().manual_seed(0)

    def train(self, batches: int) -> None:
        order = torch.randperm(len(self.data.train_labels), generator=self.generator)[: batches * BATCH]
        progress = EpochProgress(order=order.to(self.device), lr=0.0)
        train_epoch(
            self.model, self.data.train_images, self.data.train_labels, progress, batch_size=BATCH,
            take_step=self.take_step,
        )  # fmt: skip
        progress.loss_sum.item()  # wait for the device

    def evaluate(self) -> None:
        evaluate(self.model, self.data.test_images, self.data.test_labels, self.test_batch, self.precision)


def fastest_options(device: torch.device, compile_model: bool, chosen: list[str]) -> list[str]:
    """(c)'s overrides: `--fastest key=value ...` when given; on CUDA the step as one CUDA graph in
    bf16 and channels_last (the fastest measured there: README "Speed"); else every speed option on."""
    if chosen:
        return chosen
    if device.type == "cuda" and not compile_model:
        return ["trainer.cuda_graphs=true", "trainer.precision=bf16", "trainer.channels_last=true"]
    bf16 = device.type == "cuda" or cpu_has_native_bf16()
    return [
        "trainer.channels_last=true", f"trainer.precision={'bf16' if bf16 else 'fp32'}",
        f"trainer.compile={str(compile_model).lower()}", "optimizer.fused=true",
    ]  # fmt: skip


def measure(models, device, passes, batches, fastest: list[str]) -> list[dict]:
    rows = []
    for name in models:
        variants = {
            "a: seed pipeline": SeedPipeline(name, device),
            "b: mnist-exp default": MnistExpPath(name, device, [], test_batch=1000),
            "c: mnist-exp fastest": MnistExpPath(name, device, fastest, 10_000),
        }
        timings = {label: {"train": [], "eval": []} for label in variants}
        for timed in [False] + [True] * passes:  # the first pass warms up every variant
            for label, variant in variants.items():
                for kind, run, images in (("train", lambda v=variant: v.train(batches), batches * BATCH),
                                          ("eval", variant.evaluate, 10_000)):  # fmt: skip
                    started = time.perf_counter()
                    run()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    if timed:
                        timings[label][kind].append(images / (time.perf_counter() - started))
        base = {kind: statistics.median(timings["a: seed pipeline"][kind]) for kind in ("train", "eval")}
        for label, measured in timings.items():
            train, evaluation = statistics.median(measured["train"]), statistics.median(measured["eval"])
            rows.append({
                "model": name, "variant": label,
                "train_img_s": round(train), "train_ratio": round(train / base["train"], 2),
                "eval_img_s": round(evaluation), "eval_ratio": round(evaluation / base["eval"], 2),
                "train_samples": measured["train"], "eval_samples": measured["eval"],
            })  # fmt: skip
            print(f"{name} {label:22s} train {train:8.0f} img/s ({rows[-1]['train_ratio']:.2f}x)  "
                  f"eval {evaluation:8.0f} img/s ({rows[-1]['eval_ratio']:.2f}x)", flush=True)  # fmt: skip
    return rows


def end_to_end(models, epochs: int, device: str, fastest: list[str]) -> list[dict]:
    """Wall time of fresh processes doing the same short run: the seed pipeline, and mnist-exp
    with its defaults and with (c)'s overrides."""
    here = Path(__file__).parent
    rows = []
    for name in models:
        run = [
            sys.executable,
            "-m",
            "mnist_exp",
            f"experiment=seed_{name}",
            f"trainer.epochs={epochs}",
            f"trainer.device={device}",
            "hydra.run.dir=outputs/benchmarks/e2e_${now:%H-%M-%S-%f}",
        ]
        commands = {
            "a: seed pipeline": [sys.executable, str(here / "seed_pipeline.py"),
                                 "--model", name, "--epochs", str(epochs), "--device", device],
            "b: mnist-exp default": run,
            "c: mnist-exp fastest": run + fastest,
        }  # fmt: skip
        walls = {}
        for label, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls[label] = time.perf_counter() - started
        for label, wall in walls.items():
            ratio = walls["a: seed pipeline"] / wall
            rows.append({"model": name, "variant": label, "epochs": epochs, "wall_s": round(wall, 1),
                         "speedup": round(ratio, 2)})  # fmt: skip
            print(f"{name} end to end, {epochs} epochs, {label:22s} {wall:7.1f} s ({ratio:.2f}x)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["v1", "v2", "v3"], choices=sorted(SEED_TEST_BATCH))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--passes", type=int, default=5, help="timed passes per variant (median taken)")
    parser.add_argument("--batches", type=int, default=40, help="training batches of 128 per pass")
    parser.add_argument("--compile", action="store_true", help="add torch.compile to the fastest path")
    parser.add_argument("--fastest", nargs="+", default=[], metavar="KEY=VALUE",
                        help="(c)'s options instead, e.g. trainer.compile=true")  # fmt: skip
    parser.add_argument("--e2e-epochs", type=int, default=0, help="also time full runs of N epochs")
    parser.add_argument("--json", type=Path, default=Path("outputs/benchmarks/throughput.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    fastest = fastest_options(device, args.compile, args.fastest)
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": str(device), "cpu_native_bf16": cpu_has_native_bf16(),
                    "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None},
        "settings": vars(args) | {"json": str(args.json)},
        "throughput": measure(args.models, device, args.passes, args.batches, fastest),
    }  # fmt: skip
    if args.e2e_epochs:
        result["end_to_end"] = end_to_end(args.models, args.e2e_epochs, args.device, fastest)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
