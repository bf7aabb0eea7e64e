"""The configs ship inside the package: a plain (non-editable) install works from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# One worker builds the wheel for all of them: two `pip wheel` runs on the same tree at once share
# its build/ dir. CI at 689f775 once imported the editable package instead of the installed one,
# as a wheel built without the package would make it.
pytestmark = pytest.mark.xdist_group("wheel")


@pytest.fixture(scope="module")
def installed_site(tmp_path_factory) -> Path:
    """Build a wheel of the working tree and install it, without dependencies, into a fresh dir."""
    build = tmp_path_factory.mktemp("build")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", build, REPO], check=True,
                   capture_output=True)  # fmt: skip
    wheel = next(build.glob("mnist_exp-*.whl"))
    site = build / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True, capture_output=True)
    return site


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_installed_package_is_the_one_that_runs(installed_site, tmp_path):
    result = run_installed(installed_site, tmp_path, "-c", "import mnist_exp; print(mnist_exp.__file__)")
    assert result.stdout.startswith(str(installed_site)), result.stdout


def test_installed_app_composes_its_shipped_configs_from_another_directory(installed_site, tmp_path):
    result = run_installed(installed_site, tmp_path, "-m", "mnist_exp", "experiment=seed_v1", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "name: v1" in result.stdout and "test_batch_size: 2000" in result.stdout


def test_installed_app_trains(installed_site, tmp_path):
    args = [
        "trainer.epochs=1",
        "data.train_subset=300",
        "trainer.device=cpu",
        "trainer.threads=1",
        "hydra.run.dir=run",
    ]
    result = run_installed(installed_site, tmp_path, "-m", "mnist_exp", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "completed"
