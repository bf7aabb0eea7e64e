"""The CUDA path: no host sync inside a training epoch, eager or graphed; the graphed step takes
the same updates as the eager one; real runs with every option on, graphed and not; packed seeds
faithful to their runs alone, and a packed sweep whose checkpoints load on the CPU.

Skipped on machines without CUDA (CI has none); run them where a GPU is: `pytest tests/test_cuda.py`.
"""

import copy
import functools
import json

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mnist_exp.accel.device_adam import DeviceAdam
from mnist_exp.accel.graph_step import GraphedStep
from mnist_exp.accel.precision import autocast
from mnist_exp.data.augment import RandomWarp, augment_generator
from mnist_exp.engine.loop import EpochProgress, cross_entropy, optimizer_step, train_epoch
from mnist_exp.engine.optim import Schedule
from mnist_exp.engine.weight_average import weight_average
from mnist_exp.rundir.resume import resume_checkpoint
from tests.conftest import run_cli

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    # One worker runs them all, one at a time: they share one GPU and its memory.
    pytest.mark.xdist_group("cuda"),
]


@pytest.mark.parametrize("graphed", [False, True], ids=["eager", "graphed"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_training_epoch_never_waits_for_the_host(compose_config, precision, graphed):
    """Augmentation, the one-cycle schedule, label smoothing and the weight average included: torch
    raises on any synchronising call while sync debug mode is "error". Graphed, the epoch checked
    is the second: capturing, in the first, syncs once."""
    cfg = compose_config("experiment=v3_plus")
    device = torch.device("cuda")
    model = instantiate(cfg.model).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    schedule = Schedule(cfg.scheduler, optimizer, steps_per_epoch=8)
    ema = weight_average(model, decay=0.999)
    images = torch.randn(8 * 32, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (8 * 32,), device=device)
    augment = functools.partial(
        RandomWarp.from_config(cfg.data.augment), generator=augment_generator(0, device), background=-0.4
    )
    precision_context = functools.partial(autocast, precision, device)
    loss_fn = cross_entropy(label_smoothing=0.1)
    step = functools.partial(optimizer_step, model, loss_fn, precision_context, None)
    graphed_step = GraphedStep(optimizer, step) if graphed else None
    take_step = graphed_step or functools.partial(step, optimizer)

    def after_step(_loss) -> None:
        schedule.after_batch()
        ema.update_parameters(model)

    def epoch() -> tuple[bool, EpochProgress]:
        progress = EpochProgress(order=torch.randperm(len(labels), device=device), lr=1e-3)
        finished = train_epoch(
            model, images, labels, progress, batch_size=32, take_step=take_step, after_step=after_step,
            augment=augment,
        )  # fmt: skip
        return finished, progress

    if graphed:
        epoch()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        finished, progress = epoch()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert finished and progress.next_batch == 8
    assert int(ema.n_averaged) == (16 if graphed else 8)
    assert torch.isfinite(progress.loss_sum)
    assert (graphed_step.graph is not None) if graphed else True


class EagerDeviceAdam:
    """DeviceAdam stepped eagerly, as GraphedStep steps it: refilled from the schedule first."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.device_adam = DeviceAdam(optimizer)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.device_adam.zero_grad(set_to_none)

    def step(self) -> None:
        self.device_adam.refill()
        self.device_adam.step()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_graphed_training_takes_the_same_steps_as_eager_training(compose_config, precision):
    """Two epochs of five full batches and a short one (warm-up, capture, replays and the eager
    short batch all happen), AdamW under a one-cycle schedule: the same losses and weights as the
    same update run eagerly. (That update against torch's AdamW: tests/test_device_adam.py. Here
    the two cannot be compared closely: Adam scales the rounding noise in the gradients of conv
    biases that BatchNorm cancels up to full-size steps.) cuDNN is made deterministic."""
    cfg = compose_config("experiment=speedrun", "model.dropout=0.0")
    device = torch.device("cuda")
    torch.manual_seed(0)
    first = instantiate(cfg.model).to(device)
    second = copy.deepcopy(first)
    initial = copy.deepcopy(first.state_dict())
    images = torch.randn(5 * 32 + 8, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (len(images),), device=device)
    precision_context = functools.partial(autocast, precision, device)
    trained = []
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True):
        for model, graphed in ((first, False), (second, True)):
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
            schedule = Schedule(cfg.scheduler, optimizer, steps_per_epoch=6)
            step = functools.partial(
                optimizer_step, model, cross_entropy(label_smoothing=0.1), precision_context, None
            )
            graphed_step = GraphedStep(optimizer, step) if graphed else None
            take_step = graphed_step or functools.partial(step, EagerDeviceAdam(optimizer))
            losses = []
            for epoch in range(2):
                order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(epoch))
                progress = EpochProgress(order=order.to(device), lr=0.0)
                train_epoch(
                    model, images, labels, progress, batch_size=32, take_step=take_step,
                    after_step=lambda _loss, schedule=schedule: schedule.after_batch(),
                )  # fmt: skip
                losses.append(progress.loss_sum.item())
            trained.append((losses, model.state_dict()))
    assert graphed_step.graph is not None
    (eager_losses, eager_weights), (graph_losses, graph_weights) = trained
    assert graph_losses == pytest.approx(eager_losses, rel=1e-5)
    assert max((eager_weights[k] - v).abs().max() for k, v in initial.items() if v.is_floating_point()) > 0.01
    for key, value in eager_weights.items():
        torch.testing.assert_close(graph_weights[key], value, rtol=1e-5, atol=1e-6, msg=key)


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


def test_a_graphed_run_on_cuda_and_its_checkpoint_on_the_cpu(tmp_path):
    """A real run with the step graphed (weight average, augmentation and bf16 on); what it saves
    loads into a plain CPU optimizer, so any machine can resume it."""
    run_dir = tmp_path / "run"
    result = run_cli(
        "experiment=v3_plus", "trainer.device=cuda", "trainer.cuda_graphs=true", "trainer.precision=bf16",
        "trainer.epochs=2", "data.train_subset=5000", "data.val_size=1000", f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["device"].startswith("cuda")
    assert metrics["final_val_acc"] > 80 and metrics["final_test_acc"] > 80
    assert "Captured the training step as a CUDA graph" in (run_dir / "train.log").read_text()
    saved = resume_checkpoint(str(run_dir))
    assert saved["config"]["trainer"]["cuda_graphs"] is True
    model = instantiate(OmegaConf.create(saved["config"]["model"]))
    model.load_state_dict(saved["model"])
    optimizer = torch.optim.AdamW(model.parameters())
    optimizer.load_state_dict(saved["optimizer"])
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    optimizer.step()
    assert type(optimizer.param_groups[0]["lr"]) is float


def test_two_deterministic_runs_on_cuda_are_bit_identical(tmp_path):
    """trainer.deterministic=true on the GPU: deterministic cuDNN and cuBLAS, the same weights twice.
    Each run is its own process, so each sets the cuBLAS workspace before CUDA starts."""
    states = []
    for name in ("first", "second"):
        result = run_cli(
            "trainer.deterministic=true", "trainer.device=cuda", "trainer.epochs=2", "data.train_subset=4096",
            "data/augment=light", "model=v3", f"hydra.run.dir={name}", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        provenance = json.loads((tmp_path / name / "provenance.json").read_text())
        assert provenance["attempts"][-1]["deterministic"] is True
        assert provenance["attempts"][-1]["cublas_workspace_config"] == ":4096:8"
        states.append(torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=True)["model"])
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_packed_copies_on_cuda_start_from_their_runs_weights_and_take_their_first_step(compose_config):
    """On the GPU too: each packed copy's initial weights are its seed's run alone, its dropout
    generator starts where that run's (CUDA's global one) would, and with dropout off its first
    step's loss and gradients are the run's, up to float rounding (TF32 off)."""
    from mnist_exp.engine.state import TrainingState
    from mnist_exp.packing.network import copy_slices, copy_state, per_copy_cross_entropy
    from mnist_exp.packing.training import PackedTraining

    device, count, batch = torch.device("cuda"), 256, 32
    cfgs = [
        compose_config("model=v3", "model.dropout=0.0", f"seed={seed}", f"data.batch_size={batch}")
        for seed in (1, 2)
    ]
    pack = PackedTraining.build(cfgs, [None, None], device, count)
    packed_initial = [copy_state(pack.network, k) for k in range(len(cfgs))]
    images = torch.randn(count, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (count,), device=device)
    orders = [state.start_epoch().order[:batch] for state in pack.states]
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        pack.network.train()
        logits = pack.network(torch.cat([images[order] for order in orders], dim=1))
        losses = per_copy_cross_entropy(logits, torch.stack([labels[order] for order in orders], dim=1))
        losses.sum().backward()
        gradients = {name: parameter.grad for name, parameter in pack.network.named_parameters()}
        for k, cfg in enumerate(cfgs):
            alone = TrainingState.fresh(cfg, device, count)
            assert pack.dropout[k].device.type == "cuda"
            assert torch.equal(pack.dropout[k].get_state(), torch.cuda.get_rng_state())
            initial = alone.model.state_dict()
            assert all(torch.equal(packed_initial[k][name], initial[name]) for name in initial)
            alone.model.train()
            loss = torch.nn.functional.cross_entropy(alone.model(images[orders[k]]), labels[orders[k]])
            loss.backward()
            assert losses[k].item() == pytest.approx(loss.item(), abs=1e-5), f"copy {k}: loss"
            own = copy_slices(pack.network, k, gradients)
            for name, parameter in alone.model.named_parameters():
                torch.testing.assert_close(own[name], parameter.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_a_packed_sweep_on_cuda_saves_runs_that_load_on_the_cpu(tmp_path):
    """Seeds 1 and 2 packed on the GPU in bf16 and channels_last: each job completes as a run of its
    own on CUDA, and its checkpoint loads into a CPU model that runs."""
    result = run_cli(
        "-m", "hydra/launcher=packed", "experiment=v3_plus", "seed=1,2", "trainer.device=cuda",
        "trainer.precision=bf16", "trainer.channels_last=true", "trainer.epochs=2", "data.train_subset=5000",
        "data.val_size=1000", "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Training 2 jobs packed as one network: seeds [1, 2]" in result.stdout + result.stderr
    for job in sorted((tmp_path / "sweep").glob("*_seed=*")):
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["device"].startswith("cuda"), job.name
        assert metrics["final_val_acc"] > 80 and metrics["final_test_acc"] > 80
        saved = resume_checkpoint(str(job))
        model = instantiate(OmegaConf.create(saved["config"]["model"]))
        model.load_state_dict(saved["model"])
        assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
