"""Checkpoint files: written in one atomic write, read back as data and never as code.

A checkpoint is read with `weights_only=True`, so a file from elsewhere cannot make this program
run arbitrary code while it is unpickled.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from mnist_exp.fs.atomic import atomic_write_bytes


class CheckpointError(Exception):
    """The checkpoint is missing, unreadable or does not fit its model; the message says which."""


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save into memory, then one atomic write; loadable with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(file: Path) -> dict:
    if not zipfile.is_zipfile(file):
        raise CheckpointError(f"{file} is not a PyTorch checkpoint (expected a file written by torch.save)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{file} holds objects torch.load(weights_only=True) refuses: "
            "not a checkpoint of this version of mnist-exp"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{file} is not a readable PyTorch checkpoint ({one_line(error)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{file} holds a {type(state).__name__}, not a checkpoint dict")
    return state


def one_line(error: Exception, limit: int = 300) -> str:
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."
