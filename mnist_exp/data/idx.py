"""Read and write the uint8 idx files of the MNIST family, as torchvision keeps them in <root>/<name>/raw."""

import math
import struct
from pathlib import Path

import numpy as np

_UBYTE = 0x08


def write_idx(path: Path, array: np.ndarray) -> None:
    if array.dtype != np.uint8:
        raise ValueError(f"idx writer takes uint8 arrays, got {array.dtype}")
    header = struct.pack(f">HBB{array.ndim}I", 0, _UBYTE, array.ndim, *array.shape)
    with open(path, "wb") as f:
        f.write(header)
        f.write(np.ascontiguousarray(array).tobytes())


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse a uint8 idx file with `ndim` dimensions; anything else is a clear ValueError, not a crash."""
    data = np.fromfile(path, dtype=np.uint8)
    header_size = 4 + 4 * ndim
    expected_magic = _UBYTE << 8 | ndim
    magic = struct.unpack(">I", data[:4].tobytes())[0] if data.size >= 4 else None
    if magic != expected_magic:
        found = "too short" if magic is None else f"magic 0x{magic:08x}"
        expected = f"expected magic 0x{expected_magic:08x}"
        raise ValueError(f"{path}: not a uint8 idx file with {ndim} dimensions ({found}, {expected})")
    if data.size < header_size:
        raise ValueError(f"{path}: idx header truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header_size].tobytes())
    size = data.size - header_size
    if size != math.prod(shape):
        raise ValueError(
            f"{path}: header says shape {shape} ({math.prod(shape)} bytes) but the file holds {size}"
        )
    return data[header_size:].reshape(shape)


def load_split(raw_dir: Path, train: bool):
    """Images as uint8 [N, 28, 28] and labels as int64 [N] torch tensors from the train or test idx files."""
    import torch

    prefix = "train" if train else "t10k"
    images = read_idx(Path(raw_dir) / f"{prefix}-images-idx3-ubyte", ndim=3)
    labels = read_idx(Path(raw_dir) / f"{prefix}-labels-idx1-ubyte", ndim=1)
    if len(images) != len(labels):
        raise ValueError(f"{raw_dir}: {len(images)} {prefix} images but {len(labels)} labels")
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
