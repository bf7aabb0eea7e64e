"""`mnist-exp-report` on synthetic run directories: the table's numbers, grouping, plots, errors."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from PIL import Image

from mnist_exp.report.cli import main
from mnist_exp.report.plots import row_colour
from mnist_exp.report.runs import collect_runs
from mnist_exp.report.summary import summarise

V1_PARAMS, V3_PARAMS = 420_614, 18_594


def history(test_accs: list[float], seconds: float = 2.0, val: bool = False) -> list[dict]:
    records = []
    for epoch, acc in enumerate(test_accs, start=1):
        record = {
            "epoch": epoch,
            "train_loss": 1.0 / epoch,
            "train_acc": acc - 1,
            "test_loss": 1.2 / epoch,
            "test_acc": acc,
            "lr": 0.001 / epoch,
            "seconds": seconds + epoch,
        }
        if val:
            record |= {"val_loss": 1.1 / epoch, "val_acc": acc - 0.5}
        records.append(record)
    return records


def write_run(
    run_dir: Path,
    model: str = "v3",
    params: int = V3_PARAMS,
    seed: int = 0,
    test_accs: tuple[float, ...] = (97.0, 98.0),
    epochs: int | None = None,
    status: str = "completed",
    lr: float = 0.001,
    val: bool = False,
    device: str = "cpu",
) -> dict:
    """A run dir as training leaves it: .hydra/config.yaml, overrides.yaml and metrics.json."""
    config = {
        "model": {"_target_": "mnist_exp.models.ConvNet", "name": model},
        "optimizer": {"lr": lr},
        "data": {"mean": 0.1307, "std": 0.3081},
        "seed": seed,
        "trainer": {"epochs": epochs or len(test_accs)},
    }
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = [f"model={model}", f"optimizer.lr={lr}", f"seed={seed}"]
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    records = history(list(test_accs), val=val)
    metrics = {
        "model": model,
        "params": params,
        "device": device,
        "epochs": epochs or len(test_accs),
        "status": status,
        "history": records,
        "final_test_acc": records[-1]["test_acc"] if records else None,
        "best_test_acc": max(r["test_acc"] for r in records) if records else None,
        "duration_s": 10.0,
    }
    if val:
        metrics |= {
            "final_val_acc": records[-1]["val_acc"],
            "best_val_acc": max(r["val_acc"] for r in records),
        }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def report_rows(out: Path) -> list[dict]:
    with open(out / "report.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mnist_exp.report", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def two_models(tmp_path) -> Path:
    sweep = tmp_path / "sweep"
    write_run(sweep / "0_model=v1", model="v1", params=V1_PARAMS, test_accs=(97.5, 98.9, 98.7))
    write_run(sweep / "1_model=v3", model="v3", params=V3_PARAMS, test_accs=(96.0, 98.2, 98.4))
    return sweep


def test_csv_holds_each_runs_metrics(two_models, tmp_path):
    assert main([str(two_models), "--out", str(tmp_path / "out")]) == 0
    v1, v3 = report_rows(tmp_path / "out")
    assert (v1["model"], v1["params"], v1["epochs"], v1["n"]) == ("v1", str(V1_PARAMS), "3", "1")
    assert float(v1["final_test_acc_mean"]) == 98.7
    assert not any("best_test" in column for column in v1), "a peak picked on test is no result"
    assert v1["final_test_acc_std"] == "", "no spread from a single seed"
    assert float(v1["seconds_per_epoch_mean"]) == pytest.approx(statistics.fmean([3.0, 4.0, 5.0]))
    assert float(v3["final_test_acc_mean"]) == 98.4
    assert float(v1["params_reduction_pct"]) == 0.0
    assert float(v3["params_reduction_pct"]) == pytest.approx(100 * (1 - V3_PARAMS / V1_PARAMS))


def test_reduction_can_count_against_a_model_the_table_leaves_out(tmp_path):
    """The README's table of the two smallest models counts against V1, whose runs are elsewhere."""
    write_run(tmp_path / "runs" / "0", model="v3", params=V3_PARAMS)
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), "--out", str(out), "--reduction-from", str(V1_PARAMS)]) == 0
    [v3] = report_rows(out)
    assert float(v3["params_reduction_pct"]) == pytest.approx(100 * (1 - V3_PARAMS / V1_PARAMS))
    markdown = (out / "report.md").read_text()
    assert "| 18,594 | 95.6% |" in markdown and "fewer params than 420,614, in percent" in markdown


def test_markdown_shows_the_same_numbers_and_links_the_plots(two_models, tmp_path):
    main([str(two_models), "--out", str(tmp_path / "out")])
    markdown = (tmp_path / "out" / "report.md").read_text()
    v3_line = next(line for line in markdown.splitlines() if line.startswith("| v3"))
    assert "| 18,594 | 95.6% | 3 | 98.40 | 4.0 |" in v3_line, "final test %, then s/epoch: no test peak"
    assert "![loss](loss.png)" in markdown and "![comparison](comparison.png)" in markdown


def test_seeds_of_one_config_share_a_row_with_mean_and_sample_std(tmp_path):
    finals = [97.0, 98.0, 99.5]
    for seed, final in enumerate(finals):
        write_run(tmp_path / "sweep" / f"{seed}_seed={seed}", seed=seed, test_accs=(95.0, final))
    write_run(tmp_path / "sweep" / "3_lr=0.01", seed=0, test_accs=(95.0, 96.0), lr=0.01)
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])
    seeds, other = report_rows(tmp_path / "out")
    assert (seeds["n"], seeds["seeds"], seeds["runs"]) == ("3", "0 1 2", "0_seed=0;1_seed=1;2_seed=2")
    assert float(seeds["final_test_acc_mean"]) == pytest.approx(statistics.fmean(finals))
    assert float(seeds["final_test_acc_std"]) == pytest.approx(statistics.stdev(finals))
    assert (other["n"], other["config"]) == ("1", "optimizer.lr=0.01")
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert f"{statistics.fmean(finals):.2f} ± {statistics.stdev(finals):.2f}" in markdown


def test_a_row_says_which_devices_its_runs_trained_on(tmp_path):
    for seed, device in ((1, "cpu"), (2, "cpu"), (3, "cuda:0")):
        write_run(tmp_path / "mixed" / f"seed{seed}", seed=seed, device=device)
    for seed in (1, 2):
        write_run(tmp_path / "gpu" / f"seed{seed}", seed=seed, lr=0.01, device="cuda:0")
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert [row["device"] for row in report_rows(tmp_path / "out")] == ["cuda", "cpu 2, cuda 1"]
    assert "| cpu 2, cuda 1 |" in (tmp_path / "out" / "report.md").read_text()


def test_unfinished_runs_are_listed_with_their_status(tmp_path):
    write_run(tmp_path / "runs" / "done", test_accs=(97.0, 98.0))
    write_run(tmp_path / "runs" / "going", test_accs=(96.0,), epochs=5, status="running", seed=1)
    (tmp_path / "runs" / "starting" / ".hydra").mkdir(parents=True)
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    by_run = {row["runs"]: row for row in report_rows(tmp_path / "out")}
    assert by_run["going"]["status"] == "running"
    assert (by_run["going"]["epochs_done"], by_run["going"]["epochs"]) == ("1", "5")
    assert by_run["starting"]["status"] == "no metrics yet"
    assert by_run["starting"]["final_test_acc_mean"] == ""
    assert "| 1/5 |" in (tmp_path / "out" / "report.md").read_text()


def test_validation_accuracy_columns_appear_when_runs_record_it(tmp_path):
    write_run(tmp_path / "run", test_accs=(97.0, 98.0), val=True)
    main([str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    (row,) = report_rows(tmp_path / "out")
    assert float(row["final_val_acc_mean"]) == 97.5
    assert "final val %" in (tmp_path / "out" / "report.md").read_text()


def test_report_goes_into_the_named_directory_by_default(two_models):
    main([str(two_models)])
    assert (two_models / "report" / "report.csv").is_file()


def plot_sizes(out: Path) -> set[tuple[str, tuple[int, int]]]:
    sizes = set()
    for name in ("loss.png", "accuracy.png", "lr.png", "comparison.png"):
        with Image.open(out / name) as image:
            sizes.add((image.format, image.size))
    return sizes


def test_plots_are_800_by_500_pngs_plus_a_legend_line_per_row(two_models, tmp_path):
    main([str(two_models), "--out", str(tmp_path / "out")])
    assert plot_sizes(tmp_path / "out") == {("PNG", (800, 500 + 2 * 20))}


def test_twenty_rows_with_long_labels_get_a_legend_below_the_plot_and_colours_of_their_own(tmp_path):
    """Inside the axes such a legend hid the curves, or squeezed the axes to nothing."""
    sweep = tmp_path / "sweep"
    for index in range(20):  # each label wraps onto a second line
        write_run(sweep / str(index), model=f"m{index:02d}_{'x' * 60}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when the layout collapses the axes
        assert main([str(sweep), "--out", str(tmp_path / "out")]) == 0
    assert plot_sizes(tmp_path / "out") == {("PNG", (800, 500 + 20 * 2 * 20))}
    assert len({row_colour(index) for index in range(20)}) == 20


def test_a_path_without_runs_exits_2_with_one_message(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    result = run_report(str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mnist-exp-report: error: {tmp_path / 'empty'}: no runs found (expected a run directory "
        "holding metrics.json or .hydra/, or a directory with such runs below it)"
    ]
    assert not (tmp_path / "empty" / "report").exists()


def test_a_missing_path_exits_2_naming_it(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == (
        f"mnist-exp-report: error: {tmp_path / 'nowhere'}: no such directory "
        "(expected a run or sweep directory)\n"
    )


def test_console_shows_the_table_and_where_the_files_went(two_models, tmp_path, capsys):
    main([str(two_models), "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert "95.6%" in printed and "98.40" in printed
    assert f"report.csv, loss.png, accuracy.png, lr.png, comparison.png to {tmp_path / 'out'}" in printed


def test_readme_table_goes_between_the_markers_with_a_reproducing_command(tmp_path):
    for seed in (1, 2, 3):
        write_run(tmp_path / "runs" / str(seed), seed=seed, test_accs=(98.0, 99.0 + seed / 10))
    readme = tmp_path / "README.md"
    markers = "<!-- mnist-exp-report:start -->\nold table\n<!-- mnist-exp-report:end -->\n"
    readme.write_text(f"# Title\n\nBefore.\n{markers}After.\n")
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nBefore.\n<!-- mnist-exp-report:start -->\n| model |")
    assert text.endswith("<!-- mnist-exp-report:end -->\nAfter.\n")
    assert "old table" not in text
    row = next(line for line in text.splitlines() if line.startswith("| v3"))
    assert "99.20 ± 0.10" in row
    assert "`python -m mnist_exp -m model=v3 optimizer.lr=0.001 trainer.epochs=2 seed=1,2,3`" in row


def test_a_headline_table_is_short_and_says_dataset_accuracy_time_and_command(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path / "runs" / str(seed), seed=seed, test_accs=(98.0, 99.0 + seed / 10))
    readme = tmp_path / "README.md"
    readme.write_text("<!-- mnist-exp-report:headline:start -->\n<!-- mnist-exp-report:headline:end -->\n")
    args = [str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--readme", str(readme)]
    assert main([*args, "--readme-block", "headline", "--headline"]) == 0
    header, _, row = readme.read_text().splitlines()[1:4]
    assert header == "| model | dataset | params | epochs | test % (final) | seeds | min/run | command |"
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:7] == ["v3", "—", "18,594", "2", "99.15 ± 0.07", "1, 2", "0.2 ± 0.0"]
    assert cells[7] == "`python -m mnist_exp -m model=v3 optimizer.lr=0.001 trainer.epochs=2 seed=1,2`"
    assert "minutes per run on cpu" in readme.read_text()


def write_provenance(run_dir: Path, torch_version: str, device_name: str) -> None:
    attempt = {"torch": torch_version, "device": "cpu", "device_name": device_name, "ended_as": "completed"}
    (run_dir / "provenance.json").write_text(json.dumps({"attempts": [attempt]}))


def test_rows_show_their_torch_and_device_and_a_mixed_table_is_warned_of(tmp_path, capsys):
    write_run(tmp_path / "runs" / "0", model="v1", params=V1_PARAMS)
    write_run(tmp_path / "runs" / "1", model="v3")
    write_provenance(tmp_path / "runs" / "0", "2.14.1", "AMD EPYC")
    write_provenance(tmp_path / "runs" / "1", "2.11.0", "Intel Xeon")

    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0

    rows = {row["model"]: row for row in report_rows(tmp_path / "out")}
    assert (rows["v1"]["torch"], rows["v1"]["device"]) == ("2.14.1", "cpu (AMD EPYC)")
    assert (rows["v3"]["torch"], rows["v3"]["device"]) == ("2.11.0", "cpu (Intel Xeon)")
    warnings = capsys.readouterr().err
    assert "warning: the table compares runs from different torch versions: 2.11.0, 2.14.1" in warnings
    assert (
        "warning: the table compares runs on different devices: cpu (AMD EPYC), cpu (Intel Xeon)" in warnings
    )


def test_runs_of_one_torch_on_one_device_give_no_warning(two_models, tmp_path, capsys):
    for run in ("0_model=v1", "1_model=v3"):
        write_provenance(two_models / run, "2.14.1", "AMD EPYC")
    assert main([str(two_models), "--out", str(tmp_path / "out")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_reproducing_command_pins_the_epochs_a_preset_gave_but_keeps_an_explicit_count(tmp_path):
    """A preset lengthened after the run must not change what the row's command trains."""
    write_run(tmp_path / "preset", seed=1, epochs=40)
    explicit = tmp_path / "explicit"
    write_run(explicit, seed=1, epochs=60)
    (explicit / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["model=v3", "trainer.epochs=60"]))
    (preset,) = collect_runs([tmp_path / "preset"])
    (given,) = collect_runs([explicit])
    assert (
        summarise([preset])[0].command
        == "python -m mnist_exp model=v3 optimizer.lr=0.001 trainer.epochs=40 seed=1"
    )
    assert summarise([given])[0].command == "python -m mnist_exp model=v3 trainer.epochs=60 seed=1"


def test_an_out_dir_that_cannot_be_written_is_an_error_naming_it(two_models, tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the report's directory should be")
    assert main([str(two_models), "--out", str(blocker)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"mnist-exp-report: error: cannot write {blocker}/") and "(File exists" in error


def test_readme_without_markers_is_an_error_and_left_alone(two_models, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# No markers\n")
    assert main([str(two_models), "--out", str(tmp_path / "out"), "--readme", str(readme)]) == 2
    assert "no <!-- mnist-exp-report:start -->" in capsys.readouterr().err
    assert readme.read_text() == "# No markers\n"


def test_readme_block_fills_its_named_block_and_leaves_the_main_table_alone(two_models, tmp_path):
    """A later round's runs get a table of their own without the runs behind the main one."""
    readme = tmp_path / "README.md"
    main_table = "<!-- mnist-exp-report:start -->\nmain table\n<!-- mnist-exp-report:end -->\n"
    block = "<!-- mnist-exp-report:round12:start -->\nold\n<!-- mnist-exp-report:round12:end -->\n"
    readme.write_text(f"# Title\n{main_table}Between.\n{block}After.\n")
    args = [str(two_models), "--out", str(tmp_path / "out"), "--readme", str(readme)]
    assert main([*args, "--readme-block", "round12"]) == 0
    text = readme.read_text()
    filled = "<!-- mnist-exp-report:round12:start -->\n| model |"
    assert text.startswith(f"# Title\n{main_table}Between.\n{filled}")
    assert text.endswith("<!-- mnist-exp-report:round12:end -->\nAfter.\n")
    assert "\nold\n" not in text


def test_readme_block_that_is_missing_is_an_error_and_left_alone(two_models, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- mnist-exp-report:start -->\nmain\n<!-- mnist-exp-report:end -->\n")
    before = readme.read_text()
    args = [str(two_models), "--out", str(tmp_path / "out"), "--readme", str(readme)]
    assert main([*args, "--readme-block", "round12"]) == 2
    assert "has no <!-- mnist-exp-report:round12:start --> ... " in capsys.readouterr().err
    assert readme.read_text() == before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--readme-block", "x"], "--readme-block needs --readme FILE"),
        (["--readme", "README.md", "--readme-block", "a -->"], "use letters, digits, '_' and '-' only"),
        (["--reduction-from", "0"], "--reduction-from 0: a parameter count, 1 or more"),
        (["--headline"], "--headline needs --readme FILE"),
        (["--reduction-from", "many"], "--reduction-from: invalid int value: 'many'"),
    ],
)
def test_bad_readme_block_or_reduction_count_is_refused(two_models, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main([str(two_models), "--out", str(tmp_path / "out"), *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_readme_that_does_not_exist_is_an_error(two_models, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "README.md"
    assert main([str(two_models), "--out", str(tmp_path / "out"), "--readme", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not missing.exists()
