"""The whole training step (forward, loss, backward, optimizer update) replayed as one CUDA graph.

On a GPU a small CNN's step is bound by Python launching about a hundred small kernels, whatever
the model; captured once, the step is a single launch. What changes from step to step lives in
tensors the graph reads: the batch (copied into fixed input buffers), and the learning rate and
first beta (`mnist_exp.accel.device_adam`, refilled after every schedule step). Only Adam and AdamW.

The first few steps run eagerly on a side stream (what capture needs), and the short last batch
of an epoch runs eagerly too, so training is the same sequence of updates as without the graph.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from mnist_exp.accel.device_adam import DeviceAdam
from mnist_exp.errors import ConfigError

log = logging.getLogger("mnist_exp")
GRAPHABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)
WARMUP_STEPS = 3  # eager steps before capture, so lazy initialisation (cuDNN, cuBLAS) is done


def check_cuda_graphs(device: torch.device) -> None:
    if device.type != "cuda":
        raise ConfigError(
            f"trainer.cuda_graphs=true needs CUDA (the run is on {device}); "
            "add trainer.cuda_graphs=false, or trainer.device=cuda on a machine with a GPU."
        )


# One eager step with a given optimizer: (optimizer, inputs, targets) -> (loss, correct count).
EagerStep = Callable[[object, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class GraphedStep:
    """Call with a batch's (inputs, targets); returns its (loss, correct count) as device tensors.

    `eager_step` is the step to capture (`mnist_exp.engine.loop.optimizer_step` with its model,
    loss and autocast bound, no loss scaler); it is called with this class's Adam update in place
    of `optimizer`'s own. The returned tensors are the graph's own outputs, overwritten by the next
    step: use them before calling again (train_epoch adds them to its sums at once).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, eager_step: EagerStep):
        if not isinstance(optimizer, GRAPHABLE_OPTIMIZERS):
            raise ConfigError(
                f"trainer.cuda_graphs=true works with Adam and AdamW, not {type(optimizer).__name__}; "
                "use optimizer=adamw, or add trainer.cuda_graphs=false."
            )
        self.eager_step = eager_step
        self.optimizer = DeviceAdam(optimizer)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warmups_left = WARMUP_STEPS
        self.inputs = self.targets = self.loss = self.correct = None  # the graph's fixed tensors

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.refill()
        if self.graph is not None and len(inputs) == len(self.inputs):
            self.inputs.copy_(inputs)
            self.targets.copy_(targets)
            self.graph.replay()
            return self.loss, self.correct
        if self.graph is None and not self.warmups_left:
            return self._capture(inputs, targets)
        if self.graph is None:
            self.warmups_left -= 1
            return self._on_side_stream(inputs, targets)
        return self._eager(inputs, targets)  # an epoch's short last batch

    def _eager(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.eager_step(self.optimizer, inputs, targets)

    def _on_side_stream(self, inputs, targets):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            result = self._eager(inputs, targets)
        torch.cuda.current_stream().wait_stream(side)
        return result

    def _capture(self, inputs, targets):
        """Record one step on this batch, then replay it: capture itself computes nothing."""
        self.inputs, self.targets = inputs.clone(), targets.clone()
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates the gradients inside the graph
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss, self.correct = self._eager(self.inputs, self.targets)
        self.graph.replay()
        log.info("Captured the training step as a CUDA graph; it replays for every full batch")
        return self.loss, self.correct
