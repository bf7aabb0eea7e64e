"""View-averaged evaluation (`trainer.eval_hflip`, `trainer.eval_shift`): what it computes, and
that a run records it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnist_exp.data import ensure_named, load_split
from mnist_exp.data.tensors import normalise
from mnist_exp.engine.loop import evaluate
from mnist_exp.engine.views import View, ViewAveraged, evaluated_network, evaluation_views, shifted
from mnist_exp.inference.checkpoint import load_trained_model
from tests.conftest import run_cli

SCORE_SCRIPT = Path(__file__).parent.parent / "experiments" / "score_views.py"
BACKGROUND = -0.4242  # MNIST's black pixel, normalised


def score_views(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCORE_SCRIPT), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True)


def lopsided_net() -> nn.Module:
    """A network that sees every pixel differently, so a mirror or a shift changes its prediction."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()


def mirror_averaged(net: nn.Module) -> ViewAveraged:
    return ViewAveraged(net, evaluation_views(eval_hflip=True, eval_shift=0), BACKGROUND)


def mean_probabilities(net: nn.Module, views: list[torch.Tensor]) -> torch.Tensor:
    return sum(net(view).softmax(1) for view in views) / len(views)


def test_a_shift_moves_pixels_and_fills_the_border_with_background():
    images = torch.arange(2 * 16.0).reshape(2, 1, 4, 4)
    moved = shifted(images, right=1, down=-2, background=-1.0)
    torch.testing.assert_close(moved[..., :2, 1:], images[..., 2:, :3])
    assert (moved[..., 2:, :] == -1).all() and (moved[..., :, 0] == -1).all()
    assert shifted(images, 0, 0, -1.0) is images


def test_views_are_the_image_its_mirror_and_their_shifts_four_ways():
    assert evaluation_views(False, 0) == [View()]
    assert evaluation_views(True, 0) == [View(), View(mirror=True)]
    shifts = [View(), View(right=2), View(right=-2), View(down=2), View(down=-2)]
    assert evaluation_views(False, 2) == shifts
    assert evaluation_views(True, 2) == shifts + [view._replace(mirror=True) for view in shifts]


def test_a_view_mirrors_before_it_shifts():
    images = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(View().of(images, BACKGROUND), images)
    torch.testing.assert_close(
        View(mirror=True, down=-1).of(images, BACKGROUND), shifted(images.flip(-1), 0, -1, BACKGROUND)
    )


def test_output_is_the_log_of_the_views_mean_probabilities():
    net, images = lopsided_net(), torch.randn(6, 1, 28, 28)
    views = evaluation_views(False, 1)
    with torch.no_grad():
        output = ViewAveraged(net, views, BACKGROUND)(images)
        expected = mean_probabilities(net, [view.of(images, BACKGROUND) for view in views])
        assert not torch.allclose(net(images).softmax(1), expected)
    torch.testing.assert_close(output.exp(), expected)


def test_an_image_and_its_mirror_get_the_same_mirror_averaged_prediction():
    net, images = lopsided_net(), torch.randn(6, 1, 28, 28)
    averaged = mirror_averaged(net)
    with torch.no_grad():
        torch.testing.assert_close(averaged(images), averaged(images.flip(-1)))


def test_evaluate_scores_the_averaged_prediction():
    net, images = lopsided_net(), torch.randn(50, 1, 28, 28)
    labels = torch.randint(0, 10, (50,))
    loss, accuracy = evaluate(mirror_averaged(net), images, labels, batch_size=16)
    with torch.no_grad():
        expected = mean_probabilities(net, [images, images.flip(-1)])
    assert abs(loss - F.nll_loss(expected.log(), labels).item()) < 1e-5
    assert accuracy == 100.0 * (expected.argmax(1) == labels).sum().item() / 50


def test_off_evaluates_the_network_itself():
    net = lopsided_net()
    assert evaluated_network(net, eval_hflip=False, eval_shift=0, background=BACKGROUND) is net
    for hflip, shift, count in ((True, 0, 2), (False, 1, 5)):
        averaged = evaluated_network(net, eval_hflip=hflip, eval_shift=shift, background=BACKGROUND)
        assert isinstance(averaged, ViewAveraged) and len(averaged.views) == count


@pytest.mark.parametrize(
    ("override", "flags", "views"),
    [
        ("trainer.eval_hflip=true", ["--hflip"], (True, 0)),
        ("trainer.eval_shift=1", ["--shift", "1"], (False, 1)),
    ],
)
def test_a_run_records_and_diagnoses_the_view_average(tmp_path, override, flags, views):
    """Real MNIST, one short epoch: the recorded test loss and the confusion matrix are the
    saved network's view-averaged ones, not its plain ones; experiments/score_views.py scores
    the same checkpoint on validation both ways and matches the run's own record."""
    run_dir = tmp_path / "run"
    result = run_cli(
        override, "model=tiny_5k", "data.train_subset=5000", "data.val_size=2000", "trainer.epochs=1",
        "trainer.device=cpu", "trainer.threads=1", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    trained = load_trained_model(run_dir / "checkpoints" / "last.pt")
    images, labels = load_split(ensure_named("mnist"), train=False)
    images = normalise(images, trained.mean, trained.std)
    averaged = ViewAveraged(trained.model, evaluation_views(*views), -trained.mean / trained.std)

    averaged_loss, averaged_acc = evaluate(averaged, images, labels, 1000)
    plain_loss, plain_acc = evaluate(trained.model, images, labels, 1000)
    recorded = metrics["history"][-1]
    assert abs(recorded["test_loss"] - averaged_loss) < 1e-5
    assert abs(recorded["test_loss"] - plain_loss) > 1e-3
    assert metrics["final_test_acc"] == averaged_acc
    counts = json.loads((run_dir / "confusion.json").read_text())["counts"]
    assert sum(counts[i][i] for i in range(10)) == round(averaged_acc * 100)

    scored = score_views(*flags, run_dir)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"{metrics['final_val_acc']:.2f} view-averaged" in scored.stdout.splitlines()[0]
    scored = score_views(*flags, "--split", "test", run_dir)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"test {plain_acc:.2f} plain, {averaged_acc:.2f} view-averaged" in scored.stdout.splitlines()[0]


def test_scoring_a_run_without_a_validation_split_says_so(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "data.train_subset=500", "trainer.epochs=1", "trainer.device=cpu", "trainer.threads=1",
        f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    scored = score_views("--shift", "1", run_dir)
    assert scored.returncode == 1
    assert "trained without data.val_size" in scored.stderr


def test_scoring_a_directory_without_a_checkpoint_names_it(tmp_path):
    scored = score_views("--hflip", tmp_path)
    assert scored.returncode == 1
    assert f"{tmp_path}/checkpoints/last.pt: no such checkpoint file" in scored.stderr
    assert "Traceback" not in scored.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [([], "give --hflip, --shift N, or both"), (["--shift", "5"], "--shift 5: must be 1 to 4 pixels")],
)
def test_scoring_without_views_or_with_a_far_shift_is_refused(tmp_path, flags, message):
    scored = score_views(*flags, tmp_path)
    assert scored.returncode == 2
    assert message in scored.stderr
