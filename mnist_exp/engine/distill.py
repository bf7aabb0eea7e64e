"""Knowledge distillation: a small network also learns a finished run's softened predictions.

A one-hot label says only which digit an image is; a trained teacher's output also says which
other digits it resembles and how much, which a network with few parameters learns from better
than from labels alone (Hinton, Vinyals and Dean 2015). The teacher is any finished run of this
runner, on the same data and normalisation, and must not have trained on the student's
validation images, or the student's validation accuracy would be measured on images it was
taught the answers to.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mnist_exp.config.validation import TRAIN_SPLIT
from mnist_exp.data.tensors import split_indices
from mnist_exp.engine.loop import cross_entropy
from mnist_exp.errors import ConfigError, resume_command
from mnist_exp.inference.checkpoint import CheckpointError, load_trained_model


class Distillation:
    """(1 - weight) x cross-entropy on the labels + weight x T^2 x KL(teacher || student), both
    softened by temperature T; T^2 keeps the soft term's gradients the size of the hard one's."""

    def __init__(self, teacher: nn.Module, weight: float, temperature: float, label_smoothing: float = 0.0):
        self.teacher = teacher.eval().requires_grad_(False)
        self.weight = weight
        self.temperature = temperature
        self.hard = cross_entropy(label_smoothing)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            taught = F.log_softmax(self.teacher(inputs).float() / self.temperature, dim=1)
        learned = F.log_softmax(logits.float() / self.temperature, dim=1)
        soft = F.kl_div(learned, taught, reduction="batchmean", log_target=True) * self.temperature**2
        return (1 - self.weight) * self.hard(logits, targets, inputs) + self.weight * soft


def training_loss(trainer_cfg, data_cfg, device: torch.device):
    """The loss a run trains with: distillation when `trainer.teacher` names a run, else plain."""
    if not trainer_cfg.teacher:
        return cross_entropy(trainer_cfg.label_smoothing)
    teacher = load_teacher(Path(trainer_cfg.teacher), data_cfg).to(device)
    return Distillation(teacher, trainer_cfg.teacher_weight, trainer_cfg.teacher_temperature,
                        trainer_cfg.label_smoothing)  # fmt: skip


def load_teacher(path: Path, data_cfg) -> nn.Module:
    """The final network (checkpoints/last.pt) of a finished run fit to teach on `data_cfg`.

    The final network, not best.pt: a run without a validation split picks its best epoch on test.
    """
    file = path / "checkpoints" / "last.pt" if path.is_dir() else path
    try:
        trained = load_trained_model(file)
    except CheckpointError as error:
        raise ConfigError(f"trainer.teacher: {error}. Give the run dir of a finished run.") from None
    if trained.status != "completed":
        raise ConfigError(
            f"trainer.teacher={path}: that run did not finish (status {trained.status!r}); "
            f"resume it first ({resume_command(path)}) or give a finished run"
        )
    teacher_data = trained.config["data"]
    if (teacher_data.get("name"), trained.mean, trained.std) != (data_cfg.name, data_cfg.mean, data_cfg.std):
        raise ConfigError(
            f"trainer.teacher={path} trained on {teacher_data.get('name')} (mean {trained.mean}, std "
            f"{trained.std}); this run uses {data_cfg.name} (mean {data_cfg.mean}, std {data_cfg.std}). "
            "Give a teacher trained on the same data, normalised the same way."
        )
    seen = validation_images_seen(teacher_data, data_cfg)
    if seen:
        raise ConfigError(
            f"trainer.teacher={path} trained on {seen} of this run's data.val_size={data_cfg.val_size} "
            f"validation images (it ran with data.val_size={teacher_data.get('val_size', 0)}); give a "
            f"teacher trained with data.val_size={data_cfg.val_size}, or train this run without a "
            "validation split"
        )
    return trained.model


def validation_images_seen(teacher_data: dict, data_cfg) -> int:
    """How many of this run's validation images were among the teacher's training images."""
    if not data_cfg.val_size:
        return 0
    teacher_train, _ = split_indices(
        TRAIN_SPLIT, teacher_data.get("val_size", 0), teacher_data.get("train_subset", 0)
    )
    _, validation = split_indices(TRAIN_SPLIT, data_cfg.val_size, data_cfg.train_subset)
    return int(torch.isin(validation, teacher_train).sum())
