"""Keep a README row's command true: pin every value its presets no longer give.

Tuning rounds change presets after their rows were measured (`fashion_v3_plus` went from 20 to 60
epochs), so `experiment=X` can compose something else today than what the row's runs trained. Each
command is composed again from the packaged configs and compared, key by key, with the first run's
saved config; a value that differs is appended to the command as an override. A key the run saved
but the presets no longer have cannot be pinned that way and is reported instead. Trainer,
augmentation, OneCycle and model activation keys a run did not save were added since and count as
their defaults (what the code did then), so a preset that changes one later gets it pinned back;
other unsaved keys are not compared.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mnist_exp.config.job_gpu import register_job_gpu
from mnist_exp.config.schema import (
    RetiredKeyError,
    register_schemas,
    saved_config_read_today,
    without_retired_keys,
)
from mnist_exp.report.summary import IGNORED_KEYS, Row
from mnist_exp.rundir.resume import register_resolvers

ABSENT = object()
BARE_STRING = re.compile(r"[A-Za-z_][\w./-]*")
HYDRA_WORDS = {"true", "false", "null", "inf", "nan"}


def pin_drifted_commands(rows: list[Row]) -> tuple[list[Row], list[str]]:
    """The rows with their commands pinned, and one line per row whose command still cannot
    reproduce its runs."""
    register_schemas()  # what the CLI registers, for the packaged configs to compose as they do there
    register_job_gpu()
    register_resolvers()
    pinned, problems = [], []
    with initialize_config_module("mnist_exp.conf", version_base="1.3"):
        for row in rows:
            row, problem = pinned_row(row)
            pinned.append(row)
            if problem:
                problems.append(problem)
    return pinned, problems


def pinned_row(row: Row) -> tuple[Row, str | None]:
    """The row with its drifted values pinned, and what could not be, composed from the packaged
    configs as `python -m mnist_exp OVERRIDES` would."""
    saved = row.runs[0].config
    if not saved:
        return row, None
    try:
        composed = OmegaConf.to_container(compose("config", overrides=list(row.overrides)), resolve=True)
    except (HydraException, OmegaConfBaseException) as error:
        return row, f"{row.command}: no longer composes ({error})"
    try:
        pins, unpinnable = drift_pins(saved, composed)
    except RetiredKeyError as error:
        return row, f"{row.command}: cannot train what its runs trained: {error}"
    problem = None
    if unpinnable:
        problem = (
            f"{row.command}: cannot train what its runs trained, as the presets no longer have "
            f"{', '.join(unpinnable)} (the runs' whole config: {row.runs[0].path}/.hydra/config.yaml)"
        )
    return replace(row, overrides=(*row.overrides, *pins)), problem


def drift_pins(saved: dict, composed: dict) -> tuple[list[str], list[str]]:
    """(`key=value` overrides that restore the saved values, saved keys that composed lacks)."""
    pins, unpinnable = [], []
    read_today = flatten(OmegaConf.to_container(saved_config_read_today(saved)))
    # The saved keys in their order, then those added since.
    for key, value in (flatten(without_retired_keys(saved)) | read_today).items():
        if key.split(".")[0] in IGNORED_KEYS:
            continue
        current = lookup(composed, key)
        if current is ABSENT:
            unpinnable.append(key)
        elif current != value or isinstance(current, bool) != isinstance(value, bool):
            pins.append(shlex.quote(f"{key}={hydra_value(value)}"))
    return pins, unpinnable


def lookup(config: object, key: str) -> object:
    """The value at a dotted key of `flatten`, or ABSENT."""
    node = config
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ABSENT
    return node


def flatten(node: object, prefix: str = "") -> dict[str, object]:
    """Dotted keys (list items by index, as Hydra's overrides spell them) to leaf values."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list) and node:
        items = enumerate(node)
    else:
        return {prefix: node}
    flat: dict[str, object] = {}
    for key, value in items:
        flat |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def hydra_value(value: object) -> str:
    """`value` as Hydra's override grammar reads it back: strings that would parse as something
    else are quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value == []:
        return "[]"
    text = str(value)
    if BARE_STRING.fullmatch(text) and text.lower() not in HYDRA_WORDS:
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
