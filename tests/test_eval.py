"""`mnist-exp-eval` on a real tiny run: it gives back the run's own numbers, writes files that agree
with each other, and refuses bad input with one line and nothing written."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mnist_exp.eval import main
from mnist_exp.inference.checkpoint import load_trained_model
from tests.conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("eval_run")]  # one worker trains the run once
QUICK = ["model=tiny_5k", "data.train_subset=2000", "data.val_size=1000", "data.batch_size=16",
         "trainer.epochs=1", "trainer.device=cpu", "trainer.threads=1"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """As in test_predict: on a busy 2-core machine two threads fight over the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A completed fp32 CPU run that held a validation split."""
    cwd = tmp_path_factory.mktemp("eval")
    result = run_cli(*QUICK, f"hydra.run.dir={cwd / 'run'}", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "run"


@pytest.fixture(scope="module")
def evaluated(run_dir) -> tuple[Path, str]:
    """last.pt evaluated with no overrides: its folder and what was printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([str(run_dir / "checkpoints" / "last.pt")]) == 0
    return run_dir / "eval" / "last_mnist", printed.getvalue()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_last_pt_on_its_test_set_gives_back_the_runs_final_test_acc(run_dir, evaluated):
    folder, _ = evaluated
    metrics, evaluation = read_json(run_dir / "metrics.json"), read_json(folder / "evaluation.json")
    test = evaluation["splits"]["test"]
    assert test["images"] == 10_000 and test["accuracy"] == metrics["final_test_acc"]
    assert test["loss"] == pytest.approx(metrics["history"][-1]["test_loss"], abs=1e-5)
    assert test["confusion"] == read_json(run_dir / "confusion.json")["counts"]


def test_the_runs_validation_split_gives_back_its_final_val_acc(run_dir, evaluated):
    folder, _ = evaluated
    metrics, evaluation = read_json(run_dir / "metrics.json"), read_json(folder / "evaluation.json")
    validation = evaluation["splits"]["validation"]
    assert list(evaluation["splits"]) == ["validation", "test"]
    assert validation["images"] == 1000 and validation["accuracy"] == metrics["final_val_acc"]


def test_the_files_agree_with_each_other(run_dir, evaluated):
    folder, _ = evaluated
    evaluation = read_json(folder / "evaluation.json")
    assert evaluation["checkpoint"] == str(run_dir / "checkpoints" / "last.pt")
    assert (evaluation["status"], evaluation["dataset"], evaluation["device"]) == (
        "completed",
        "mnist",
        "cpu",
    )
    assert evaluation["selected_on"] is None and evaluation["evaluated_utc"].endswith("Z")
    for split, numbers in evaluation["splits"].items():
        counts = numbers["confusion"]
        assert sum(map(sum, counts)) == numbers["images"]
        assert sum(counts[i][i] for i in range(10)) / numbers["images"] * 100 == pytest.approx(
            numbers["accuracy"]
        )
        assert numbers["per_class_accuracy"] == pytest.approx(
            {str(i): 100 * counts[i][i] / sum(counts[i]) for i in range(10)}
        )
        confusion = read_json(folder / f"confusion_{split}.json")
        assert confusion["counts"] == counts and confusion["classes"] == [str(i) for i in range(10)]
        with Image.open(folder / f"confusion_{split}.png") as picture:
            assert picture.format == "PNG" and picture.mode == "RGB"


def test_the_table_shows_each_split_and_where_it_was_written(evaluated):
    folder, printed = evaluated
    assert "validation" in printed and "test" in printed and "accuracy %" in printed
    assert printed.rstrip().splitlines()[-1] == f"Written to {folder}"


def test_a_run_dir_and_out_write_its_chosen_checkpoint_there(run_dir, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    assert main([str(run_dir), f"out={out}", "data=mnist", "data.test_batch_size=500"]) == 0
    trained = load_trained_model(run_dir)
    evaluation = read_json(out / "evaluation.json")
    assert evaluation["checkpoint"] == str(trained.path)
    assert evaluation["selected_on"] == getattr(trained, "selected_on", None)
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion_test.json", "confusion_test.png", "confusion_validation.json", "confusion_validation.png",
        "evaluation.json",
    ]  # fmt: skip
    assert capsys.readouterr().out.rstrip().endswith(f"Written to {out}")


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("mnist-exp-eval: error: ") and not captured.out
    return line.removeprefix("mnist-exp-eval: error: ")


def test_an_mnist_model_on_fashion_mnist_is_refused_before_anything_is_written(run_dir, capsys):
    last = run_dir / "checkpoints" / "last.pt"
    assert main([str(last), "data=fashion_mnist"]) == 2
    assert one_error_line(capsys) == (
        f"{last} was trained on mnist (classes 0, 1, 2, 3, 4, 5, 6, 7, 8, 9); fashion_mnist has other "
        "classes (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot): "
        "evaluate on a dataset with the same classes, e.g. data=mnist"
    )
    assert not (run_dir / "eval" / "last_fashion_mnist").exists()


@pytest.mark.parametrize(
    "words, message",
    [
        (["trainer.epochs=5"], "unknown override key 'trainer.epochs': the keys are data, data.root, "),
        (["fashion"], "'fashion' is not a key=value override: the keys are data, "),
        (["data=cifar10"], "data='cifar10' is not allowed: one of mnist, fashion_mnist"),
        (["data.test_batch_size=0"], "data.test_batch_size='0' is not allowed: a whole number >= 1"),
        (["trainer.device=gpu"], "trainer.device='gpu' is not allowed: one of auto, cpu, cuda, cuda:N, mps"),
        (["data=mnist", "data=mnist"], "data= is given twice (data=mnist and data=mnist): give it once"),
    ],
    ids=["unknown-key", "not-key-value", "unknown-dataset", "batch-size-0", "unknown-device", "given-twice"],
)
def test_a_bad_override_exits_2_naming_what_is_allowed(run_dir, tmp_path, capsys, words, message):
    assert main([str(run_dir), *words, f"out={tmp_path / 'out'}"]) == 2
    assert one_error_line(capsys).startswith(message)
    assert not (tmp_path / "out").exists()


def test_a_missing_path_or_a_cut_short_checkpoint_exits_2_naming_it(run_dir, tmp_path, capsys):
    assert main([str(tmp_path / "gone")]) == 2
    assert one_error_line(capsys) == f"{tmp_path / 'gone'}: no such checkpoint file or run directory"
    corrupt = tmp_path / "last.pt"
    corrupt.write_bytes((run_dir / "checkpoints" / "last.pt").read_bytes()[:5000])
    assert main([str(corrupt)]) == 2
    assert one_error_line(capsys).startswith(f"{corrupt} is not a PyTorch checkpoint")
    assert sorted(tmp_path.iterdir()) == [corrupt]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_for_where_there_is_none_exits_2_as_training_does(run_dir, capsys):
    assert main([str(run_dir), "trainer.device=cuda"]) == 2
    assert one_error_line(capsys).startswith("trainer.device=cuda is not available on this machine (torch ")


def test_the_module_and_the_console_script_answer_as_a_user_types_them(tmp_path):
    helped = subprocess.run(
        [sys.executable, "-m", "mnist_exp.eval", "--help"], capture_output=True, text=True, timeout=120
    )
    assert helped.returncode == 0 and "data.test_batch_size=..." in helped.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "mnist_exp.eval", str(tmp_path), "epochs=1"], capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("mnist-exp-eval: error: unknown override key 'epochs'")
