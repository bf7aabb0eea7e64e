"""Atomic writes: a write that fails names its file and leaves the earlier copy whole."""

from __future__ import annotations

import errno
import os

import pytest

from mnist_exp.errors import OutputDirError
from mnist_exp.run_files import atomic_write_bytes, write_json


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
