"""Source: Debian's package dataset-fashion-mnist, installed or fetched with `apt-get download` (no root)."""

import gzip
import shutil
import subprocess
from pathlib import Path

PACKAGE = "dataset-fashion-mnist"
PACKAGE_DIR = "usr/share/datasets/fashion-mnist"  # where the package puts its four .gz files
INSTALLED = Path("/") / PACKAGE_DIR


def fetch_from_debian(dest: Path) -> None:
    """Gunzip the package's files into `dest`: the installed ones, else those of the downloaded package."""
    directory = INSTALLED if INSTALLED.is_dir() else _download_package(dest / "deb")
    archives = sorted(directory.glob("*.gz"))
    if not archives:
        raise FileNotFoundError(f"no .gz files in {directory}")
    for archive in archives:
        with gzip.open(archive, "rb") as src, open(dest / archive.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _download_package(workdir: Path) -> Path:
    """apt-get download writes the .deb into the working directory and dpkg-deb -x unpacks it: no root."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(
                f"{INSTALLED} is absent and {tool} is not on PATH (not a Debian-like system)"
            )
    workdir.mkdir()
    _run(["apt-get", "download", PACKAGE], cwd=workdir)
    deb = next(workdir.glob("*.deb"))
    _run(["dpkg-deb", "-x", str(deb), str(workdir / "root")])
    return workdir / "root" / PACKAGE_DIR


def _run(command: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{' '.join(command[:2])} exited with {result.returncode}: {last}")
