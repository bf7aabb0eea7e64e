"""Where a run came from: the code, the libraries, the machine and the command, in the run's own
`provenance.json`, so that two figures are only compared knowing what produced them.

Each process that trains in a run directory adds one attempt (a resumed run has several, maybe
from different machines); the attempt is written when it starts and again, with its end time and
how it ended, when it ends.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from mnist_exp.fs.atomic import write_json

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state(directory: Path = PACKAGE_DIR) -> dict:
    """The commit the code was run from and whether tracked files differed from it; empty when
    the package is not in a git checkout (an installed wheel) or git is missing."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": dirty}


def cpu_model() -> str:
    """The CPU's marketing name (`lscpu`'s "Model name"), from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_facts(device: torch.device) -> dict:
    if device.type == "cuda":
        return {
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        }
    return {"device": str(device), "device_name": cpu_model() if device.type == "cpu" else device.type}


def attempt(device: torch.device) -> dict:
    """This process's part of the record, as it starts."""
    return {
        "started_utc": utc_now(),
        "ended_utc": None,
        "ended_as": None,
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "mnist_exp": version_of("mnist-exp"),
        **git_state(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version_of("torchvision"),
        "hydra": version_of("hydra-core"),
        **device_facts(device),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


class Provenance:
    """The run's provenance.json: earlier attempts as they were saved, then this process's."""

    def __init__(self, path: Path, device: torch.device, earlier: list[dict] = ()):
        self.path = path
        self.attempts = [*earlier, attempt(device)]

    def save(self) -> None:
        write_json(self.path, {"attempts": self.attempts})

    def note(self, **facts) -> None:
        """Facts this attempt learnt as it started (the memory layout it timed), saved with it."""
        self.attempts[-1] |= facts

    def ended(self, status: str) -> None:
        self.attempts[-1] |= {"ended_utc": utc_now(), "ended_as": status}
        self.save()
