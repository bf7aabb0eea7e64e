"""A sweep job's directory is named by its number and the overrides the sweep varies."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from mnist_exp.cli.job_names import NameJobDirs
from mnist_exp.rundir.job_names import (
    MAX_LENGTH,
    job_dir_name,
    job_dirs_numbered,
    job_number,
    register_job_dir_resolver,
    swept_keys,
)


def test_the_keys_a_command_line_sweeps_are_its_sweep_overrides():
    overrides = ["optimizer.lr=0.001,0.002", "trainer.epochs=3", "seed=range(1,4)", "+experiment=choice(a,b)"]
    assert swept_keys(overrides) == ("optimizer.lr", "seed", "experiment")


def test_a_job_shows_its_number_then_the_swept_overrides_only():
    overrides = ["optimizer.lr=0.001", "trainer.epochs=3", "seed=2"]
    assert job_dir_name(0, overrides, swept=("optimizer.lr", "seed")) == "0_lr=0.001_seed=2"


def test_with_nothing_swept_on_the_command_line_every_override_but_hydras_and_resume_shows():
    """An Optuna search's parameters come from config: the trial's overrides are all there is."""
    overrides = ["optimizer=sgd", "data.batch_size=64", "resume=outputs/run", "hydra.verbose=true"]
    assert job_dir_name(4, overrides) == "4_optimizer=sgd_batch_size=64"


def test_a_job_without_overrides_is_its_number():
    assert job_dir_name(7, []) == "7"


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("optimizer.lr=0.1", "lr=0.1"),
        ("data/augment=light", "augment=light"),
        ("+experiment=seed_v1", "experiment=seed_v1"),
    ],
)
def test_a_key_shows_as_its_last_part(override, shown):
    assert job_dir_name(0, [override]) == f"0_{shown}"


def test_keys_that_would_read_the_same_keep_as_much_of_their_path_as_sets_them_apart():
    overrides = ["model.dropout=0.1", "data.dropout=0.2", "a.b.c=1", "x.b.c=2", "seed=1"]
    assert job_dir_name(0, overrides) == "0_model.dropout=0.1_data.dropout=0.2_a.b.c=1_x.b.c=2_seed=1"


def test_characters_a_file_name_should_not_hold_become_dashes():
    name = job_dir_name(1, ["data.root='/my data/mnist'", "trainer.device=cuda:1"])
    assert name == "1_root=-my-data-mnist-_device=cuda-1"


def test_a_long_name_is_cut_and_ends_with_a_hash_of_the_whole():
    long = [f"optimizer.lr=0.00123456789012345{n}" for n in (1, 2)]
    rest = ["optimizer.weight_decay=8.359739066310852e-06", "data.batch_size=128"]
    names = [job_dir_name(0, [override, *rest]) for override in long]
    assert all(
        len(name) == MAX_LENGTH and re.fullmatch(r"0_lr=0\.00123.*-[0-9a-f]{8}", name) for name in names
    )
    assert names[0] != names[1], "cut alike, told apart by the hash"


def test_a_dir_name_gives_back_its_job_number():
    assert [job_number(name) for name in ("0", "10_lr=0.001", "3_seed=1_model=v2")] == [0, 10, 3]
    assert [job_number(name) for name in (".submitit", "seed=1", "lr_0", "summary.md")] == [None] * 4


def test_job_dirs_are_found_by_number_whatever_their_names(tmp_path):
    for name in ("0", "0_lr=0.001", "10_lr=0.002", "summary.md"):
        (tmp_path / name).mkdir()
    assert [path.name for path in job_dirs_numbered(tmp_path, 0)] == ["0", "0_lr=0.001"]
    assert job_dirs_numbered(tmp_path / "missing", 0) == []


@pytest.fixture
def job_dir_resolver():
    """The resolver as a sweep's start leaves it; as registered at import afterwards."""
    yield
    register_job_dir_resolver()


def job_config(num: int, overrides: list[str]):
    return OmegaConf.create(
        {"hydra": {"job": {"num": num}, "overrides": {"task": overrides}}, "subdir": "${mnist_exp_job_dir:}"}
    )


def test_the_sweeps_start_tells_the_resolver_which_keys_it_varies(job_dir_resolver):
    """config.yaml's hydra.sweep.subdir, resolved as a launcher resolves it for job 1."""
    primary = OmegaConf.create(
        {"hydra": {"overrides": {"task": ["optimizer.lr=0.001,0.002", "trainer.epochs=3"]}}}
    )
    NameJobDirs().on_multirun_start(config=primary)
    assert job_config(1, ["optimizer.lr=0.002", "trainer.epochs=3"]).subdir == "1_lr=0.002"


def test_without_the_sweeps_start_the_resolver_shows_every_override(job_dir_resolver):
    """A launcher that carries no resolvers to its jobs still gets names, only longer."""
    register_job_dir_resolver()
    assert job_config(1, ["optimizer.lr=0.002", "trainer.epochs=3"]).subdir == "1_lr=0.002_epochs=3"
