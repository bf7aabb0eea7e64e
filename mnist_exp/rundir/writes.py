"""What a run leaves on disk: metrics.json and checkpoints, always written atomically.

A file is written beside its final name and renamed over it, so a run killed at any moment
leaves either the previous complete file or the new complete file, never half of one. When the
disk fills, the run ends with one line naming what could not be written, not with tracebacks from
our writes, TensorBoard's thread or the log file.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_exp.errors import OutputDirError, resume_command


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """A write that fails (a full disk, a read-only directory) leaves any earlier file whole and
    says which file, instead of an OSError traceback from deep inside the run."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        reason = error.strerror or str(error)
        if error.filename and Path(error.filename) not in (path, temporary):
            reason += f": {error.filename}"  # e.g. a file where a parent directory should be
        raise OutputDirError(
            f"cannot write {path} ({reason}); any earlier copy of it is left whole. "
            "Free disk space or make its directory writable, then run again"
        ) from error
    finally:
        if temporary.exists():  # False, not an error, where the directory itself is missing
            temporary.unlink()


# What a full disk, a quota or a read-only remount raise; other OSErrors keep their traceback.
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def is_out_of_space(error: BaseException | None) -> bool:
    return isinstance(error, OSError) and error.errno in OUT_OF_SPACE


@contextmanager
def write_failures_explained(run_dir: Path) -> Iterator[None]:
    """TensorBoard writes its events from a thread of its own, which prints the OSError's traceback
    and leaves it for whichever call comes next to raise; this keeps the thread quiet and gives
    the raised error the same one line and fix as our own files."""

    def quiet_when_out_of_space(args: threading.ExceptHookArgs) -> None:
        if not is_out_of_space(args.exc_value):
            default_hook(args)

    default_hook, threading.excepthook = threading.excepthook, quiet_when_out_of_space
    try:
        yield
    except OSError as error:
        if not is_out_of_space(error):
            raise
        raise OutputDirError(
            f"cannot write into {run_dir} ({error.strerror}). Free disk space or make it writable; "
            f"a run that saved checkpoints/last.pt then continues with: {resume_command(run_dir)}"
        ) from error
    finally:
        threading.excepthook = default_hook


class RunLogFile(logging.FileHandler):
    """The run's `train.log` (hydra/job_logging/rich.yaml). On a full disk its writes fail quietly
    instead of printing a traceback for every line logged; the run stops with one line at its
    next checkpoint or TensorBoard write."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not is_out_of_space(sys.exc_info()[1]):
            super().handleError(record)


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
