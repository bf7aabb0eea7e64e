"""TensorBoard as a person meets it: a real 2-job sweep served by TensorBoard itself, read back
through its HTTP API (the one its web pages use), plus the pieces that decide what it shows."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from tensorboard import program

from mnist_exp.monitor.tensorboard import config_sections, dashboard_hparams
from mnist_exp.rundir.job_names import set_keys
from tests.conftest import run_cli

SWEEP = ["-m", "optimizer.lr=0.001,0.002", "trainer.epochs=2", "data.train_subset=512", "data.val_size=256",
         "model=tiny_5k", "trainer.device=cpu", "trainer.threads=1", "hydra.sweep.dir=sweep"]  # fmt: skip
pytestmark = pytest.mark.filterwarnings("ignore:html5lib.s sanitizer is deprecated:DeprecationWarning")
STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def test_the_command_lines_keys_are_hparams_but_not_how_the_run_ran():
    overrides = ["optimizer.lr=0.01", "+trainer.epochs=3", "hydra.run.dir=x", "resume=y", "model=v2"]
    assert set_keys(overrides) == ["optimizer.lr", "trainer.epochs", "model"]


def test_hparams_are_the_choices_the_set_keys_and_a_few_core_numbers(compose_config):
    cfg = compose_config("optimizer=sgd", "optimizer.momentum=0.8", "model=v2")
    choices = {
        "model": "v2",
        "optimizer": "sgd",
        "scheduler": "cosine",
        "data": "mnist",
        "data/augment": "none",
    }
    keys = set_keys(["optimizer=sgd", "optimizer.momentum=0.8", "model=v2"])
    values = dashboard_hparams(cfg, choices, keys, 99_746)
    assert values == {
        "model": "v2", "optimizer": "sgd", "scheduler": "cosine", "data": "mnist", "data/augment": "none",
        "experiment": "none", "optimizer.momentum": 0.8, "optimizer.lr": 0.05, "optimizer.weight_decay": 5e-4,
        "data.batch_size": 128, "trainer.epochs": 20, "seed": 0, "params": 99_746,
    }  # fmt: skip


def test_the_config_text_is_one_section_per_group_with_a_conv_block_per_line(compose_config):
    sections = config_sections(compose_config("model=v3"))
    assert list(sections) == ["run", "model", "optimizer", "scheduler", "data", "trainer"]
    model = sections["model"].splitlines()
    assert model[0] == "```yaml" and model[-1] == "```"
    assert sum(line.startswith("- {channels:") for line in model) == 6
    assert "seed: 0" in sections["run"]


@pytest.fixture(scope="module")
def served_sweep(tmp_path_factory) -> tuple[Path, str]:
    """A real 2-job sweep, and the URL of a TensorBoard serving it (Python data layer, polled
    every second), once both runs are loaded."""
    cwd = tmp_path_factory.mktemp("dashboards")
    result = run_cli(*SWEEP, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", str(cwd / "sweep"), "--port", "0", "--load_fast", "false",
                          "--reload_interval", "1"])  # fmt: skip
    url = board.launch().rstrip("/")
    deadline = time.monotonic() + 60
    while len(api(url, "/data/runs")) < 2 or not api(url, "/data/plugin/hparams/experiment", {}).get(
        "hparamInfos"
    ):
        assert time.monotonic() < deadline, "TensorBoard did not load both runs within 60 s"
        time.sleep(0.5)
    return cwd / "sweep", url


def api(url: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def job_dirs(sweep_dir: Path) -> list[Path]:
    return [path for path in sweep_dir.iterdir() if (path / "metrics.json").is_file()]


def test_each_job_is_a_run_named_by_what_sets_it_apart(served_sweep):
    sweep_dir, url = served_sweep
    assert sorted(api(url, "/data/runs")) == sorted(path.name for path in job_dirs(sweep_dir))
    assert sorted(api(url, "/data/runs")) == ["0_lr=0.001", "1_lr=0.002"]


def test_the_first_charts_are_accuracy_and_loss_and_none_is_the_epoch_number(served_sweep):
    _, url = served_sweep
    for tags in api(url, "/data/plugin/scalars/tags").values():
        names = sorted(tags)
        assert names[:6] == [
            f"{kind}/{split}" for kind in ("accuracy", "loss") for split in ("test", "train", "val")
        ]
        assert "epoch" not in names and not any(name.startswith("hparam") for name in names)


def test_custom_scalars_put_train_val_and_test_on_one_chart(served_sweep):
    _, url = served_sweep
    charts = {
        chart["title"]: chart["multiline"]["tag"]
        for category in api(url, "/data/plugin/custom_scalars/layout")["category"]
        for chart in category["chart"]
    }
    assert charts["loss: train, val, test"] == ["^loss/train$", "^loss/val$", "^loss/test$"]
    assert charts["accuracy %: train, val, test"] == ["^accuracy/train$", "^accuracy/val$", "^accuracy/test$"]
    assert {"learning rate", "batch loss"} <= set(charts)


def test_hparams_columns_lead_with_the_swept_key_and_leave_the_rest_to_the_config_text(served_sweep):
    _, url = served_sweep
    experiment = api(url, "/data/plugin/hparams/experiment", {})
    columns = [info["name"] for info in experiment["hparamInfos"]]
    assert columns[0] == "optimizer.lr", "TensorBoard puts the columns that differ first"
    assert {
        "model",
        "optimizer",
        "scheduler",
        "data",
        "experiment",
        "params",
        "status",
        "epochs_done",
    } <= set(columns)
    assert {"data.augment.rotation", "trainer.compile", "model.blocks"}.isdisjoint(columns)
    assert {"trainer.threads", "data.train_subset"}.isdisjoint(columns), "set for every job alike"
    assert len(columns) <= 16
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"accuracy/test", "loss/test", "accuracy/val", "summary/duration_s"} <= metrics


def test_each_runs_hparams_row_holds_its_final_numbers(served_sweep):
    sweep_dir, url = served_sweep
    request = {"allowedStatuses": STATUSES, "colParams": [], "startIndex": 0, "sliceSize": 10}
    groups = api(url, "/data/plugin/hparams/session_groups", request)["sessionGroups"]
    recorded = {path.name: json.loads((path / "metrics.json").read_text()) for path in job_dirs(sweep_dir)}
    assert sorted(group["name"] for group in groups) == sorted(recorded)
    for group in groups:
        metrics = recorded[group["name"]]
        values = {value["name"]["tag"]: value["value"] for value in group["metricValues"]}
        assert values["accuracy/test"] == pytest.approx(metrics["final_test_acc"])
        assert values["accuracy/val"] == pytest.approx(metrics["final_val_acc"])
        assert values["summary/duration_s"] == pytest.approx(metrics["duration_s"], rel=0.05)
        assert group["hparams"]["status"] == "completed" and group["hparams"]["epochs_done"] == 2
    assert sorted(group["hparams"]["optimizer.lr"] for group in groups) == [0.001, 0.002]


def test_the_text_page_holds_the_command_provenance_and_config_by_section(served_sweep):
    sweep_dir, url = served_sweep
    run = job_dirs(sweep_dir)[0].name
    tags = api(url, "/data/plugin/text/tags")[run]
    assert {"run/command/text_summary", "run/provenance/text_summary", "config/model/text_summary"} <= set(
        tags
    )
    command = api(url, f"/data/plugin/text/text?run={run}&tag=run/command/text_summary")[0]["text"]
    assert "optimizer.lr=0.001,0.002" in command and "<code>optimizer.lr=" in command
    provenance = api(url, f"/data/plugin/text/text?run={run}&tag=run/provenance/text_summary")[0]["text"]
    assert "torch" in provenance and "<table>" in provenance
