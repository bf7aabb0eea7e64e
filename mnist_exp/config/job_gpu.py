"""`${job_gpu:}`: a GPU per job when a sweep runs its jobs side by side on one machine.

The joblib launcher's workers are started once and reused, so CUDA_VISIBLE_DEVICES cannot differ
from job to job. Instead the job picks its device from its job number, which its directory's name
starts with: `'trainer.device=${job_gpu:}'` resolves to `cuda:<hydra.job.num mod GPU count>`, and
to `auto` on a machine without CUDA. With `hydra.launcher.n_jobs` equal to the GPU count the jobs
running together sit on different GPUs, unless a short job lets job k + n_jobs start beside a
still running job k, which then shares its GPU. (Under SLURM or Ray, ask the launcher for one GPU
per job instead: each job then sees only its own, and `auto` finds it.)
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf


def job_gpu() -> str:
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return "auto"
    return f"cuda:{HydraConfig.get().job.num % count}"


def register_job_gpu() -> None:
    """Make `${job_gpu:}` resolvable; call it where every job process imports the app."""
    if not OmegaConf.has_resolver("job_gpu"):
        OmegaConf.register_new_resolver("job_gpu", job_gpu)
