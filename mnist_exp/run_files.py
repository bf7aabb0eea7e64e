"""What a run leaves on disk: metrics.json and checkpoints, always written atomically.

A file is written beside its final name and renamed over it, so a run killed at any moment
leaves either the previous complete file or the new complete file, never half of one.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def remove_stale_temporaries(run_dir: Path) -> None:
    """Drop the partial temporaries a killed process left behind; the complete files stay."""
    for temporary in run_dir.rglob(".*.tmp"):
        temporary.unlink()


def write_json(path: Path, document: dict) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2) + "\n").encode())


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save into memory, then one atomic write; loadable with weights_only=True."""
    import torch  # here, not at the top: the report reads metrics.json without paying for torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
