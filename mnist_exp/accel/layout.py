"""`trainer.channels_last=auto`: time a few training steps in each memory layout, keep the faster.

Which layout wins depends on the machine: on a 2-core AMD EPYC with native bf16, channels_last
made V3's CPU step 1.2-1.65x faster, on an Intel Xeon without it 0.93x. So a run set to `auto`
(the default) measures: a scratch copy of its network and optimizer takes warm steps on random
data in both layouts, interleaved, and each layout is judged by its fastest round, since other
work on the machine can only slow a round down; torch's random state is kept as it was (the run's
weights and dropout masks do not depend on the timing). The choice and its timings are logged and
kept in provenance.json; the run's config carries the choice from then on, so a resumed run keeps
it.

A run too short to repay the timing (fewer than `WORTH_TIMING` training steps, ten times the
steps the timing takes) keeps NCHW untimed: a one-step check of a config should not spend a second
choosing how to lay out memory.

A timed choice can differ from one run to the next where the two layouts are close, and layouts
round differently; `trainer.deterministic=true` therefore takes NCHW without timing, and a
comparison across runs that must be bit for bit names the layout itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, open_dict

log = logging.getLogger("mnist_exp")

WARM_STEPS, TIMED_STEPS, ROUNDS = 2, 4, 3
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
WORTH_TIMING = 10 * ROUNDS * len(LAYOUTS) * (WARM_STEPS + TIMED_STEPS)  # training steps
MakeStep = Callable[[], tuple[torch.nn.Module, Callable[[torch.memory_format], None]]]


@dataclass(frozen=True)
class LayoutChoice:
    channels_last: bool
    ms_per_step: dict[str, float] | None  # the fastest round's, per layout; None when not timed
    reason: str

    def apply(self, trainer_cfg: DictConfig) -> None:
        """The run's config carries the choice from here on (and into its checkpoints)."""
        with open_dict(trainer_cfg):
            trainer_cfg.channels_last = self.channels_last

    def record(self) -> dict:
        return {"channels_last": self.channels_last, "ms_per_step": self.ms_per_step, "by": self.reason}


def choose_layout(
    trainer_cfg: DictConfig, device: torch.device, make_step: MakeStep, steps: int
) -> LayoutChoice:
    """Resolve `trainer.channels_last` in place (auto -> true or false) and say how it was chosen.
    `make_step()` gives a scratch network and a function taking one training step in a layout;
    `steps` is how many training steps the run has ahead of it."""
    setting = trainer_cfg.channels_last
    if setting != "auto":
        return LayoutChoice(bool(setting), None, "set in the config")
    if trainer_cfg.deterministic:
        choice = LayoutChoice(False, None, "trainer.deterministic=true: NCHW, not timed")
    elif steps < WORTH_TIMING:
        choice = LayoutChoice(False, None, f"a run of {steps} training steps: NCHW, not timed")
        log.info(
            "Memory layout: nchw, not timed: %d training steps are too few to repay timing both "
            "layouts (it pays from %d); trainer.channels_last=true chooses channels_last",
            steps, WORTH_TIMING,
        )  # fmt: skip
    else:
        timings = time_layouts(device, make_step)
        faster = min(timings, key=timings.get)
        choice = LayoutChoice(faster == "channels_last", timings, "timed at start-up")
        log.info(
            "Memory layout: %s (%.1f ms a training step; %s %.1f ms), timed on this machine; "
            "trainer.channels_last=true or false chooses it yourself",
            faster, timings[faster], *[(name, ms) for name, ms in timings.items() if name != faster][0],
        )  # fmt: skip
    choice.apply(trainer_cfg)
    return choice


def time_layouts(device: torch.device, make_step: MakeStep) -> dict[str, float]:
    """Milliseconds per step for each layout in its fastest round, kept because interference only
    ever adds time: under bursts of other load, medians chose the slower layout far more often than
    fastest rounds did (`benchmarks/layout_choice.py`; figures in docs/speed.md)."""
    return {name: round(min(times), 2) for name, times in layout_rounds(device, make_step).items()}


def layout_rounds(
    device: torch.device, make_step: MakeStep, rounds: int = ROUNDS, timed_steps: int = TIMED_STEPS
) -> dict[str, list[float]]:
    """Milliseconds per step, per layout and round, the rounds interleaved so that a machine that
    speeds up or slows down as it goes weighs on both alike; torch's random state is restored."""
    samples: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        network, step = make_step()
        for _round in range(rounds):
            for name, layout in LAYOUTS.items():
                network.to(memory_format=layout)
                for _ in range(WARM_STEPS):
                    step(layout)
                synchronize(device)
                started = time.perf_counter()
                for _ in range(timed_steps):
                    step(layout)
                synchronize(device)
                samples[name].append((time.perf_counter() - started) * 1000 / timed_steps)
    return samples


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
