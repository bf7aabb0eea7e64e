"""experiments/validate_then_test.py: pilots on validation, the winner measured on test."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_exp.config.validation import validate

SCRIPT = Path(__file__).parent.parent / "experiments" / "validate_then_test.py"
spec = importlib.util.spec_from_file_location("validate_then_test", SCRIPT)
vtt = sys.modules["validate_then_test"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vtt)

PLAN = {
    "common": ["trainer.threads=1"],
    "val_size": 5000,
    "pilot_seeds": [0, 7],
    "groups": [{"name": "v3_plus", "base": ["experiment=v3_plus"], "seeds": [1, 2],
                "candidates": {"preset": [], "strong": ["data/augment=strong"]}}],
}  # fmt: skip


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def finished(job, status="completed", **metrics):
    job.run_dir.mkdir(parents=True)
    (job.run_dir / "metrics.json").write_text(json.dumps({"status": status, **metrics}))


def test_pilots_hold_out_validation_and_measured_runs_train_on_everything(tmp_path):
    pilots = vtt.pilot_jobs(PLAN, 0, tmp_path)
    assert [(p.label, p.run_dir.name) for p in pilots] == [
        ("preset", "preset_s0"), ("strong", "strong_s0"), ("preset", "preset_s7"), ("strong", "strong_s7"),
    ]  # fmt: skip
    assert pilots[1].overrides == [
        "experiment=v3_plus", "data/augment=strong", "trainer.threads=1", "seed=0", "data.val_size=5000",
    ]  # fmt: skip
    measured = vtt.measured_jobs(PLAN, 0, tmp_path, ["data/augment=strong"])
    assert [m.run_dir for m in measured] == [tmp_path / "v3_plus" / "seed1", tmp_path / "v3_plus" / "seed2"]
    assert not any("val_size" in o for m in measured for o in m.overrides)
    assert measured[1].command()[-1] == f"hydra.run.dir={tmp_path / 'v3_plus' / 'seed2'}"


def test_the_best_mean_validation_accuracy_wins_and_failed_pilots_do_not_count(tmp_path):
    pilots = vtt.pilot_jobs(PLAN, 0, tmp_path)
    for job, acc in zip(pilots, [99.40, 99.60, 99.50, 99.40], strict=True):
        finished(job, final_val_acc=acc)
    winner, scores = vtt.choose(PLAN["groups"][0]["candidates"], pilots)
    assert winner == "strong" and scores == pytest.approx({"preset": 99.45, "strong": 99.50})
    (pilots[1].run_dir / "metrics.json").write_text(json.dumps({"status": "diverged", "final_val_acc": 99.6}))
    winner, scores = vtt.choose(PLAN["groups"][0]["candidates"], pilots)
    assert winner == "preset" and scores["strong"] == pytest.approx(99.40)


def test_a_tie_goes_to_the_candidate_listed_first(tmp_path):
    pilots = vtt.pilot_jobs(PLAN, 0, tmp_path)
    for job in pilots:
        finished(job, final_val_acc=99.5)
    assert vtt.choose(PLAN["groups"][0]["candidates"], pilots)[0] == "preset"


@pytest.mark.parametrize(
    "plan_text,message",
    [
        (None, "not a readable plan (FileNotFoundError"),
        ("{not json", "not a readable plan (JSONDecodeError"),
        ('{"groups": [{"seeds": [1]}]}', "missing ['group 0: name', 'group 0: base']"),
        ('{"groups": [{"name": "a", "base": []}]}', "missing ['group 0: seeds']"),
        (
            '{"groups": [{"name": "a", "base": [], "seeds": [1]}, {"name": "a", "base": [], "seeds": [2]}]}',
            "group names repeat",
        ),
    ],
)
def test_a_bad_plan_is_one_clear_error_before_anything_runs(tmp_path, plan_text, message):
    plan = tmp_path / "plan.json"
    if plan_text is not None:
        plan.write_text(plan_text)
    result = run_script(plan, "--out", tmp_path / "out")
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_zero_workers_is_refused_rather_than_waiting_forever(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    result = run_script(plan, "--out", tmp_path / "out", "--workers", "0")
    assert result.returncode == 2 and "--workers 0: at least 1 job must run at a time" in result.stderr
    assert not (tmp_path / "out").exists()


PLANS = sorted((SCRIPT.parent / "plans").glob("*.json"))
# Options that left the package (experiments/README.md, "Options retired from the package"): the
# plans that tried them stay as records of those rounds, and no longer run.
RETIRED_OPTIONS = ("trainer.teacher", "data.augment.elastic", "model=separable_")


def uses_a_retired_option(plan_path: Path) -> bool:
    return any(option in plan_path.read_text() for option in RETIRED_OPTIONS)


def test_only_the_plans_of_retired_options_are_left_unrunnable():
    retired = [plan.name for plan in PLANS if uses_a_retired_option(plan)]
    assert retired == [
        "cpu_2026-11-26_round7_separable.json",
        "cpu_2026-11-27_round16_distill_pilots.json",
        "cpu_2026-11-27_round16b_teacher_temperature.json",
        "cpu_2026-11-27_round16c_plain_teacher.json",
        "cpu_2026-11-27_round17_strong_teacher_pilots.json",
        "cpu_2026-11-27_round18_elastic.json",
    ]


@pytest.mark.parametrize(
    "plan_path", [plan for plan in PLANS if not uses_a_retired_option(plan)], ids=lambda p: p.name
)
def test_every_committed_plan_still_composes(compose_config, tmp_path, plan_path):
    """The plans behind the README's numbers stay runnable as the config groups change. Jobs that
    differ only in their seed compose alike, so each distinct rest is composed once."""
    plan = json.loads(plan_path.read_text())
    jobs = [job for index in range(len(plan["groups"])) for job in
            vtt.pilot_jobs(plan, index, tmp_path) + vtt.measured_jobs(plan, index, tmp_path, [])]  # fmt: skip
    assert jobs, "a plan with no jobs"
    seedless = {tuple(o for o in job.overrides if not o.startswith("seed=")) for job in jobs}
    for overrides in seedless:
        validate(compose_config(*overrides))  # raises ConfigError as the CLI would refuse it
