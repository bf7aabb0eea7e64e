"""`mnist-exp-predict CHECKPOINT_OR_RUN_DIR IMAGE_OR_DIR...`: which digit is in each picture.

Each image (PNG, JPEG, any size, dark-on-light or light-on-dark) is made into an MNIST-style
28x28 digit, normalised as in training and classified on the CPU. A run directory means its
checkpoints/best.pt where the run held a validation split, else last.pt; a directory of images
means every image file in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from mnist_exp.inference.checkpoint import CheckpointError, load_trained_model
from mnist_exp.inference.digit_image import DigitImageError
from mnist_exp.inference.predict import InputError, image_files, predict, predictions_table

__all__ = ["main", "predict"]
PROG = "mnist-exp-predict"
WIDE_ENOUGH = 200  # when piped, print file paths whole rather than folded at 80 columns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT_OR_RUN_DIR")
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE_OR_DIR")
    parser.add_argument(
        "--json", action="store_true", help="print JSON (one object per image) instead of a table"
    )
    args = parser.parse_args(argv)
    try:
        files = image_files(args.images)
        trained = load_trained_model(args.checkpoint)
        predictions = predict(trained, files)
    except (InputError, CheckpointError, DigitImageError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(p) for p in predictions], indent=2))
    else:
        Console(width=None if sys.stdout.isatty() else WIDE_ENOUGH).print(
            predictions_table(predictions, trained.description)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
