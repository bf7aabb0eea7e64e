"""Errors meant for a person, not a traceback: each says what was wrong and how to fix it.

`main` prints their message and exits with `exit_code`; HYDRA_FULL_ERROR=1 shows the trace.
"""

from __future__ import annotations

from hydra.errors import CompactHydraException


class UserError(CompactHydraException):
    """A CompactHydraException, so that when a sweep's job fails with one, Hydra ends the sweep
    with its message instead of a traceback."""

    exit_code = 2

    def __reduce__(self):
        """Pickled whole: a sweep's worker process (joblib, submitit, Ray) sends a failed job's
        error back pickled, and Exception's own pickling would call `__init__` with the message
        alone, which `Diverged` and `Interrupted` refuse, breaking the whole sweep."""
        return _rebuilt, (type(self), str(self), self.__dict__)


def _rebuilt(cls: type[UserError], message: str, state: dict) -> UserError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigError(UserError):
    """A config value out of range, malformed or missing."""


class DeviceError(UserError):
    """The requested device does not exist on this machine."""


class ResumeError(UserError):
    """The resume target is missing, unreadable, or contradicts the command line."""


class OutputDirError(UserError):
    """The run directory cannot be created or written."""


class Diverged(UserError):
    exit_code = 3

    def __init__(self, loss: float, epoch: int, step: int, lr: float):
        super().__init__(
            f"Training diverged: the loss is {loss} at epoch {epoch}, step {step} (lr {lr:.3g}). "
            "Lower optimizer.lr (or use a scheduler with warm-up) and start a new run."
        )


class Stopped(UserError):
    """A stop signal obeyed: the process exits with 128 + its number, in a sweep too, so that
    the sweep's later jobs never start."""

    def __init__(self, signum: int, message: str):
        self.exit_code = 128 + signum
        super().__init__(message)
