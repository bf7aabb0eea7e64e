"""MNIST and Fashion-MNIST that arrive on any machine, verified by SHA-256 before anything trains on them.

torch and torchvision are imported only when needed, to keep start-up fast.
"""

from .cache import default_root
from .datasets import DATASETS, dataset_spec, ensure_named
from .ensure import DatasetSpec, DataUnavailableError, Source, ensure_dataset
from .fashion_mnist import FASHION_MNIST
from .idx import load_split
from .mnist import MNIST

__all__ = [
    "DATASETS",
    "FASHION_MNIST",
    "MNIST",
    "DataUnavailableError",
    "DatasetSpec",
    "Source",
    "dataset_spec",
    "default_root",
    "ensure_dataset",
    "ensure_named",
    "load_split",
]
