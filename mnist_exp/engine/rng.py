"""Every random state a run draws from, captured and restored, so a resumed run matches an
uninterrupted one bit for bit on the CPU."""

from __future__ import annotations

import random

import torch


def capture_rng(shuffle: torch.Generator, augment: torch.Generator) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "shuffle": shuffle.get_state(),
        "augment": augment.get_state(),
    }


def restore_rng(state: dict, shuffle: torch.Generator, augment: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    shuffle.set_state(state["shuffle"])
    if "augment" in state:  # absent from checkpoints written before augmentation existed
        augment.set_state(state["augment"])
