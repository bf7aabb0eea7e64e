"""Score finished runs again, plainly and mirror-averaged, from their final checkpoints.

`trainer.eval_hflip` changes only how a trained network is scored, so both scores can be read
from runs that exist, with the runner's own `evaluate`, without retraining. `--split val` (the
default) scores validation pilots (trained with `data.val_size`) on their own split, to choose
on; `--split test` scores measured seeds, to report the plain test accuracy of the very networks
whose mirror-averaged accuracy a run recorded, or the other way round.

    python experiments/score_mirrored.py outputs/results/round7_fashion_60/pilots/fashion_v3_plus/*
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from mnist_exp.data import ensure_named, load_split
from mnist_exp.device_dataset import normalise, split_indices
from mnist_exp.loop import evaluate
from mnist_exp.mirror_eval import MirrorAveraged
from mnist_exp.trained_model import CheckpointError, checkpoint_file, load_trained_model, read_checkpoint


def split_of(run_dir: Path, data: dict, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's validation split or the test set: uint8 images and their labels."""
    raw = ensure_named(data["name"], data["root"])
    if split == "test":
        return load_split(raw, train=False)
    if not data["val_size"]:
        raise SystemExit(f"{run_dir}: trained without data.val_size, so it has no validation split to score")
    images, labels = load_split(raw, train=True)
    _, val = split_indices(len(labels), data["val_size"], data["train_subset"])
    return images[val], labels[val]


def scores(run_dir: Path, split: str) -> tuple[float, float]:
    """(plain, mirror-averaged) accuracy in percent of the run's final network on `split`."""
    checkpoint = checkpoint_file(run_dir / "checkpoints" / "last.pt")
    trained = load_trained_model(checkpoint)
    data = read_checkpoint(checkpoint)["config"]["data"]
    images, labels = split_of(run_dir, data, split)
    images = normalise(images, trained.mean, trained.std)
    _, plain = evaluate(trained.model, images, labels, data["test_batch_size"])
    _, mirrored = evaluate(MirrorAveraged(trained.model), images, labels, data["test_batch_size"])
    return plain, mirrored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--split", choices=("val", "test"), default="val")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        table = [scores(run_dir, args.split) for run_dir in args.run_dirs]
    except CheckpointError as error:
        raise SystemExit(f"{error}. Give run dirs of finished runs.") from None
    for run_dir, (plain, mirrored) in zip(args.run_dirs, table, strict=True):
        print(f"{run_dir}: {args.split} {plain:.2f} plain, {mirrored:.2f} mirror-averaged")
    plain_mean, mirrored_mean = (statistics.mean(column) for column in zip(*table, strict=True))
    print(f"mean: {args.split} {plain_mean:.3f} plain, {mirrored_mean:.3f} mirror-averaged")


if __name__ == "__main__":
    main()
