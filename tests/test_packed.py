"""Seeds packed into one network are faithful to their runs alone: the same initial weights, the
same outputs, and on the first step the same loss, gradients and update, dropout included."""

from __future__ import annotations

import contextlib

import pytest
import torch

from mnist_exp.engine.loop import cross_entropy, optimizer_step
from mnist_exp.engine.optim import build_optimizer
from mnist_exp.engine.state import TrainingState
from mnist_exp.packing.network import PackedConvNet, copy_slices, copy_state, per_copy_cross_entropy

SEEDS = (1, 2, 3)
CPU = torch.device("cpu")
TRAIN_COUNT, BATCH = 256, 32


@pytest.fixture
def synthetic() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(TRAIN_COUNT, 1, 28, 28, generator=generator)
    return images, torch.randint(0, 10, (TRAIN_COUNT,), generator=generator)


def alone(compose_config, seed: int, *overrides: str) -> tuple[TrainingState, torch.Generator]:
    """A run's fresh state for `seed`, and a generator where its dropout would draw from."""
    cfg = compose_config("model=v3", f"seed={seed}", f"data.batch_size={BATCH}", *overrides)
    state = TrainingState.fresh(cfg, CPU, TRAIN_COUNT)
    dropout = torch.Generator()
    dropout.set_state(torch.get_rng_state())
    return state, dropout


def test_a_packed_copy_starts_from_its_seeds_initial_weights(compose_config):
    runs = [alone(compose_config, seed) for seed in SEEDS]
    packed = PackedConvNet([state.model for state, _ in runs], [generator for _, generator in runs])
    for k, seed in enumerate(SEEDS):
        fresh, _ = alone(compose_config, seed)  # built again, as a run alone would
        expected = fresh.model.state_dict()
        unpacked = copy_state(packed, k)
        assert unpacked.keys() == expected.keys()
        assert all(torch.equal(unpacked[name], expected[name]) for name in expected), f"seed {seed}"


def test_a_packed_copy_predicts_what_it_would_alone(compose_config, synthetic):
    images, _ = synthetic
    runs = [alone(compose_config, seed) for seed in SEEDS]
    packed = PackedConvNet([state.model for state, _ in runs], [generator for _, generator in runs]).eval()
    with torch.no_grad():
        together = packed(images[:64].expand(-1, len(SEEDS), -1, -1))  # every copy sees the same images
        for k, (state, _) in enumerate(runs):
            assert torch.allclose(together[:, k], state.model.eval()(images[:64]), atol=1e-5)


def test_the_first_step_takes_each_copys_own_loss_gradients_and_update(compose_config, synthetic):
    """Each copy's batch is its own (its seed's shuffle); dropout (V3's 0.1) draws its seed's masks."""
    images, labels = synthetic
    runs = [alone(compose_config, seed) for seed in SEEDS]
    dropout_states = [generator.get_state() for _, generator in runs]  # the packed copies draw on
    packed = PackedConvNet([state.model for state, _ in runs], [generator for _, generator in runs])
    orders = [state.start_epoch().order[:BATCH] for state, _ in runs]
    optimizer = build_optimizer(compose_config("model=v3").optimizer, packed)  # the runs' AdamW

    packed.train()
    logits = packed(torch.cat([images[order] for order in orders], dim=1))
    losses = per_copy_cross_entropy(logits, torch.stack([labels[order] for order in orders], dim=1))
    optimizer.zero_grad()
    losses.sum().backward()
    gradients = {name: parameter.grad for name, parameter in packed.named_parameters()}
    optimizer.step()

    for k, ((state, _), order) in enumerate(zip(runs, orders, strict=True)):
        seed = SEEDS[k]
        torch.set_rng_state(dropout_states[k])  # where this seed's run alone draws dropout from
        step = optimizer_step(state.model, cross_entropy(), contextlib.nullcontext, None, state.optimizer,
                              images[order], labels[order])  # fmt: skip
        assert losses[k].item() == pytest.approx(step[0].item(), abs=1e-5), f"seed {seed}: loss"
        own_gradients = copy_slices(packed, k, gradients)
        after = copy_state(packed, k)
        for name, parameter in state.model.named_parameters():
            assert torch.allclose(own_gradients[name], parameter.grad, atol=1e-5), f"seed {seed}: grad {name}"
            # Adam's first step is about lr times the gradient's sign, which rounding decides where the
            # gradient is nearly 0 (the conv biases a BatchNorm cancels): compared where it is not.
            decided = parameter.grad.abs() > 1e-4
            assert decided.any() or name in cancelled_by_batch_norm(state.model)
            assert torch.allclose(after[name][decided], parameter.detach()[decided], atol=1e-6), (
                f"seed {seed}: update {name}"
            )


def cancelled_by_batch_norm(model: torch.nn.Sequential) -> set[str]:
    """The conv biases right before a BatchNorm, which subtracts them out again."""
    return {
        f"{index}.bias"
        for index, (layer, after) in enumerate(zip(list(model), list(model)[1:], strict=False))
        if isinstance(layer, torch.nn.Conv2d) and isinstance(after, torch.nn.BatchNorm2d)
    }


def test_dropout_draws_each_copys_mask_from_its_own_generator():
    """Two copies with equal inputs and generators in one state get equal masks; in two states, not."""
    from mnist_exp.packing.network import PackedDropout

    def generator(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    inputs = torch.ones(64, 2 * 16)
    same = PackedDropout(0.5, [generator(7), generator(7)]).train()(inputs).view(64, 2, 16)
    assert torch.equal(same[:, 0], same[:, 1])
    different = PackedDropout(0.5, [generator(7), generator(8)]).train()(inputs).view(64, 2, 16)
    assert not torch.equal(different[:, 0], different[:, 1])
    assert set(different.unique().tolist()) == {0.0, 2.0}, "kept units scaled by 1 / (1 - p)"


RECIPE = (  # v3_plus's pieces: augmentation, label smoothing, a weight average, a per-batch schedule
    "experiment=v3_plus", "trainer.epochs=2", "data.batch_size=32", "model.dropout=0.1",
    "trainer.ema_decay=0.9",
)  # fmt: skip


def synthetic_dataset(count: int = TRAIN_COUNT):
    from mnist_exp.data.tensors import DeviceDataset

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(count, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return DeviceDataset(images, labels, images[:64], labels[:64], images[:64], labels[:64])


def packed_runs(compose_config, seeds=SEEDS, saved=None):
    from mnist_exp.engine.trainer import Trainer
    from mnist_exp.packing.training import PackedTraining

    data = synthetic_dataset()
    cfgs = [compose_config(*RECIPE, f"seed={seed}") for seed in seeds]
    pack = PackedTraining.build(cfgs, saved or [None] * len(seeds), CPU, TRAIN_COUNT)
    return pack, [Trainer(cfg, state, data, CPU) for cfg, state in zip(cfgs, pack.states, strict=True)]


def run_alone(compose_config, seed: int):
    """One epoch of `seed`'s run alone; its state and the loss of every step."""
    from mnist_exp.engine.trainer import Trainer

    cfg = compose_config(*RECIPE, f"seed={seed}")
    state = TrainingState.fresh(cfg, CPU, TRAIN_COUNT)
    trainer = Trainer(cfg, state, synthetic_dataset(), CPU)
    losses = []
    assert trainer.train_epoch(1, lambda: False, lambda _state, loss: losses.append(loss.item()))
    return state, losses


def comparable(state: TrainingState) -> dict[str, torch.Tensor]:
    """Weights, BatchNorm statistics and the weight average, but the conv biases a BatchNorm
    cancels: Adam moves those by about lr per step on gradients that are rounding noise."""
    cancelled = cancelled_by_batch_norm(state.model)
    tensors = {k: v for k, v in state.model.state_dict().items() if k not in cancelled}
    averaged = state.average.module.state_dict()
    return tensors | {f"ema.{k}": v for k, v in averaged.items() if k not in cancelled}


@pytest.fixture
def float64():
    """Doubles, for comparing whole epochs: in float32 the packed and the lone kernels round
    differently, and Adam's first steps (about lr x the gradient's sign) blow a rounding-sized
    difference in a near-zero gradient up to a visible one within a few steps."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_a_packed_epoch_trains_each_copy_as_its_run_alone(compose_config, float64):
    """A whole epoch with augmentation, dropout, label smoothing, a weight average and OneCycle: each
    copy's losses, weights and statistics are its run alone's, and its random streams (order,
    augmentation, dropout) end exactly where that run's do."""
    pack, trainers = packed_runs(compose_config)
    packed_losses = []
    assert pack.train_epoch(trainers, 1, BATCH, lambda: False, lambda losses: packed_losses.append(losses))
    for k, seed in enumerate(SEEDS):
        state, losses = run_alone(compose_config, seed)
        own = pack.write_back(k)
        assert [step[k].item() for step in packed_losses] == pytest.approx(losses, abs=1e-9), f"seed {seed}"
        expected, got = comparable(state), comparable(own)
        for name in expected:
            assert torch.allclose(got[name], expected[name], atol=1e-9), f"seed {seed}: {name}"
        assert own.step == state.step and own.progress.next_batch == state.progress.next_batch
        assert torch.equal(own.progress.correct, state.progress.correct)
        saved, alone = own.streams.state_dict(), state_after(seed, compose_config)
        for stream in ("torch", "shuffle", "augment"):
            assert torch.equal(saved[stream], alone[stream]), f"seed {seed}: {stream} stream"
        assert own.optimizer.state_dict()["param_groups"] == state.optimizer.state_dict()["param_groups"]


def state_after(seed: int, compose_config) -> dict:
    state, _ = run_alone(compose_config, seed)
    return state.streams.state_dict()


def test_a_packed_group_stopped_mid_epoch_resumes_from_its_copies_checkpoints_bit_for_bit(compose_config):
    """Stopped after 3 batches, each copy's state is saved as its own checkpoint; packed again from
    those, the group finishes the epoch exactly as it would have without the stop."""
    import io

    whole, trainers = packed_runs(compose_config)
    assert whole.train_epoch(trainers, 1, BATCH, lambda: False, lambda _losses: None)

    stopped, trainers = packed_runs(compose_config)
    steps = []
    assert not stopped.train_epoch(trainers, 1, BATCH, lambda: len(steps) == 3, steps.append)
    checkpoints = []
    for k in range(len(SEEDS)):
        buffer = io.BytesIO()
        torch.save(stopped.write_back(k).state_dict(), buffer)
        checkpoints.append(torch.load(io.BytesIO(buffer.getvalue()), weights_only=False))
    resumed, trainers = packed_runs(compose_config, saved=checkpoints)
    assert resumed.train_epoch(trainers, 1, BATCH, lambda: False, lambda _losses: None)
    for k in range(len(SEEDS)):
        expected, got = whole.write_back(k).state_dict(), resumed.write_back(k).state_dict()
        for part in ("model", "ema"):
            same = [torch.equal(got[part][name], tensor) for name, tensor in expected[part].items()]
            assert all(same), f"copy {k}: {part}"
        adam = zip(got["optimizer"]["state"].values(), expected["optimizer"]["state"].values(), strict=True)
        assert all(torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]) for a, b in adam), f"copy {k}: Adam"


def test_a_copy_gone_to_nan_leaves_the_others_untouched(compose_config):
    """A diverged copy's NaNs stay in its own channels: the other copies' step is the same, bit for
    bit, as in a group where nothing diverged."""
    images, labels = synthetic_dataset().train_images, synthetic_dataset().train_labels
    inputs = images[:BATCH].expand(-1, len(SEEDS), -1, -1)
    targets = labels[:BATCH, None].expand(-1, len(SEEDS))
    clean, _ = packed_runs(compose_config)
    poisoned, _ = packed_runs(compose_config)
    with torch.no_grad():
        poisoned.network[0].weight.chunk(len(SEEDS))[1].fill_(float("nan"))
    clean_losses, _ = clean.step(inputs, targets)
    poisoned_losses, _ = poisoned.step(inputs, targets)
    assert poisoned_losses[1].isnan() and not poisoned_losses[[0, 2]].isnan().any()
    for k in (0, 2):
        assert poisoned_losses[k] == clean_losses[k]
        expected, got = clean.write_back(k).model.state_dict(), poisoned.write_back(k).model.state_dict()
        assert all(torch.equal(got[name], expected[name]) for name in expected), f"copy {k}"
