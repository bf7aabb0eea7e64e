"""MNIST that arrives on any machine, verified by SHA-256 before anything trains on it.

torch and torchvision are imported only when needed, to keep start-up fast.
"""

from .cache import default_root
from .ensure import DatasetSpec, DataUnavailableError, Source, ensure_dataset
from .idx import load_split
from .mnist import MNIST, ensure_mnist

__all__ = [
    "MNIST",
    "DataUnavailableError",
    "DatasetSpec",
    "Source",
    "default_root",
    "ensure_dataset",
    "ensure_mnist",
    "load_split",
]
