"""Errors for a person survive pickling, as a sweep's worker process sends them back."""

from __future__ import annotations

import pickle

import pytest

from mnist_exp.errors import ConfigError, Diverged
from mnist_exp.rundir.signals import Interrupted, StoppedAsItFinished


@pytest.mark.parametrize(
    "error",
    [
        Diverged(float("nan"), 3, 120, 0.5),
        Interrupted(15, "outputs/run", 2, 40),
        StoppedAsItFinished(2, "outputs/run"),
        ConfigError("lr must be > 0"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_error_comes_back_from_pickling_whole(error):
    returned = pickle.loads(pickle.dumps(error))
    assert type(returned) is type(error)
    assert (str(returned), returned.exit_code) == (str(error), error.exit_code)
