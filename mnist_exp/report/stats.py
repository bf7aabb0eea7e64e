"""Grouping runs and the mean ± spread over a group, shared by the report and the sweep summary.

The two views group by different keys (the whole config, or the overrides without the seed) but
must agree on what a group's numbers mean: the mean, and the sample standard deviation (n - 1)
that a reader compares between rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Iterable
from typing import NamedTuple, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class Stat(NamedTuple):
    """Mean and sample standard deviation over runs; `std` is None for a single run, whose spread
    is unknown rather than zero."""

    mean: float
    std: float | None


def stat(values: Iterable[float | int | None]) -> Stat | None:
    """The Stat of the values that are known; None when none is."""
    known = [float(value) for value in values if value is not None]
    if not known:
        return None
    return Stat(statistics.fmean(known), statistics.stdev(known) if len(known) > 1 else None)


def group_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """The items under their key, groups in the order their first item came: the order runs were
    found in, which a reader of a sweep expects."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups
