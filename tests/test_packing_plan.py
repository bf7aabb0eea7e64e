"""Which jobs of a sweep pack together, and the reason given for each job that cannot."""

from __future__ import annotations

from omegaconf import OmegaConf

from mnist_exp.packing.plan import ALONE_IN_ITS_SHARE, Group, differences_beyond_seed, plan_groups


def job(compose_config, *overrides: str) -> dict:
    cfg = compose_config("model=tiny_5k", *overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def test_jobs_alike_but_for_their_seed_pack_in_sweep_order_up_to_max_copies(compose_config):
    configs = [
        job(compose_config, f"optimizer.lr={lr}", f"seed={seed}") for lr in (0.1, 0.2) for seed in (1, 2, 3)
    ]
    assert plan_groups(configs, max_copies=8) == [Group((0, 1, 2)), Group((3, 4, 5))]
    assert plan_groups(configs, max_copies=2) == [
        Group((0, 1)),
        Group((2,), ALONE_IN_ITS_SHARE),
        Group((3, 4)),
        Group((5,), ALONE_IN_ITS_SHARE),
    ]


def test_seeds_over_max_copies_split_into_the_fewest_groups_as_even_as_they_can_be(compose_config):
    configs = [job(compose_config, f"seed={seed}") for seed in range(9)]
    assert [g.jobs for g in plan_groups(configs, max_copies=8)] == [(0, 1, 2, 3, 4), (5, 6, 7, 8)]
    assert [g.jobs for g in plan_groups(configs, max_copies=3)] == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert [g.jobs for g in plan_groups(configs, max_copies=4)] == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert [g.jobs for g in plan_groups(configs[:3], max_copies=1)] == [(0,), (1,), (2,)]


def test_workers_get_a_group_each_where_there_are_seeds_enough(compose_config):
    configs = [job(compose_config, f"seed={seed}") for seed in range(9)]
    assert [g.jobs for g in plan_groups(configs[:4], max_copies=8, workers=2)] == [(0, 1), (2, 3)]
    assert [g.jobs for g in plan_groups(configs, max_copies=8, workers=2)] == [(0, 1, 2, 3, 4), (5, 6, 7, 8)]
    assert [g.jobs for g in plan_groups(configs, max_copies=2, workers=2)] == [
        (0, 1), (2, 3), (4, 5), (6, 7), (8,)
    ]  # fmt: skip
    assert plan_groups(configs[:2], max_copies=8, workers=3) == [
        Group((0,), ALONE_IN_ITS_SHARE),
        Group((1,), ALONE_IN_ITS_SHARE),
    ]


def test_a_job_with_no_seed_sibling_or_an_option_that_cannot_pack_runs_alone_saying_why(compose_config):
    lone = [job(compose_config, "optimizer.lr=0.1"), job(compose_config, "optimizer.lr=0.2")]
    reason = "no other job of this sweep differs from it only in seed"
    assert plan_groups(lone, 8) == [Group((0,), reason), Group((1,), reason)]
    cases = {
        "trainer.compile=true": "trainer.compile=true compiles one run's network",
        "trainer.cuda_graphs=true": "trainer.cuda_graphs=true captures one run's step",
        "trainer.precision=fp16": "trainer.precision=fp16: one loss scale",
    }
    for override, expected in cases.items():
        groups = plan_groups([job(compose_config, override, f"seed={seed}") for seed in (1, 2)], 8)
        assert [group.jobs for group in groups] == [(0,), (1,)], override
        assert all(group.alone_because.startswith(expected) for group in groups), groups


def test_an_optimizer_that_mixes_elements_does_not_pack(compose_config):
    configs = [job(compose_config, f"seed={seed}") for seed in (1, 2)]
    for config in configs:
        config["optimizer"]["_target_"] = "torch.optim.LBFGS"
    assert all("torch.optim.LBFGS may mix copies" in g.alone_because for g in plan_groups(configs, 8))


def test_saved_configs_are_compared_key_by_key_but_seed_and_resume(compose_config):
    first, second = job(compose_config, "seed=1", "resume=a"), job(compose_config, "seed=2", "resume=b")
    assert differences_beyond_seed([first, second]) == []
    second["optimizer"]["lr"] = 0.5
    assert differences_beyond_seed([first, second]) == ["optimizer.lr"]


def test_max_copies_or_workers_below_one_are_refused_with_their_key_and_a_non_zero_exit(tmp_path):
    from tests.conftest import run_cli

    cases = {
        "max_copies=0": "max_copies=0: pack at least 1 copy",
        "max_copies=two": "max_copies='two': pack at least 1 copy",
        "workers=0": "workers=0: train in at least 1 process",
        "workers=two": "workers='two': train in at least 1 process",
    }
    for setting, message in cases.items():
        result = run_cli("-m", "hydra/launcher=packed", "seed=1,2", f"hydra.launcher.{setting}", cwd=tmp_path)
        assert result.returncode == 2, result.stderr[-3000:]
        assert f"Error: hydra.launcher.{message}" in result.stderr
        assert "Error in call to target" not in result.stderr, "one message, not Hydra's wrapping"
        assert not (tmp_path / "multirun").exists(), "refused before the sweep's directory is made"
