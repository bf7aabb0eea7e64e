"""Which jobs of a sweep train together as one packed network, and why the others cannot.

Jobs pack when their configs are the same but for `seed` (and `resume`, whose saved configs are
compared again once read): the same model, optimizer, schedule, data, epochs and device. A group
runs as one network only where every copy would compute what it computes alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from mnist_exp.report.drift import flatten

# The optimizers whose step on a packed parameter is each copy's own step: elementwise updates.
ELEMENTWISE_OPTIMIZERS = ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD")
PACKABLE_MODELS = ("mnist_exp.models.ConvNet",)
PER_COPY_KEYS = ("seed", "resume")
ALONE_IN_ITS_SHARE = "its share of the seeds is one (the seeds split evenly by max_copies and workers)"


@dataclass(frozen=True)
class Group:
    """Jobs (their indices in the sweep) trained together, or one job alone and why."""

    jobs: tuple[int, ...]
    alone_because: str | None = None


def launcher_problem(max_copies: object, workers: object) -> str | None:
    """What is wrong with the packed launcher's settings, or None."""
    if not _at_least_one(max_copies):
        return (
            f"hydra.launcher.max_copies={max_copies!r}: pack at least 1 copy (a whole number; 8 by default)"
        )
    if not _at_least_one(workers):
        return (
            f"hydra.launcher.workers={workers!r}: train in at least 1 process (a whole number; 1 by default)"
        )
    return None


def _at_least_one(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def plan_groups(configs: Sequence[dict], max_copies: int, workers: int = 1) -> list[Group]:
    """`configs`: each job's resolved task config (no `hydra`), in sweep order. Jobs alike but for
    their seed are cut, in sweep order, into the fewest groups of at most `max_copies`, and at
    least `workers` so that every worker process gets one, as even as they can be (9 seeds: 5 and
    4, not 8 and a lone one); a job that cannot pack forms a group of its own, with the reason."""
    alike: dict[str, list[int]] = {}
    for index, config in enumerate(configs):
        alike.setdefault(_without_per_copy_keys(config), []).append(index)
    groups = []
    for jobs in alike.values():
        reason = next(unpackable(configs[jobs[0]]), None)
        if reason is None and len(jobs) == 1:
            reason = "no other job of this sweep differs from it only in seed"
        if reason is not None:
            groups += [Group((job,), reason) for job in jobs]
            continue
        count = max(math.ceil(len(jobs) / max_copies), min(workers, len(jobs)))
        for chunk in even_chunks(jobs, count):
            groups.append(Group(chunk, None if len(chunk) > 1 else ALONE_IN_ITS_SHARE))
    return sorted(groups, key=lambda group: group.jobs[0])


def even_chunks(jobs: list[int], count: int) -> Iterator[tuple[int, ...]]:
    """`jobs` cut into `count` runs of consecutive jobs whose sizes differ by at most one."""
    size, longer = divmod(len(jobs), count)
    start = 0
    for chunk in range(count):
        end = start + size + (chunk < longer)
        yield tuple(jobs[start:end])
        start = end


def unpackable(config: dict) -> Iterator[str]:
    """Why a job with this config cannot train packed, if it cannot."""
    trainer = config["trainer"]
    if config["model"].get("_target_") not in PACKABLE_MODELS:
        yield f"model {config['model'].get('_target_')} is not a ConvNet, the one network that packs"
    if config["optimizer"].get("_target_") not in ELEMENTWISE_OPTIMIZERS:
        yield f"optimizer {config['optimizer'].get('_target_')} may mix copies; Adam, AdamW and SGD pack"
    if trainer["precision"] == "fp16":
        yield "trainer.precision=fp16: one loss scale would skip every copy's step for one copy's overflow"
    if trainer["compile"]:
        yield "trainer.compile=true compiles one run's network, not a packed one"
    if trainer["cuda_graphs"]:
        yield "trainer.cuda_graphs=true captures one run's step, not a packed one"


def _without_per_copy_keys(config: dict) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in PER_COPY_KEYS}, sort_keys=True)


def differences_beyond_seed(configs: Sequence[dict]) -> list[str]:
    """The dotted keys (other than seed and resume) in which `configs` differ: for resumed runs,
    whose saved configs are only known once their checkpoints are read."""
    first = flatten(configs[0])
    keys = set()
    for config in configs[1:]:
        other = flatten(config)
        keys |= {key for key in first.keys() | other.keys() if first.get(key) != other.get(key)}
    return sorted(key for key in keys if key.split(".")[0] not in PER_COPY_KEYS)
