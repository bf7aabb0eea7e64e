"""`key=value` words after the checkpoint in `mnist-exp-eval`, read as training's overrides read.

Only the few keys that change what an evaluation reads, where it runs and where it writes are
taken. Anything else is refused rather than ignored: a training key such as `trainer.epochs=5`
means nothing to a trained model, and silently dropping it would let a person believe it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnist_exp.config.validation import DEVICE_PATTERN
from mnist_exp.data import DATASETS
from mnist_exp.errors import ConfigError

KEYS = {
    "data": f"one of {', '.join(DATASETS)}",
    "data.root": "a directory holding <name>/raw/, as training's data.root",
    "data.test_batch_size": "a whole number >= 1",
    "trainer.device": "one of auto, cpu, cuda, cuda:N, mps",
    "out": "a directory to write into (default: RUN_DIR/eval/<checkpoint>_<dataset>)",
}


@dataclass(frozen=True)
class EvalOverrides:
    dataset: str | None = None  # None: the dataset the run trained on
    root: Path | None = None  # None: the run's data.root
    test_batch_size: int | None = None  # None: the run's data.test_batch_size
    device: str = "cpu"
    out: Path | None = None  # None: RUN_DIR/eval/<checkpoint stem>_<dataset>


def parse_overrides(words: list[str]) -> EvalOverrides:
    """The overrides as given, each checked; ConfigError names the word and what is allowed."""
    given: dict[str, str] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals or key not in KEYS:
            what = f"unknown override key {key!r}" if equals else f"{word!r} is not a key=value override"
            raise ConfigError(f"{what}: the keys are {', '.join(KEYS)}")
        if key in given:
            raise ConfigError(f"{key}= is given twice ({key}={given[key]} and {word}): give it once")
        if not value or not _allowed(key, value):
            raise ConfigError(f"{key}={value!r} is not allowed: {KEYS[key]}")
        given[key] = value
    return EvalOverrides(
        dataset=given.get("data"),
        root=Path(given["data.root"]).expanduser() if "data.root" in given else None,
        test_batch_size=int(given["data.test_batch_size"]) if "data.test_batch_size" in given else None,
        device=given.get("trainer.device", "cpu"),
        out=Path(given["out"]).expanduser() if "out" in given else None,
    )


def _allowed(key: str, value: str) -> bool:
    if key == "data":
        return value in DATASETS
    if key == "data.test_batch_size":
        return value.isdigit() and int(value) >= 1
    if key == "trainer.device":
        return DEVICE_PATTERN.fullmatch(value) is not None
    return True  # a path: whether it can be read or written is found when it is used
