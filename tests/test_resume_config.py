"""Which command-line overrides a resumed run takes, in-process on composed configs."""

import pytest
from omegaconf import OmegaConf

from mnist_exp.errors import ResumeError
from mnist_exp.rundir.resume import RANDOM_STREAMS, TRAINING_STATE, resume_checkpoint, resumed_config


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


def training_state() -> dict:
    return {key: 0 for key in TRAINING_STATE} | {"rng": {stream: 0 for stream in RANDOM_STREAMS}}


def test_a_checkpoint_of_a_run_without_a_weight_average_needs_no_ema_entry(tmp_path):
    import torch

    state = training_state()
    assert "ema" not in state
    torch.save(state, tmp_path / "last.pt")
    assert resume_checkpoint(str(tmp_path / "last.pt")) == state


def test_a_checkpoint_without_a_random_stream_is_refused_naming_it(tmp_path):
    """As an early version wrote them, before augmentation had a stream of its own."""
    import torch

    state = training_state()
    del state["rng"]["augment"]
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(ResumeError, match=r"training checkpoint \(it has no rng.augment\)"):
        resume_checkpoint(str(tmp_path / "last.pt"))


def with_retired_options(saved: dict, elastic: float = 0.0, teacher=None) -> dict:
    """A saved config as the package wrote it while distillation and elastic warps existed."""
    saved["data"]["augment"] |= {"elastic": elastic, "elastic_sigma": 4.0}
    saved["trainer"] |= {"teacher": teacher, "teacher_weight": 0.5, "teacher_temperature": 4.0}
    return saved


def test_a_run_saved_with_retired_options_off_resumes_without_them(compose_config):
    saved = with_retired_options(saved_config(compose_config, "trainer.threads=1"))
    resumed = resumed_config(compose_config("resume=somewhere"), saved, ["resume=somewhere"])
    assert "elastic" not in resumed.data.augment and "teacher" not in resumed.trainer
    assert resumed.trainer.threads == 1


@pytest.mark.parametrize(("elastic", "teacher", "named"), [(1.0, None, "elastic"), (0.0, "run", "teacher")])
def test_a_run_saved_with_a_retired_option_on_is_refused_naming_it(compose_config, elastic, teacher, named):
    saved = with_retired_options(saved_config(compose_config), elastic=elastic, teacher=teacher)
    with pytest.raises(ResumeError, match=rf"sets \S*{named}=.*an option this version no longer has"):
        resumed_config(compose_config("resume=somewhere"), saved, ["resume=somewhere"])
