"""Fetch and verify a dataset ahead of time, e.g. on a cluster login node before going offline."""

import argparse
import logging
import sys
from pathlib import Path

from . import DATASETS, DataUnavailableError, default_root, ensure_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnist_exp.data", description=__doc__)
    parser.add_argument("--dataset", choices=DATASETS, default="mnist", help="as data.name (default: mnist)")
    parser.add_argument("--root", type=Path, help=f"data cache directory (default: {default_root()})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = DATASETS[args.dataset]
    try:
        raw = ensure_dataset(spec, args.root)
    except DataUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{spec.name} files verified (SHA-256) in {raw}:")
    for name in spec.files:
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
