"""Knowledge distillation (`trainer.teacher`): the loss, what the student learns from it, and
which teachers a run refuses."""

import copy
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from mnist_exp.engine.distill import Distillation, load_teacher, validation_images_seen
from mnist_exp.engine.loop import EpochProgress, train_epoch
from mnist_exp.engine.optim import Schedule
from mnist_exp.errors import ConfigError
from tests.conftest import run_cli

TEACHER_RUN = ("data.train_subset=1000", "data.val_size=2000", "trainer.epochs=1")


def linear_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def data_cfg(**overrides):
    fields = {"name": "mnist", "mean": 0.1307, "std": 0.3081, "val_size": 2000, "train_subset": 0}
    return OmegaConf.create({**fields, **overrides})


def test_the_loss_blends_the_labels_and_the_teachers_softened_predictions():
    student, teacher = linear_net(0), linear_net(1)
    images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    logits = student(images)
    loss = Distillation(teacher, weight=0.3, temperature=2.0, label_smoothing=0.1)(logits, labels, images)

    taught = (teacher(images) / 2).softmax(1)
    learned = (logits / 2).log_softmax(1)
    soft = (taught * (taught.log() - learned)).sum(1).mean() * 2**2
    hard = F.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(loss, 0.7 * hard + 0.3 * soft)


def test_a_student_that_agrees_with_its_teacher_pays_only_the_label_term():
    student = linear_net(0)
    images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    logits = student(images)
    loss = Distillation(copy.deepcopy(student), weight=0.5, temperature=4.0)(logits, labels, images)
    torch.testing.assert_close(loss, 0.5 * F.cross_entropy(logits, labels))


def test_taught_by_the_teacher_alone_the_student_learns_its_predictions_not_the_labels():
    """Weight 1 ignores the labels: random labels, yet the student ends up predicting what the
    teacher predicts; the teacher itself is never trained."""
    student, teacher = linear_net(0), linear_net(1)
    teacher_before = copy.deepcopy(teacher.state_dict())
    images, labels = torch.randn(512, 1, 28, 28), torch.randint(0, 10, (512,))
    with torch.no_grad():
        taught = teacher(images).argmax(1)
    assert (student(images).argmax(1) == taught).float().mean() < 0.3
    assert (taught == labels).float().mean() < 0.3

    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    distillation = Distillation(teacher, weight=1.0, temperature=1.0)
    for epoch in range(20):
        progress = EpochProgress(
            order=torch.randperm(512, generator=torch.Generator().manual_seed(epoch)), lr=0
        )
        train_epoch(
            student,
            images,
            labels,
            progress,
            64,
            optimizer,
            Schedule(None, optimizer, 8),
            loss_fn=distillation,
        )

    with torch.no_grad():
        assert (student(images).argmax(1) == taught).float().mean() > 0.9
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(value, teacher_before[key])


def test_the_loss_sees_the_augmented_inputs_the_student_sees():
    seen = []

    def recording_loss(logits, targets, inputs):
        seen.append(inputs.clone())
        return F.cross_entropy(logits, targets)

    student = linear_net(0)
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    optimizer = torch.optim.SGD(student.parameters(), lr=0.0)
    progress = EpochProgress(order=torch.arange(8), lr=0.0)
    train_epoch(student, images, labels, progress, 8, optimizer, Schedule(None, optimizer, 1),
                augment=lambda batch: batch.flip(-1), loss_fn=recording_loss)  # fmt: skip
    torch.testing.assert_close(seen[0], images.flip(-1))


@pytest.mark.parametrize(
    ("teacher_split", "student_split", "seen"),
    [
        ({"val_size": 0, "train_subset": 0}, {"val_size": 2000}, 2000),  # trained on everything
        ({"val_size": 0, "train_subset": 1000}, {"val_size": 2000}, 1000),  # its 1000 are among them
        ({"val_size": 2000, "train_subset": 0}, {"val_size": 2000}, 0),  # the same split
        ({"val_size": 5000, "train_subset": 0}, {"val_size": 2000}, 0),  # held out more
        ({"val_size": 2000, "train_subset": 0}, {"val_size": 5000}, 3000),  # held out less
        ({"val_size": 0, "train_subset": 0}, {"val_size": 0}, 0),  # the student has no split
    ],
)
def test_validation_images_the_teacher_trained_on_are_counted(teacher_split, student_split, seen):
    assert validation_images_seen(teacher_split, data_cfg(**student_split)) == seen


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    """A real finished run on MNIST: 1,000 training images, 2,000 held out, one epoch."""
    run_dir = tmp_path_factory.mktemp("teacher") / "run"
    result = run_cli(*TEACHER_RUN, "model=tiny_5k", "trainer.device=cpu", "trainer.threads=1",
                     f"hydra.run.dir={run_dir}", cwd=run_dir.parent)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def altered_checkpoint(teacher_dir: Path, tmp_path: Path, change) -> Path:
    state = torch.load(teacher_dir / "checkpoints" / "last.pt", weights_only=True)
    change(state)
    file = tmp_path / "altered.pt"
    torch.save(state, file)
    return file


def test_a_finished_run_on_the_same_split_teaches(teacher_dir):
    teacher = load_teacher(teacher_dir, data_cfg())
    assert not teacher.training
    assert teacher(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(status="interrupted"), "did not finish (status 'interrupted'); resume it"),
        (lambda s: s["config"]["data"].update(name="fashion_mnist", mean=0.286, std=0.353),
         "trained on fashion_mnist (mean 0.286, std 0.353); this run uses mnist (mean 0.1307, std 0.3081)"),
        (lambda s: s["config"]["data"].update(val_size=0),
         "trained on 1000 of this run's data.val_size=2000 validation images (it ran with data.val_size=0)"),
    ],
)  # fmt: skip
def test_a_teacher_that_cannot_teach_this_run_is_refused_saying_why(teacher_dir, tmp_path, change, message):
    with pytest.raises(ConfigError, match="trainer.teacher=") as refusal:
        load_teacher(altered_checkpoint(teacher_dir, tmp_path, change), data_cfg())
    assert message in str(refusal.value)


def test_a_directory_without_a_final_checkpoint_is_refused(tmp_path):
    expected = f"trainer.teacher: {tmp_path}/checkpoints/last.pt: no such checkpoint file or run directory"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_teacher(tmp_path, data_cfg())


def test_a_taught_run_trains_and_records_its_teacher(teacher_dir, tmp_path):
    """Real MNIST: the same run with and without the teacher starts from the same weights and
    batches, so only the loss differs; a student with more held out than the teacher is refused
    before anything is written."""
    runs = {}
    for name, extra in (("plain", ()), ("taught", (f"trainer.teacher={teacher_dir}",))):
        runs[name] = tmp_path / name
        result = run_cli(*TEACHER_RUN, "model=tiny_5k", "trainer.device=cpu", "trainer.threads=1",
                         *extra, f"hydra.run.dir={runs[name]}", cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    plain, taught = (json.loads((runs[name] / "metrics.json").read_text()) for name in ("plain", "taught"))
    assert abs(plain["history"][0]["train_loss"] - taught["history"][0]["train_loss"]) > 1e-3
    saved = torch.load(runs["taught"] / "checkpoints" / "last.pt", weights_only=True)
    assert saved["config"]["trainer"]["teacher"] == str(teacher_dir)

    refused = tmp_path / "refused"
    result = run_cli("data.train_subset=1000", "data.val_size=5000", "trainer.epochs=1", "trainer.device=cpu",
                     f"trainer.teacher={teacher_dir}", f"hydra.run.dir={refused}", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "trained on 1000 of this run's data.val_size=5000 validation images" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (refused / "checkpoints").exists() and not (refused / "metrics.json").exists()
