"""Mirror-averaged evaluation (`trainer.eval_hflip`): what it computes, and that a run records it."""

import json
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mnist_exp.data import ensure_named, load_split
from mnist_exp.device_dataset import normalise
from mnist_exp.loop import evaluate
from mnist_exp.mirror_eval import MirrorAveraged, evaluated_network
from mnist_exp.trained_model import load_trained_model
from tests.conftest import run_cli

SCORE_SCRIPT = Path(__file__).parent.parent / "experiments" / "score_mirrored.py"


def score_mirrored(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCORE_SCRIPT), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True)


def lopsided_net() -> nn.Module:
    """A network that sees left and right differently, so a mirror changes its prediction."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10)).eval()


def averaged_probabilities(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return (net(images).softmax(1) + net(images.flip(-1)).softmax(1)) / 2


def test_output_is_the_log_of_both_views_mean_probabilities():
    net, images = lopsided_net(), torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        output = MirrorAveraged(net)(images)
        expected = averaged_probabilities(net, images)
        assert not torch.allclose(net(images).softmax(1), expected)
    torch.testing.assert_close(output.exp(), expected)


def test_an_image_and_its_mirror_get_the_same_prediction():
    net, images = lopsided_net(), torch.randn(6, 1, 28, 28)
    averaged = MirrorAveraged(net)
    with torch.no_grad():
        torch.testing.assert_close(averaged(images), averaged(images.flip(-1)))


def test_evaluate_scores_the_averaged_prediction():
    net, images = lopsided_net(), torch.randn(50, 1, 28, 28)
    labels = torch.randint(0, 10, (50,))
    loss, accuracy = evaluate(MirrorAveraged(net), images, labels, batch_size=16)
    with torch.no_grad():
        expected = averaged_probabilities(net, images)
    assert abs(loss - F.nll_loss(expected.log(), labels).item()) < 1e-5
    assert accuracy == 100.0 * (expected.argmax(1) == labels).sum().item() / 50


def test_off_evaluates_the_network_itself():
    net = lopsided_net()
    assert evaluated_network(net, eval_hflip=False) is net
    assert isinstance(evaluated_network(net, eval_hflip=True), MirrorAveraged)


def test_a_run_with_eval_hflip_records_and_diagnoses_the_mirror_average(tmp_path):
    """Real MNIST, one short epoch: the recorded test loss and the confusion matrix are the
    saved network's mirror-averaged ones, not its plain ones; experiments/score_mirrored.py
    scores the same checkpoint on validation both ways and matches the run's own record."""
    run_dir = tmp_path / "run"
    result = run_cli(
        "trainer.eval_hflip=true", "data.train_subset=5000", "data.val_size=2000", "trainer.epochs=1",
        "trainer.device=cpu", "trainer.threads=1", f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    trained = load_trained_model(run_dir / "checkpoints" / "last.pt")
    images, labels = load_split(ensure_named("mnist"), train=False)
    images = normalise(images, trained.mean, trained.std)

    mirrored_loss, mirrored_acc = evaluate(MirrorAveraged(trained.model), images, labels, 1000)
    plain_loss, plain_acc = evaluate(trained.model, images, labels, 1000)
    recorded = metrics["history"][-1]
    assert abs(recorded["test_loss"] - mirrored_loss) < 1e-5
    assert abs(recorded["test_loss"] - plain_loss) > 1e-3
    assert metrics["final_test_acc"] == mirrored_acc
    counts = json.loads((run_dir / "confusion.json").read_text())["counts"]
    assert sum(counts[i][i] for i in range(10)) == round(mirrored_acc * 100)

    scored = score_mirrored(run_dir)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"{metrics['final_val_acc']:.2f} mirror-averaged" in scored.stdout.splitlines()[0]
    scored = score_mirrored("--split", "test", run_dir)
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"test {plain_acc:.2f} plain, {mirrored_acc:.2f} mirror-averaged" in scored.stdout.splitlines()[0]


def test_scoring_a_run_without_a_validation_split_says_so(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "data.train_subset=500", "trainer.epochs=1", "trainer.device=cpu", "trainer.threads=1",
        f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    scored = score_mirrored(run_dir)
    assert scored.returncode == 1
    assert "trained without data.val_size" in scored.stderr


def test_scoring_a_directory_without_a_checkpoint_names_it(tmp_path):
    scored = score_mirrored(tmp_path)
    assert scored.returncode == 1
    assert f"{tmp_path}/checkpoints/last.pt: no such checkpoint file" in scored.stderr
    assert "Traceback" not in scored.stderr
