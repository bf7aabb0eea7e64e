"""Spellings people type for a group choice that Hydra alone would refuse, rewritten to its own.

`data.augment=light` means the preset `data/augment=light`. The augmentation presets are a config
group nested in `data`, which Hydra selects with a slash; with a dot Hydra would try to assign the
string to the whole augment node and fail. The dotted spelling is what people type for every
other data key, so it is accepted too. Single keys such as `data.augment.rotation=5` are left
alone.

`+experiment=NAME` means `experiment=NAME`, and likewise for `hparams_search`. Hydra's docs spell
them with `+` because their example apps leave these groups out of the defaults list; ours lists
them (as null, so that a preset can override every group), and Hydra would answer the `+` with
"Multiple values for experiment".
"""

from __future__ import annotations

NESTED_GROUPS = ("data.augment",)
OPTIONAL_GROUPS = ("experiment", "hparams_search")


def expand_group_shorthand(argv: list[str]) -> list[str]:
    return [_expand(arg) for arg in argv]


def _expand(arg: str) -> str:
    key, equals, value = arg.partition("=")
    if equals and key in NESTED_GROUPS and not value.startswith("{"):
        return key.replace(".", "/") + equals + value
    if equals and key.startswith("+") and key[1:] in OPTIONAL_GROUPS:
        return arg[1:]
    return arg
