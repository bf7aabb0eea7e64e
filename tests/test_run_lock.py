"""One training process per run dir: a second one is refused, naming the first one's pid."""

from __future__ import annotations

import os

import pytest

from mnist_exp.errors import OutputDirError
from mnist_exp.rundir.lock import sole_trainer


def test_a_second_trainer_in_the_same_run_dir_is_refused_naming_the_first(tmp_path):
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir(), other.mkdir()
    with sole_trainer(first):
        with pytest.raises(
            OutputDirError, match=rf"another process \(pid {os.getpid()}\) is training in {first}"
        ):
            with sole_trainer(first):
                pass
        with sole_trainer(other):  # another run dir is not held
            pass


def test_the_lock_is_free_again_once_the_trainer_is_done(tmp_path):
    with sole_trainer(tmp_path):
        pass
    with sole_trainer(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"


def test_a_file_system_without_flock_trains_unlocked_with_a_warning(tmp_path, no_flock, caplog):
    entered = False
    with sole_trainer(tmp_path):
        entered = True
    assert entered
    (warning,) = [record for record in caplog.records if record.levelname == "WARNING"]
    assert warning.getMessage().startswith(f"cannot lock {tmp_path / '.lock'} (")
    assert "nothing stops a second process training there" in warning.getMessage()
