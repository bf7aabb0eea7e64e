"""Ctrl-C, SIGTERM and SIGUSR2 as requests to stop cleanly.

The first signal asks the training loop to stop at the next batch boundary, where it saves its
state; a second Ctrl-C exits at once (the files on disk are always complete: writes are atomic).
SIGUSR2 is what a SLURM job of the submitit launcher gets before its time limit (sbatch --signal):
submitit's own handler requeues the job at once, which would end the run mid-epoch, so the run
takes the signal first and hands it on (`hand_over`) once its state is saved.
"""

from __future__ import annotations

import os
import signal
import threading

from mnist_exp.errors import Stopped
from mnist_exp.rundir.layout import resume_command

SIGUSR2 = getattr(signal, "SIGUSR2", None)  # absent on Windows
HANDLED = (signal.SIGINT, signal.SIGTERM) + ((SIGUSR2,) if SIGUSR2 else ())


class StopRequests:
    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, _frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            os._exit(128 + signum)
        self.signum = signum
        # Straight to the file descriptor, not through logging: the signal can land while the
        # program is writing to that same stream, and Python's buffered writer refuses re-entry
        # (logging then prints a "--- Logging error ---" traceback instead of this line).
        notice = f"{signal.Signals(signum).name} received: stopping at the next batch boundary"
        os.write(2, f"{notice} (Ctrl-C again to exit at once)\n".encode())

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # handlers only work there
            self._previous = {s: signal.signal(s, self._handle) for s in HANDLED}
        return self

    def __exit__(self, *_exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def hand_over(self) -> None:
        """Once the state is saved, pass an obeyed SIGUSR2 to the handler it displaced: under
        submitit, that requeues the job, which then goes on from the saved state, and exits; or
        it fails the job with submitit's reason (say, too many time-outs)."""
        displaced = self._previous.get(SIGUSR2)
        if self.signum == SIGUSR2 and callable(displaced):
            displaced(self.signum, None)


class Interrupted(Stopped):
    """The run stopped at a batch boundary, as a signal asked, with its state saved."""

    def __init__(self, signum: int, run_dir: str, epoch: int, step: int):
        super().__init__(
            signum,
            f"Interrupted by {signal.Signals(signum).name} at epoch {epoch}, step {step}; "
            f"state saved. Resume with: {resume_command(run_dir)}",
        )


class StoppedAsItFinished(Stopped):
    """The signal came while the last epoch was scored and saved, too late to stop the run, which
    finished; the person still asked to stop, so a sweep must not go on to its next job."""

    def __init__(self, signum: int, run_dir: str):
        super().__init__(
            signum,
            f"{signal.Signals(signum).name} received as the run was finishing: it finished all the "
            f"same ({run_dir}), so there is nothing to resume; stopping here, as asked.",
        )
