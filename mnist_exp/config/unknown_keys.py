"""Keys that no schema defines. Hydra adds a `+key=value` override unchecked, so a typo followed by
Hydra's own advice (`+trainer.epoch=3`) would otherwise train while nothing reads the value.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect

from hydra._internal.utils import _locate  # what instantiate itself imports targets with
from omegaconf import DictConfig, ListConfig, OmegaConf

# Parameters of an optimizer or scheduler that mnist_exp.engine.optim passes itself, so none may be set.
PASSED_BY_THE_RUN = ("params", "optimizer", "steps_per_epoch")


def unknown_key_problems(node: DictConfig | ListConfig, path: str = ""):
    """One line for each key below `node` that its schema does not define. A node with a `_target_`
    also takes what its target's signature names (`+optimizer.betas=[0.9,0.99]`): Hydra passes it on."""
    schema = OmegaConf.get_type(node)
    if isinstance(node, DictConfig) and dataclasses.is_dataclass(schema):
        known = {field.name for field in dataclasses.fields(schema)}
        unknown, passed = "is not a known key", ()
        if "_target_" in known and (target := node.get("_target_")):
            try:
                parameters = set(inspect.signature(_locate(target)).parameters)
            except (ImportError, AttributeError, ValueError):
                yield f"{path}._target_={target!r} cannot be imported: name a class, e.g. {schema._target_}"
                return
            known |= parameters
            unknown, passed = f"is not a parameter of {target}", parameters.intersection(PASSED_BY_THE_RUN)
        for key, value in node.items_ex(resolve=False):
            if key in passed:
                yield f"{_join(path, key)}={value!r}: the run passes {key} itself, so drop it"
            elif key not in known:
                yield f"{_join(path, key)}={value!r} {unknown}: {_closest(path, key, known)}"
    children = node.items_ex(resolve=False) if isinstance(node, DictConfig) else enumerate(node)
    for key, child in children:
        if isinstance(child, (DictConfig, ListConfig)):
            yield from unknown_key_problems(child, _join(path, key))


def _closest(path: str, key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"did you mean {_join(path, close[0])}?"
    keys = ", ".join(sorted(k for k in known if not k.startswith("_")))
    owner = f"{path}'s" if path else "the top level's"
    return f"{owner} keys are {keys}"


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)
