"""MNIST and Fashion-MNIST that arrive on any machine, verified by SHA-256 before anything trains on them.

Also here: the datasets as normalised tensors on the run's device (`tensors`), and the random
warps that augment them there (`augment`). torch is imported only by the modules that need it,
to keep start-up fast.

May import: `mnist_exp.errors`, `mnist_exp.fs`. Nothing else of ours.
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
