"""Shared helpers: composing the app's config as Hydra would, and running the CLI as a user types it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import mnist_exp.train  # noqa: F401  registers the config schemas and resolvers, as the CLI does


def pytest_configure(config):
    """A shell without job control starts a background command (`python -m pytest > log &` in a
    script) with Ctrl-C ignored, which every CLI the tests start inherits: the Ctrl-C tests would
    then wait on processes that cannot hear it. Python's own handler is what a terminal gives."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def plain_step(model, optimizer, loss_fn=None, autocast=contextlib.nullcontext, scaler=None):
    """The training step a run takes without CUDA graphs, for tests that call `train_epoch` directly."""
    from mnist_exp.engine.loop import cross_entropy, optimizer_step

    return functools.partial(optimizer_step, model, loss_fn or cross_entropy(), autocast, scaler, optimizer)


@pytest.fixture
def no_flock(monkeypatch):
    """flock failing as on a file system without it (some NFS or Lustre mounts)."""

    def refuse(handle, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", refuse)


@pytest.fixture
def compose_config():
    """compose(overrides) -> the run config, from the configs shipped in the package."""

    def _compose(*overrides: str):
        with initialize_config_module("mnist_exp.conf", version_base="1.3"):
            return compose("config", overrides=list(overrides))

    return _compose


def run_cli(
    *args: str, cwd: Path, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m mnist_exp ARGS` in a subprocess, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "mnist_exp", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str, cwd: Path, own_process_group: bool = False) -> subprocess.Popen:
    """`python -m mnist_exp ARGS` started, its output merged and unbuffered, for `wait_for_line`.
    In a process group of its own, `os.killpg` signals it and its workers as a terminal's Ctrl-C does."""
    return subprocess.Popen(
        [sys.executable, "-m", "mnist_exp", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=own_process_group,
    )


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if text in line:
            return
        assert time.monotonic() < deadline, f"no {text!r} within {timeout} s"
    raise AssertionError(f"process ended before printing {text!r}")
