"""`data.augment=light` on the command line means the preset `data/augment=light`.

The augmentation presets are a config group nested in `data`, which Hydra selects with a slash;
with a dot Hydra would try to assign the string to the whole augment node and fail. The dotted
spelling is what people type for every other data key, so it is accepted too. Single keys such
as `data.augment.rotation=5` are left alone.
"""

from __future__ import annotations

NESTED_GROUPS = ("data.augment",)


def expand_group_shorthand(argv: list[str]) -> list[str]:
    return [_expand(arg) for arg in argv]


def _expand(arg: str) -> str:
    key, equals, value = arg.partition("=")
    if equals and key in NESTED_GROUPS and not value.startswith("{"):
        return key.replace(".", "/") + equals + value
    return arg
