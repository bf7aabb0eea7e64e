"""Score finished runs again, plainly and averaged over views, from their final checkpoints.

`trainer.eval_hflip` and `trainer.eval_shift` change only how a trained network is scored, so
both scores can be read from runs that exist, with the runner's own `evaluate`, without
retraining. `--split val` (the default) scores validation pilots (trained with `data.val_size`)
on their own split, to choose on; `--split test` scores measured seeds, to report the plain test
accuracy of the very networks whose view-averaged accuracy a run recorded, or the other way round.

    python experiments/score_views.py --hflip outputs/results/round7_fashion_60/pilots/fashion_v3_plus/*
    python experiments/score_views.py --shift 1 outputs/results/round15_small_pilots/pilots/small_7k/*
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from mnist_exp.config.validation import EVAL_SHIFT_LIMIT
from mnist_exp.data import ensure_named, load_split
from mnist_exp.data.tensors import normalise, split_indices
from mnist_exp.engine.loop import evaluate
from mnist_exp.engine.views import ViewAveraged, evaluation_views
from mnist_exp.inference.checkpoint import CheckpointError, load_trained_model


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


def scores(run_dir: Path, split: str, hflip: bool, shift: int) -> tuple[float, float]:
    """(plain, view-averaged) accuracy in percent of the run's final network on `split`."""
    trained = load_trained_model(run_dir / "checkpoints" / "last.pt")
    data = trained.config["data"]
    images, labels = split_of(run_dir, data, split)
    images = normalise(images, trained.mean, trained.std)
    view_averaged = ViewAveraged(trained.model, evaluation_views(hflip, shift), -trained.mean / trained.std)
    _, plain = evaluate(trained.model, images, labels, data["test_batch_size"])
    _, averaged = evaluate(view_averaged, images, labels, data["test_batch_size"])
    return plain, averaged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--hflip", action="store_true", help="average with the left-right mirror (clothes)")
    parser.add_argument("--shift", type=int, default=0, metavar="N", help="and with N-pixel shifts four ways")
    args = parser.parse_args()
    if not 0 <= args.shift <= EVAL_SHIFT_LIMIT:
        parser.error(f"--shift {args.shift}: must be 1 to {EVAL_SHIFT_LIMIT} pixels")
    if not (args.hflip or args.shift):
        parser.error("give --hflip, --shift N, or both: the views to average over")
    torch.set_num_threads(1)
    try:
        table = [scores(run_dir, args.split, args.hflip, args.shift) for run_dir in args.run_dirs]
    except CheckpointError as error:
        raise SystemExit(f"{error}. Give run dirs of finished runs.") from None
    for run_dir, (plain, averaged) in zip(args.run_dirs, table, strict=True):
        print(f"{run_dir}: {args.split} {plain:.2f} plain, {averaged:.2f} view-averaged")
    plain_mean, averaged_mean = (statistics.mean(column) for column in zip(*table, strict=True))
    print(f"mean: {args.split} {plain_mean:.3f} plain, {averaged_mean:.3f} view-averaged")


if __name__ == "__main__":
    main()
