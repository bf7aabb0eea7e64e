"""What provenance.json says of a run's code and machine, and what it leaves out when it cannot know."""

from __future__ import annotations

import json
import subprocess

import torch

from mnist_exp.monitor.provenance import Provenance, git_state


def test_outside_a_git_checkout_no_commit_is_claimed(tmp_path):
    assert git_state(tmp_path) == {}


def test_in_a_checkout_the_commit_and_a_dirty_tree_are_recorded(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    clean = git_state(tmp_path)
    (tmp_path / "a.txt").write_text("two")
    assert len(clean["git_commit"]) == 40 and clean["git_dirty"] is False
    assert git_state(tmp_path) == {"git_commit": clean["git_commit"], "git_dirty": True}


def test_each_process_adds_an_attempt_after_the_earlier_ones(tmp_path):
    earlier = [{"ended_as": "interrupted", "torch": "2.11.0"}]
    provenance = Provenance(tmp_path / "provenance.json", torch.device("cpu"), earlier)
    provenance.save()
    assert json.loads((tmp_path / "provenance.json").read_text())["attempts"][1]["ended_utc"] is None
    provenance.ended("completed")
    first, this = json.loads((tmp_path / "provenance.json").read_text())["attempts"]
    assert first == earlier[0]
    assert (this["ended_as"], this["torch"], this["device"]) == ("completed", torch.__version__, "cpu")
    assert this["started_utc"].endswith("Z") and this["ended_utc"] >= this["started_utc"]


def test_a_missing_or_broken_provenance_file_reads_as_no_earlier_attempts(tmp_path):
    from mnist_exp.rundir.readers import read_provenance

    assert read_provenance(tmp_path) == []
    (tmp_path / "provenance.json").write_text("{not json")
    assert read_provenance(tmp_path) == []
    (tmp_path / "provenance.json").write_text('{"attempts": "several"}')
    assert read_provenance(tmp_path) == []
