"""Writes that land whole or not at all.

A file is written beside its final name and renamed over it, so a process killed at any moment
leaves either the previous complete file or the new complete file, never half of one.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from mnist_exp.errors import OutputDirError

# What a full disk, a quota or a read-only remount raise; other OSErrors keep their traceback.
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def is_out_of_space(error: BaseException | None) -> bool:
    return isinstance(error, OSError) and error.errno in OUT_OF_SPACE


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


def write_json(path: Path, document: dict) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2) + "\n").encode())


def remove_stale_temporaries(directory: Path) -> None:
    """Drop the partial temporaries a killed process left behind; the complete files stay."""
    for temporary in directory.rglob(".*.tmp"):
        temporary.unlink()
