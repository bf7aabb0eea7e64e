"""Adam and AdamW's update with the learning rate and first beta read from device tensors.

A CUDA graph replays fixed kernels, so whatever a schedule changes between steps must sit in
device memory that the kernels read. torch's own `capturable` Adam accepts tensor betas but hands
them to multi-tensor kernels that take only Python numbers (`_foreach_lerp_`, `_foreach_pow`), and
converting one reads the device, a sync that capture refuses (a capture with it failed on an H200).
This is the same update written with the foreach ops that do take tensors, on the optimizer's own
state, so checkpoints stay torch's and a run can resume with or without graphs.
"""

from __future__ import annotations

import torch


class DeviceAdam:
    """Steps a torch Adam or AdamW optimizer (amsgrad and maximize off) without reading the device.

    Call `refill()` after the schedule has changed the optimizer's groups and before `step()`:
    it copies each group's lr and first beta into the tensors the update reads.
    """

    def __init__(self, optimizer: torch.optim.Adam):
        if any(group["amsgrad"] or group["maximize"] for group in optimizer.param_groups):
            raise ValueError("DeviceAdam implements Adam without amsgrad and maximize")
        self.optimizer = optimizer
        self.decoupled = isinstance(optimizer, torch.optim.AdamW) or any(
            group.get("decoupled_weight_decay", False) for group in optimizer.param_groups
        )
        device = optimizer.param_groups[0]["params"][0].device
        self.lr = [torch.zeros((), device=device) for _ in optimizer.param_groups]
        self.beta1 = [torch.zeros((), device=device) for _ in optimizer.param_groups]
        for group in optimizer.param_groups:
            for param in group["params"]:
                self._initial_state(param)
        self.refill()

    def _initial_state(self, param: torch.Tensor) -> None:
        """torch's Adam state for `param`, created now rather than at the first step, with the step
        count on the device (a checkpoint restores it on the host)."""
        state = self.optimizer.state[param]
        if not state:
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] = torch.zeros((), dtype=torch.float32)
        state["step"] = state["step"].to(device=param.device, dtype=torch.float32)

    def refill(self) -> None:
        for group, lr, beta1 in zip(self.optimizer.param_groups, self.lr, self.beta1, strict=True):
            lr.fill_(group["lr"])
            beta1.fill_(group["betas"][0])

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        # What torch's wrapper around optimizer.step records, so that a schedule stepped after this
        # does not warn that the optimizer never stepped.
        self.optimizer._opt_called = True
        for group, lr, beta1 in zip(self.optimizer.param_groups, self.lr, self.beta1, strict=True):
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params, lr, beta1)

    def _update(self, group: dict, params: list[torch.Tensor], lr: torch.Tensor, beta1: torch.Tensor) -> None:
        states = [self.optimizer.state[p] for p in params]
        grads = [p.grad for p in params]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        steps = [s["step"] for s in states]
        beta2, eps, weight_decay = group["betas"][1], group["eps"], group["weight_decay"]

        torch._foreach_add_(steps, 1)
        if weight_decay and self.decoupled:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        elif weight_decay:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, torch._foreach_mul(grads, 1 - beta1))
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        step = steps[0]  # the counts agree: every parameter of these networks gets a gradient every step
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step).sqrt()
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, bias_correction2_sqrt)
        torch._foreach_add_(denominators, eps)
        torch._foreach_div_(denominators, -lr / bias_correction1)
        torch._foreach_addcdiv_(params, exp_avgs, denominators)  # p -= lr / bc1 * m / (sqrt(v / bc2) + eps)
