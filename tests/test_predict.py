"""`mnist-exp-predict` on real MNIST test digits saved as pictures of other sizes and polarities."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from PIL import Image

from mnist_exp.data import ensure_named, load_split
from mnist_exp.data.tensors import normalise
from mnist_exp.inference.checkpoint import load_trained_model
from mnist_exp.predict import main, predict
from mnist_exp.rundir.checkpoints import save_checkpoint

MEAN, STD = 0.1307, 0.3081
DIGITS = 50
CONFIG = {
    "model": {
        "_target_": "mnist_exp.models.ConvNet",
        "_convert_": "all",
        "name": "tiny",
        "blocks": [
            {"channels": 8, "pool": True},
            {"channels": 16, "pool": True},
            {"channels": 32, "pool": True},
        ],
        "hidden": [],
        "dropout": 0.0,
    },
    "data": {"mean": MEAN, "std": STD},
    "seed": 0,
}


def train_tiny_model(count: int = 5000, epochs: int = 2) -> torch.nn.Module:
    """A small ConvNet fitted to a few thousand training digits (about 90% test accuracy).

    One thread: on a busy 2-core machine, torch's default two threads fight over the cores and
    take several times longer on these tiny batches.
    """
    images, labels = load_split(ensure_named("mnist"), train=True)
    inputs, targets = normalise(images[:count], MEAN, STD), labels[:count]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = instantiate(CONFIG["model"])
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(epochs):
            for start in range(0, count, 64):
                loss = F.cross_entropy(model(inputs[start : start + 64]), targets[start : start + 64])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory as training leaves it without a validation split: the tiny model as
    checkpoints/last.pt."""
    run = tmp_path_factory.mktemp("run")
    state = {
        "model": train_tiny_model().state_dict(),
        "optimizer": {},
        "epoch": 2,
        "step": 94,
        "config": CONFIG,
    }
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    return run


@pytest.fixture(scope="module")
def test_digits() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_split(ensure_named("mnist"), train=False)
    return images[:DIGITS], labels[:DIGITS]


def save_as_picture(digit: np.ndarray, path: Path, size: int, dark_on_light: bool, canvas: int) -> None:
    """The digit scaled to `size` pixels, placed off-centre on a `canvas`-pixel square."""
    picture = np.zeros((canvas, canvas), dtype=np.uint8)
    scaled = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC))
    offset = (canvas - size) // 3
    picture[offset : offset + size, offset : offset + size] = scaled
    Image.fromarray(255 - picture if dark_on_light else picture).save(path)


def save_on_transparent_canvas(digit: np.ndarray, path: Path) -> None:
    """Black strokes whose opacity is the digit, on a transparent background, as drawing apps save."""
    strokes = Image.fromarray(digit).resize((96, 96), Image.Resampling.BICUBIC)
    picture = Image.new("RGBA", strokes.size, (0, 0, 0, 0))
    picture.putalpha(strokes)
    picture.save(path)


@pytest.mark.parametrize(
    "size, dark_on_light, canvas, suffix",
    [
        (28, False, 28, "png"),
        (64, True, 64, "png"),
        (120, False, 200, "png"),
        (150, True, 200, "png"),
        (80, True, 100, "jpg"),
    ],
    ids=[
        "28px-light-on-dark",
        "64px-dark-on-light",
        "200px-light-on-dark",
        "200px-dark-on-light",
        "100px-jpeg",
    ],
)
def test_pictures_of_mnist_digits_get_the_models_prediction_on_the_original(
    run_dir, test_digits, tmp_path, size, dark_on_light, canvas, suffix
):
    images, _ = test_digits
    files = []
    for index, digit in enumerate(images.numpy()):
        files.append(tmp_path / f"{index}.{suffix}")
        save_as_picture(digit, files[-1], size, dark_on_light, canvas)
    trained = load_trained_model(run_dir)
    with torch.inference_mode():
        expected = trained.model(normalise(images, MEAN, STD)).argmax(1).tolist()
    predicted = [p.digit for p in predict(trained, files)]
    agreement = np.mean([a == b for a, b in zip(predicted, expected, strict=True)])
    assert agreement >= 0.9, f"only {agreement:.0%} agree"


def test_transparent_background_counts_as_white_paper(run_dir, test_digits, tmp_path):
    images, _ = test_digits
    files = [tmp_path / f"{index}.png" for index in range(10)]
    for file, digit in zip(files, images[:10].numpy(), strict=True):
        save_on_transparent_canvas(digit, file)
    trained = load_trained_model(run_dir)
    with torch.inference_mode():
        expected = trained.model(normalise(images[:10], MEAN, STD)).argmax(1).tolist()
    predicted = [p.digit for p in predict(trained, files)]
    assert sum(a == b for a, b in zip(predicted, expected, strict=True)) >= 9


@pytest.fixture(scope="module")
def picture_dir(tmp_path_factory, test_digits) -> Path:
    folder = tmp_path_factory.mktemp("pictures")
    for index, digit in enumerate(test_digits[0][:3].numpy()):
        save_as_picture(digit, folder / f"digit_{index}.png", 64, True, 64)
    (folder / "notes.txt").write_text("not a picture, and skipped in a directory")
    return folder


def test_table_shows_digit_probability_and_runner_up(run_dir, picture_dir, capsys):
    assert main([str(run_dir), str(picture_dir)]) == 0
    printed = capsys.readouterr().out
    assert "runner-up" in printed and "last.pt" in printed
    assert all(f"digit_{index}.png" in printed for index in range(3))


def test_json_gives_each_images_digit_and_probabilities(run_dir, picture_dir, capsys):
    assert main([str(run_dir), str(picture_dir), "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    assert [Path(p["file"]).name for p in predictions] == ["digit_0.png", "digit_1.png", "digit_2.png"]
    for p in predictions:
        assert p["digit"] == int(np.argmax(p["probabilities"]))
        assert p["probability"] >= p["runner_up_probability"] and p["digit"] != p["runner_up"]
        assert sum(p["probabilities"]) == pytest.approx(1, abs=1e-4)


def copy_run(run_dir: Path, into: Path, best_history: list[dict] | None) -> Path:
    """`run_dir`'s last.pt, and a best.pt with `best_history` unless that is None."""
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    save_checkpoint(into / "checkpoints" / "last.pt", state)
    if best_history is not None:
        save_checkpoint(into / "checkpoints" / "best.pt", state | {"history": best_history})
    return into


def test_a_run_dir_means_best_pt_only_where_validation_chose_it(run_dir, tmp_path):
    on_validation = copy_run(run_dir, tmp_path / "val", [{"epoch": 1, "val_acc": 90.0, "test_acc": 89.0}])
    trained = load_trained_model(on_validation)
    assert (trained.path.name, trained.selected_on) == ("best.pt", "validation")
    assert "best validation accuracy" in trained.description
    on_test = copy_run(run_dir, tmp_path / "test", [{"epoch": 1, "test_acc": 89.0}])
    trained = load_trained_model(on_test)
    assert (trained.path.name, trained.selected_on) == ("last.pt", None)


def test_an_older_runs_best_pt_chosen_on_test_is_labelled_so(run_dir, picture_dir, tmp_path, capsys):
    older = copy_run(run_dir, tmp_path, [{"epoch": 1, "test_acc": 89.0}])
    assert main([str(older / "checkpoints" / "best.pt"), str(picture_dir)]) == 0
    assert "chosen on test accuracy" in " ".join(capsys.readouterr().out.split())
    (older / "checkpoints" / "last.pt").unlink()
    trained = load_trained_model(older)  # nothing else there: used, and still labelled
    assert (trained.path.name, trained.selected_on) == ("best.pt", "test")


def run_predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mnist_exp.predict", *args], capture_output=True, text=True, timeout=120
    )


def test_a_non_image_file_exits_2_naming_it(run_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = run_predict(str(run_dir), str(tmp_path / "notes.txt"))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"mnist-exp-predict: error: {tmp_path / 'notes.txt'} is not an image")


def test_a_foreign_checkpoint_exits_2_with_one_line(tmp_path, picture_dir):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    result = run_predict(str(tmp_path / "other.pt"), str(picture_dir))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mnist-exp-predict: error: {tmp_path / 'other.pt'} is not an mnist-exp checkpoint: it lacks model, "
        "config, config.model._target_, config.data.mean, config.data.std "
        "(expected a checkpoints/*.pt written by a training run)"
    ]


def mismatched_weights(run_dir: Path) -> dict:
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    wider = [{"channels": 12, "pool": True}, *CONFIG["model"]["blocks"][1:]]
    return state | {"config": CONFIG | {"model": CONFIG["model"] | {"blocks": wider}}}


def foreign_target(run_dir: Path) -> dict:
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return state | {"config": CONFIG | {"model": {"_target_": "os.system", "command": "echo hi"}}}


@pytest.mark.parametrize(
    "make_checkpoint, message",
    [
        (lambda run_dir: None, "is not a PyTorch checkpoint"),
        (lambda run_dir: {"model": {}, "config": {"model": {}}}, "it lacks config.model._target_"),
        (mismatched_weights, "its weights do not fit the model its config describes (Error(s) in loading"),
        (foreign_target, "its model config asks for os.system; only mnist_exp.models.* is built"),
        (lambda run_dir: {"model": Path("x")}, "refuses: not a checkpoint of this version of mnist-exp"),
    ],
    ids=["not-a-torch-file", "missing-keys", "weights-of-another-model", "foreign-target", "pickled-objects"],
)
def test_bad_checkpoints_exit_2_saying_what_is_wrong(
    run_dir, picture_dir, tmp_path, capsys, make_checkpoint, message
):
    checkpoint = tmp_path / "bad.pt"
    state = make_checkpoint(run_dir)
    if state is None:
        checkpoint.write_text("not a checkpoint")
    else:
        torch.save(state, checkpoint)
    assert main([str(checkpoint), str(picture_dir)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"mnist-exp-predict: error: {checkpoint}") and message in error
    assert len(error.strip().splitlines()) == 1


def test_missing_paths_exit_2_naming_them(run_dir, picture_dir, tmp_path, capsys):
    assert main([str(run_dir), str(tmp_path / "gone.png")]) == 2
    assert f"{tmp_path / 'gone.png'}: no such image file or directory" in capsys.readouterr().err
    assert main([str(tmp_path / "no_run"), str(picture_dir)]) == 2
    assert f"{tmp_path / 'no_run'}: no such checkpoint file or run directory" in capsys.readouterr().err
