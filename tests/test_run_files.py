"""Atomic writes: a write that fails names its file and leaves the earlier copy whole."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from mnist_exp.errors import OutputDirError
from mnist_exp.fs.atomic import atomic_write_bytes, write_json
from mnist_exp.rundir.writes import RunLogFile


def test_a_full_disk_leaves_the_earlier_file_whole_and_names_it(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"epoch": 1})
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OutputDirError, match=rf"cannot write {path} \(No space left on device\)"):
        write_json(path, {"epoch": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"], "no temporary left behind"


def test_a_directory_that_cannot_be_made_is_named(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(OutputDirError, match=rf"cannot write {blocker}/report.md \(File exists: {blocker}\)"):
        atomic_write_bytes(blocker / "report.md", b"# Runs\n")


@pytest.mark.parametrize(
    ("code", "reported"), [(errno.ENOSPC, False), (errno.EDQUOT, False), (errno.EIO, True)]
)
def test_the_log_file_is_quiet_only_when_out_of_space(tmp_path, monkeypatch, capsys, code, reported):
    """A full disk fails every line logged; one traceback each would bury the run's one error line."""
    handler = RunLogFile(tmp_path / "train.log")

    def failing_flush():
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(handler.stream, "flush", failing_flush)
    monkeypatch.setattr(logging, "raiseExceptions", True)
    handler.emit(logging.LogRecord("mnist_exp", logging.INFO, __file__, 1, "Epoch 1/20", None, None))
    assert ("--- Logging error ---" in capsys.readouterr().err) == reported
