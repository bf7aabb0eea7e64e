"""DeviceAdam takes torch's Adam and AdamW steps, with lr and beta1 read from tensors.

It is what a CUDA graph replays (`mnist_exp.accel.graph_step`); here it runs on the CPU against torch's
own optimizers, under a one-cycle schedule that moves both the learning rate and beta1."""

import pytest
import torch
from torch import nn

from mnist_exp.accel.device_adam import DeviceAdam
from mnist_exp.accel.graph_step import GraphedStep
from mnist_exp.errors import ConfigError


def initial_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def train(optimizer_class, weight_decay, device_adam: bool, steps=25):
    model = initial_model()
    optimizer = optimizer_class(model.parameters(), lr=1e-3, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=steps)
    stepper = DeviceAdam(optimizer) if device_adam else optimizer
    data = torch.Generator().manual_seed(1)
    for _ in range(steps):
        inputs, targets = torch.randn(16, 6, generator=data), torch.randint(0, 3, (16,), generator=data)
        if device_adam:
            stepper.refill()
        stepper.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        stepper.step()
        schedule.step()
    return model, optimizer


@pytest.mark.parametrize(
    "optimizer_class, weight_decay",
    [(torch.optim.AdamW, 1e-2), (torch.optim.Adam, 0.0), (torch.optim.Adam, 1e-2)],
    ids=["adamw", "adam", "adam-l2"],
)
def test_the_same_steps_as_torchs_optimizer_under_a_one_cycle_schedule(optimizer_class, weight_decay):
    torch_model, torch_optimizer = train(optimizer_class, weight_decay, device_adam=False)
    our_model, our_optimizer = train(optimizer_class, weight_decay, device_adam=True)
    initial = initial_model().parameters()
    moved = max((p - q).abs().max().item() for p, q in zip(torch_model.parameters(), initial, strict=True))
    assert moved > 0.05  # what is compared below is training, 25 float32 steps of it: rounding differs
    for theirs, ours in zip(torch_model.parameters(), our_model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            our_optimizer.state[ours]["exp_avg"], torch_optimizer.state[theirs]["exp_avg"]
        )
        assert our_optimizer.state[ours]["step"].item() == torch_optimizer.state[theirs]["step"].item() == 25


def test_its_state_is_torchs_so_a_plain_optimizer_resumes_from_it():
    torch_model, torch_optimizer = train(torch.optim.AdamW, 1e-2, device_adam=False, steps=10)
    our_model, our_optimizer = train(torch.optim.AdamW, 1e-2, device_adam=True, steps=10)
    resumed = torch.optim.AdamW(our_model.parameters())
    resumed.load_state_dict(our_optimizer.state_dict())
    inputs, targets = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for model, optimizer in ((torch_model, torch_optimizer), (our_model, resumed)):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    for theirs, ours in zip(torch_model.parameters(), our_model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_amsgrad_is_refused_not_ignored():
    with pytest.raises(ValueError, match="without amsgrad and maximize"):
        DeviceAdam(torch.optim.Adam(nn.Linear(2, 2).parameters(), amsgrad=True))


def test_only_adam_and_adamw_are_graphed():
    model = nn.Linear(4, 3)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="works with Adam and AdamW, not SGD"):
        GraphedStep(sgd, eager_step=None)
