"""Every random stream a run draws from, saved and restored together, so that a resumed run
matches an uninterrupted one bit for bit on the CPU."""

from __future__ import annotations

import random

import torch

from mnist_exp.data.augment import augment_generator


class RandomStreams:
    """The shuffle's and the augmentation's own generators, and torch's and Python's global ones
    (initial weights, dropout). Made before the model, as it seeds the global generator its
    initial weights come from."""

    def __init__(self, seed: int, device: torch.device):
        torch.manual_seed(seed)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.augment = augment_generator(seed, device)

    def state_dict(self) -> dict:
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(),
            "shuffle": self.shuffle.get_state(),
            "augment": self.augment.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        random.setstate(state["python"])
        self.shuffle.set_state(state["shuffle"])
        self.augment.set_state(state["augment"])
