"""`trainer.deterministic`: the same run twice on one machine, with one software stack, gives the
same bits.

On the CPU the kernels this package uses are deterministic already; the flag then guards against
a future op that is not (torch raises rather than quietly differ). On CUDA it makes torch pick
deterministic kernels (cuDNN convolutions among them) and raise on an op that has none, and cuBLAS
needs a fixed workspace, chosen by an environment variable it reads when CUDA starts. Nothing
promises equal bits across GPU models, drivers, CUDA or torch versions, or thread counts.
"""

from __future__ import annotations

import os

import torch

from mnist_exp.errors import DeviceError

CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"
FIXED_WORKSPACE = ":4096:8"


def set_determinism(enabled: bool, device: torch.device) -> None:
    """Turn deterministic algorithms on or off for this process. Set for every run, off too: a
    sweep's jobs may share one process, and the setting is process-wide."""
    if enabled and device.type == "cuda" and CUBLAS_WORKSPACE not in os.environ:
        if torch.cuda.is_initialized():
            raise DeviceError(
                f"trainer.deterministic=true needs {CUBLAS_WORKSPACE} set before CUDA starts, and CUDA "
                f"already started in this process (an earlier job of the sweep): start it as "
                f"{CUBLAS_WORKSPACE}={FIXED_WORKSPACE} python -m mnist_exp ..."
            )
        os.environ[CUBLAS_WORKSPACE] = FIXED_WORKSPACE
    torch.use_deterministic_algorithms(enabled)
