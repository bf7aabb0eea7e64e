"""Ctrl-C and SIGTERM (what SLURM sends before pre-emption) as requests to stop cleanly.

The first signal asks the training loop to stop at the next batch boundary, where it saves its
state; a second Ctrl-C exits at once (the files on disk are always complete: writes are atomic).
"""

from __future__ import annotations

import os
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM)


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
