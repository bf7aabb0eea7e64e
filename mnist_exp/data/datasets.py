"""The datasets a run can name with `data.name`: the one place that maps names to specs."""

from pathlib import Path

from mnist_exp.errors import ConfigError

from .ensure import DatasetSpec, ensure_dataset
from .fashion_mnist import FASHION_MNIST
from .mnist import MNIST

DATASETS = {"mnist": MNIST, "fashion_mnist": FASHION_MNIST}


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of `name`; an unknown name is a config error that lists the known ones."""
    if name not in DATASETS:
        raise ConfigError(f"data.name={name!r} is not allowed: one of {', '.join(DATASETS)}")
    return DATASETS[name]


def ensure_named(name: str, root: Path | str | None = None) -> Path:
    """Directory with the verified raw files of the dataset `name`, fetched if needed."""
    return ensure_dataset(dataset_spec(name), root)
