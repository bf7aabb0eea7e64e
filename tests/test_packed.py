"""Seeds packed into one network are faithful to their runs alone: the same initial weights, the
same outputs, and on the first step the same loss, gradients and update, dropout included."""

from __future__ import annotations

import contextlib

import pytest
import torch

from mnist_exp.engine.loop import cross_entropy, optimizer_step
from mnist_exp.engine.optim import build_optimizer
from mnist_exp.engine.packed import PackedConvNet, copy_slices, copy_state, per_copy_cross_entropy
from mnist_exp.engine.state import TrainingState

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
    from mnist_exp.engine.packed import PackedDropout

    def generator(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    inputs = torch.ones(64, 2 * 16)
    same = PackedDropout(0.5, [generator(7), generator(7)]).train()(inputs).view(64, 2, 16)
    assert torch.equal(same[:, 0], same[:, 1])
    different = PackedDropout(0.5, [generator(7), generator(8)]).train()(inputs).view(64, 2, 16)
    assert not torch.equal(different[:, 0], different[:, 1])
    assert set(different.unique().tolist()) == {0.0, 2.0}, "kept units scaled by 1 / (1 - p)"
