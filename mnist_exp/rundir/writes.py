"""A run's log file, and one line instead of tracebacks when the disk fills.

When the disk fills, the run ends with one line naming what could not be written, not with
tracebacks from our writes, TensorBoard's thread or the log file.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_exp.errors import OutputDirError
from mnist_exp.fs.atomic import is_out_of_space
from mnist_exp.rundir.layout import resume_command


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
