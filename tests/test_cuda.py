"""The CUDA path: no host sync inside a training epoch, and a real run with every option on.

Skipped on machines without CUDA (CI has none); run them where a GPU is: `pytest tests/test_cuda.py`.
"""

import functools
import json

import pytest
import torch
from hydra.utils import instantiate

from mnist_exp.augment import RandomWarp, augment_generator
from mnist_exp.distill import Distillation
from mnist_exp.ema import weight_average
from mnist_exp.loop import EpochProgress, train_epoch
from mnist_exp.optim import Schedule
from mnist_exp.speed import autocast
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_training_epoch_never_waits_for_the_host(compose_config, precision):
    """Augmentation (elastic too), the one-cycle schedule, label smoothing, a teacher and the
    weight average included: torch raises on any synchronising call while sync debug mode is
    "error"."""
    cfg = compose_config("experiment=v3_plus", "data.augment.elastic=1.0")
    device = torch.device("cuda")
    model = instantiate(cfg.model).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    schedule = Schedule(cfg.scheduler, optimizer, steps_per_epoch=8)
    ema = weight_average(model, decay=0.999)
    teacher = instantiate(cfg.model).to(device)
    images = torch.randn(8 * 32, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (8 * 32,), device=device)
    augment = functools.partial(
        RandomWarp.from_config(cfg.data.augment), generator=augment_generator(0, device), background=-0.4
    )
    progress = EpochProgress(order=torch.randperm(len(labels), device=device), lr=1e-3)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        finished = train_epoch(
            model, images, labels, progress, 32, optimizer, schedule,
            on_batch=lambda loss: ema.update_parameters(model),
            autocast=functools.partial(autocast, precision, device), augment=augment,
            loss_fn=Distillation(teacher, weight=0.5, temperature=4.0, label_smoothing=0.1),
        )  # fmt: skip
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert finished and progress.next_batch == 8
    assert int(ema.n_averaged) == 8
    assert torch.isfinite(progress.loss_sum)


def test_a_run_on_cuda_with_every_speed_and_recipe_option(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "experiment=v3_plus", "trainer.device=cuda", "trainer.precision=bf16", "trainer.channels_last=true",
        "optimizer.fused=true", "trainer.epochs=2", "data.train_subset=5000", "data.val_size=1000",
        f"hydra.run.dir={run_dir}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["device"].startswith("cuda")
    assert metrics["final_val_acc"] > 80 and metrics["final_test_acc"] > 80
