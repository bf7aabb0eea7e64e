"""Which command-line overrides a resumed run takes, in-process on composed configs."""

import pytest
from omegaconf import OmegaConf

from mnist_exp.errors import ResumeError
from mnist_exp.rundir.resume import TRAINING_STATE, resume_checkpoint, resumed_config


def saved_config(compose_config, *overrides):
    return OmegaConf.to_container(compose_config(*overrides), resolve=True)


def test_unnamed_resumable_keys_keep_the_checkpoints_values(compose_config):
    saved = saved_config(compose_config, "trainer.threads=1", "trainer.log_every_n_steps=7")
    cfg = compose_config("resume=somewhere")
    resumed = resumed_config(cfg, saved, ["resume=somewhere"])
    assert (resumed.trainer.threads, resumed.trainer.log_every_n_steps) == (1, 7)
    assert resumed.resume == "somewhere"


def test_named_resumable_keys_are_applied(compose_config):
    saved = saved_config(compose_config, "trainer.threads=1")
    cfg = compose_config("resume=somewhere", "trainer.threads=2", "trainer.device=cpu")
    resumed = resumed_config(cfg, saved, ["resume=somewhere", "trainer.threads=2", "trainer.device=cpu"])
    assert (resumed.trainer.threads, resumed.trainer.device) == (2, "cpu")


@pytest.mark.parametrize("override", ["model=v1", "optimizer.lr=0.5", "experiment=seed_v1"])
def test_overrides_that_change_the_run_are_refused(compose_config, override):
    saved = saved_config(compose_config)
    cfg = compose_config("resume=somewhere", override)
    with pytest.raises(ResumeError, match="contradicts the checkpoint being resumed"):
        resumed_config(cfg, saved, ["resume=somewhere", override])


def test_a_sweep_job_finding_another_jobs_run_in_its_dir_is_told_to_move(compose_config):
    """No resume= on its command line: the sweep job set it, to go on in its own dir."""
    saved = saved_config(compose_config, "seed=1")
    cfg = compose_config("seed=2")
    cfg.resume = "the-job-dir"
    another_jobs = r"seed=2 contradicts .*\(seed there is 1\)\. That run is another job's"
    with pytest.raises(ResumeError, match=another_jobs):
        resumed_config(cfg, saved, ["seed=2"])


def test_overrides_equal_to_the_checkpoint_are_accepted(compose_config):
    saved = saved_config(compose_config, "model=v2")
    cfg = compose_config("resume=somewhere", "model=v2")
    assert resumed_config(cfg, saved, ["resume=somewhere", "model=v2"]).model.name == "v2"


def test_trainer_keys_newer_than_the_checkpoint_take_their_off_defaults(compose_config):
    saved = saved_config(compose_config, "trainer.label_smoothing=0.1")
    del saved["trainer"]["eval_hflip"]  # a run started before the key existed
    resumed = resumed_config(compose_config("resume=somewhere"), saved, ["resume=somewhere"])
    assert resumed.trainer.eval_hflip is False
    assert resumed.trainer.label_smoothing == 0.1


def test_a_checkpoint_from_before_the_weight_average_existed_is_still_read(tmp_path):
    """Checkpoints written before 7d1d72e have no "ema"; their runs had no average to restore."""
    import torch

    state = {key: 0 for key in TRAINING_STATE}
    assert "ema" not in state
    torch.save(state, tmp_path / "last.pt")
    assert resume_checkpoint(str(tmp_path / "last.pt")) == state
