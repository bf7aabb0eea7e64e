"""Unpickle numpy arrays only: a downloaded pickle must not be able to run code."""

import pickle

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct  # numpy >= 2
except ImportError:
    from numpy.core.multiarray import _reconstruct

# Every global an array pickle needs, under its numpy 1 and numpy 2 module names.
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
}


class UnsafePickleError(pickle.UnpicklingError):
    pass


class NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle {module}.{name}: only numpy arrays allowed"
            ) from None
