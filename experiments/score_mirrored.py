"""Score finished validation pilots again with mirror-averaged evaluation, without retraining.

`trainer.eval_hflip` changes only how a trained network is scored, so whether it helps a recipe
can be read from that recipe's existing pilots: each run's final checkpoint (the weights its
final validation accuracy came from) is scored on its own validation split, plainly and
mirror-averaged, with the runner's own `evaluate`. Run dirs are those of
experiments/validate_then_test.py's pilots (trained with `data.val_size`).

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


def validation_scores(run_dir: Path) -> tuple[float, float]:
    """(plain, mirror-averaged) final validation accuracy in percent."""
    checkpoint = checkpoint_file(run_dir / "checkpoints" / "last.pt")
    trained = load_trained_model(checkpoint)
    data = read_checkpoint(checkpoint)["config"]["data"]
    if not data["val_size"]:
        raise SystemExit(f"{run_dir}: trained without data.val_size, so it has no validation split to score")
    images, labels = load_split(ensure_named(data["name"], data["root"]), train=True)
    _, val = split_indices(len(labels), data["val_size"], data["train_subset"])
    val_images = normalise(images[val], trained.mean, trained.std)
    batch = data["test_batch_size"]
    _, plain = evaluate(trained.model, val_images, labels[val], batch)
    _, mirrored = evaluate(MirrorAveraged(trained.model), val_images, labels[val], batch)
    return plain, mirrored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        scores = [validation_scores(run_dir) for run_dir in args.run_dirs]
    except CheckpointError as error:
        raise SystemExit(f"{error}. Give run dirs of finished validation pilots.") from None
    for run_dir, (plain, mirrored) in zip(args.run_dirs, scores, strict=True):
        print(f"{run_dir}: val {plain:.2f} plain, {mirrored:.2f} mirror-averaged")
    plain_mean, mirrored_mean = (statistics.mean(column) for column in zip(*scores, strict=True))
    print(f"mean: val {plain_mean:.3f} plain, {mirrored_mean:.3f} mirror-averaged")


if __name__ == "__main__":
    main()
