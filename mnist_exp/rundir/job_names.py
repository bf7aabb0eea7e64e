"""A sweep job's directory name: its job number, then the overrides that set it apart from the
other jobs (`0_lr=0.001`), so that a listing, the summary and TensorBoard's run names say which
job is which without opening its config.

Hydra resolves `hydra.sweep.subdir` in the process that runs the job (a joblib worker, a submitit
or SLURM job, a Ray task), which knows its own overrides but not which of them the sweep varies.
The launching process knows: `mnist_exp.cli.job_names` registers the resolver again with the swept
keys as the sweep starts, and every launcher hands its jobs the launching process's resolvers
along with Hydra's other state (`Singleton.get_state`), a cluster's jobs included.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

RESOLVER = "mnist_exp_job_dir"
SWEPT_RESOLVER = "mnist_exp_swept_keys"  # the same keys, for the job to read (TensorBoard's HParams)
# config.yaml's hydra.sweep.subdir, and the older one: both name job k's dir `k` or `k_...`.
NUMBERED_SUBDIRS = (f"${{{RESOLVER}:}}", "${hydra.job.num}")
MAX_LENGTH = 60
HASH_LENGTH = 8
UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
JOB_DIR = re.compile(r"(\d+)(_.*)?")


def override_key(override: Override) -> str:
    """The key an override sets, without its `+`, `++` or `~`: `+experiment` sets `experiment`."""
    return override.key_or_group + (f"@{override.package}" if override.package else "")


def swept_keys(overrides: Sequence[str]) -> tuple[str, ...]:
    """The keys the command line sweeps: `optimizer.lr=0.001,0.002`, `seed=range(1,4)`, `choice(...)`."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return tuple(override_key(override) for override in parsed if override.is_sweep_override())


def says_how_it_ran(key: str) -> bool:
    """`hydra.*`, `hydra/...` and `resume` say how a run ran, not what it trained."""
    return key.startswith(("hydra.", "hydra/")) or key == "resume"


def set_keys(overrides: Sequence[str]) -> list[str]:
    """The keys (and groups) the command line set, in its order, but not those that say how the
    run ran."""
    keys = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override_key(override)
        if not says_how_it_ran(key) and key not in keys:
            keys.append(key)
    return keys


def shown_overrides(overrides: Sequence[str], swept: Collection[str]) -> list[tuple[str, str | None]]:
    """(key, value as written) of the job's overrides of the swept keys; with none swept (a search
    whose parameters come from config, as Optuna's do), of all but `hydra.*` and `resume=`."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    shown = []
    for override in parsed:
        key = override_key(override)
        if says_how_it_ran(key) or (swept and key not in swept):
            continue
        _, equals, value = override.input_line.partition("=")
        shown.append((key, value if equals else None))
    return shown


def short_keys(keys: Collection[str]) -> dict[str, str]:
    """Each key by its last part (`optimizer.lr` -> `lr`, `data/augment` -> `augment`), or by as
    many more parts as it takes to read differently from the other keys beside it."""
    parts = {key: re.split(r"(?<=[./])", key) for key in keys}
    depth = dict.fromkeys(keys, 1)
    while True:
        shown = {key: "".join(parts[key][-depth[key] :]) for key in keys}
        counts = Counter(shown.values())
        clashing = [key for key in keys if counts[shown[key]] > 1 and depth[key] < len(parts[key])]
        if not clashing:
            return shown
        for key in clashing:
            depth[key] += 1


def job_dir_name(num: int, overrides: Sequence[str], swept: Collection[str] = ()) -> str:
    """`<num>_<key=value>_...`, file-system safe: the number first, so that names never collide
    and sort by job; a name too long for a listing is cut, and ends with a hash of the whole."""
    shown = shown_overrides(overrides, swept)
    short = short_keys({key for key, _ in shown})
    words = [f"{short[key]}={value}" if value is not None else f"~{short[key]}" for key, value in shown]
    text = "_".join([str(num), *words])
    name = UNSAFE.sub("-", text)
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha1(text.encode()).hexdigest()[:HASH_LENGTH]
    return f"{name[: MAX_LENGTH - HASH_LENGTH - 1]}-{digest}"


def job_number(name: str) -> int | None:
    """The job number a sweep job's dir name starts with (`0_lr=0.001`, or a plain `0`), else None."""
    match = JOB_DIR.fullmatch(name)
    return int(match[1]) if match else None


def job_dirs_numbered(sweep_dir: Path, num: int) -> list[Path]:
    """The dirs of job `num` in a sweep dir, by either name it may have."""
    if not sweep_dir.is_dir():
        return []
    return sorted(path for path in sweep_dir.iterdir() if path.is_dir() and job_number(path.name) == num)


def register_job_dir_resolver(swept: Collection[str] = ()) -> None:
    """`${mnist_exp_job_dir:}`: the running job's dir name, showing the `swept` keys. Registered
    with none at import, so that a job whose launcher carries no resolvers still gets a name."""
    swept = tuple(swept)

    def job_dir(*, _root_: DictConfig) -> str:
        overrides = OmegaConf.to_container(_root_.hydra.overrides.task, resolve=False)
        return job_dir_name(_root_.hydra.job.num, overrides, swept)

    OmegaConf.register_new_resolver(RESOLVER, job_dir, replace=True)
    OmegaConf.register_new_resolver(SWEPT_RESOLVER, lambda: list(swept), replace=True)


def keys_this_sweep_varies() -> tuple[str, ...]:
    """The swept keys as the launching process registered them for its jobs; () outside a sweep
    or where none is swept on the command line."""
    return tuple(OmegaConf.create({"swept": f"${{{SWEPT_RESOLVER}:}}"}).swept)
