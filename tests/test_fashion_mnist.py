"""Fashion-MNIST through the verified chain on tiny synthetic files: no network, no real apt."""

import dataclasses
import gzip
import hashlib
import os
import sys

import pytest
import torch
from omegaconf import OmegaConf

from mnist_exp.config.validation import validate
from mnist_exp.data import DATASETS, FASHION_MNIST, DataUnavailableError, Source, debian, ensure_named
from mnist_exp.data.__main__ import main as data_main
from mnist_exp.data.idx import read_idx
from mnist_exp.data.tensors import load_device_dataset
from mnist_exp.errors import ConfigError
from tests.test_data import TEST_LABELS, TRAIN_IMAGES, must_not_run, write_tiny_mnist


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference")
    write_tiny_mnist(directory)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


@pytest.fixture
def package_dir(tmp_path):
    """What dataset-fashion-mnist installs: the four idx files, gzipped."""
    directory = tmp_path / "package"
    directory.mkdir()
    write_tiny_mnist(directory)
    for path in list(directory.iterdir()):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    return directory


@pytest.fixture
def offline(monkeypatch, tmp_path, tiny_files):
    """The real Fashion-MNIST sources on a machine without them: torchvision's mirror refuses at once,
    the Debian package is not installed and apt-get is not on PATH. Checksums are the tiny files'."""
    from torchvision import datasets

    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(debian, "INSTALLED", tmp_path / "not-installed")
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.setitem(DATASETS, "fashion_mnist", dataclasses.replace(FASHION_MNIST, files=tiny_files))
    return tmp_path / "cache"


def fake_tools(bin_dir, package_dir, apt_exit=0):
    """Stand-ins for apt-get and dpkg-deb that log their arguments and behave as the real ones do."""
    bin_dir.mkdir()
    scripts = {
        "apt-get": f"""
if {apt_exit}:
    print(f"E: Unable to locate package {{sys.argv[2]}}", file=sys.stderr)
    sys.exit({apt_exit})
Path(f"{{sys.argv[2]}}_1.0_all.deb").touch()
""",
        "dpkg-deb": f"""
unpacked = Path(sys.argv[3], "{debian.PACKAGE_DIR}")
unpacked.mkdir(parents=True)
for archive in Path("{package_dir}").glob("*.gz"):
    shutil.copy(archive, unpacked)
""",
    }
    for name, body in scripts.items():
        header = f"""#!{sys.executable}
import os, shutil, sys
from pathlib import Path
with open("{bin_dir}/log", "a") as log:
    print("{name}", *sys.argv[1:], "in", os.getcwd(), file=log)
"""
        (bin_dir / name).write_text(header + body)
        (bin_dir / name).chmod(0o755)
    return bin_dir / "log"


def assert_tiny_files(raw, tiny_files):
    assert sorted(p.name for p in raw.iterdir()) == sorted(tiny_files)
    for name, sha256 in tiny_files.items():
        assert hashlib.sha256((raw / name).read_bytes()).hexdigest() == sha256


def test_spec_is_laid_out_like_torchvision_and_tries_torchvision_then_debian():
    assert FASHION_MNIST.name == "FashionMNIST"
    assert [s.name.split()[0] for s in FASHION_MNIST.sources] == ["torchvision", "Debian"]


def test_valid_cache_is_used_without_sources(monkeypatch, tmp_path, tiny_files):
    spec = dataclasses.replace(FASHION_MNIST, files=tiny_files, sources=(Source("never", must_not_run),))
    monkeypatch.setitem(DATASETS, "fashion_mnist", spec)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_tiny_mnist(raw)
    assert ensure_named("fashion_mnist", tmp_path) == raw


def test_corrupt_cached_file_is_refetched(monkeypatch, offline, package_dir, tiny_files, caplog):
    monkeypatch.setattr(debian, "INSTALLED", package_dir)
    raw = offline / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_tiny_mnist(raw)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03abc")
    assert ensure_named("fashion_mnist", offline) == raw
    assert "t10k-labels-idx1-ubyte failed verification" in caplog.text
    assert_tiny_files(raw, tiny_files)
    assert read_idx(raw / "t10k-labels-idx1-ubyte", 1).tolist() == TEST_LABELS.tolist()


def test_torchvision_failing_then_installed_debian_package(
    monkeypatch, offline, package_dir, tiny_files, caplog
):
    monkeypatch.setattr(debian, "INSTALLED", package_dir)
    raw = ensure_named("fashion_mnist", offline)
    assert raw == offline / "FashionMNIST" / "raw"
    assert (
        "torchvision download (Fashion-MNIST mirror) failed: RuntimeError: http://127.0.0.1:9/" in caplog.text
    )
    assert_tiny_files(raw, tiny_files)


def test_debian_package_is_downloaded_and_unpacked_without_install(
    monkeypatch, offline, package_dir, tiny_files, tmp_path
):
    log = fake_tools(tmp_path / "bin", package_dir)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    raw = ensure_named("fashion_mnist", offline)
    assert_tiny_files(raw, tiny_files)
    apt, dpkg = log.read_text().splitlines()
    assert apt.startswith(f"apt-get download {debian.PACKAGE} in {offline / 'FashionMNIST'}/.fetch-")
    assert dpkg.startswith("dpkg-deb -x ") and f"/{debian.PACKAGE}_1.0_all.deb " in dpkg
    assert sorted(p.name for p in (offline / "FashionMNIST").iterdir()) == [".lock", "raw"]


def test_apt_get_failure_is_reported(monkeypatch, offline, package_dir, tmp_path):
    fake_tools(tmp_path / "bin", package_dir, apt_exit=100)
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    with pytest.raises(DataUnavailableError) as info:
        ensure_named("fashion_mnist", offline)
    assert f"apt-get download exited with 100: E: Unable to locate package {debian.PACKAGE}" in str(
        info.value
    )


def test_all_sources_failing_names_each_source_and_the_fix(offline, tiny_files):
    with pytest.raises(DataUnavailableError) as info:
        ensure_named("fashion_mnist", offline)
    lines = str(info.value).splitlines()
    assert lines[0].startswith("FashionMNIST is unavailable")
    assert lines[1].startswith(f"  - cache {offline / 'FashionMNIST' / 'raw'}: ")
    assert all(f"{name} missing" in lines[1] for name in tiny_files)
    assert lines[2].startswith(
        "  - torchvision download (Fashion-MNIST mirror): RuntimeError: http://127.0.0.1:9/"
    )
    assert lines[3] == (
        f"  - {FASHION_MNIST.sources[1].name}: FileNotFoundError: "
        f"{debian.INSTALLED} is absent and apt-get is not on PATH (not a Debian-like system)"
    )
    assert "run `python -m mnist_exp.data --dataset fashion_mnist --root DIR`" in lines[4]
    for name, sha256 in tiny_files.items():
        assert f"  {name}  sha256 {sha256}" in lines


def test_unknown_name_is_a_config_error_listing_the_known_ones(tmp_path):
    with pytest.raises(
        ConfigError, match=r"^data.name='cifar10' is not allowed: one of mnist, fashion_mnist$"
    ):
        ensure_named("cifar10", tmp_path)
    assert not list(tmp_path.iterdir())


def test_device_dataset_loads_the_named_dataset(monkeypatch, tmp_path, tiny_files):
    for name, spec in DATASETS.items():
        only_cache = dataclasses.replace(spec, files=tiny_files, sources=(Source("never", must_not_run),))
        monkeypatch.setitem(DATASETS, name, only_cache)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_tiny_mnist(raw)
    cfg = OmegaConf.create(
        {
            "name": "fashion_mnist",
            "root": str(tmp_path),
            "mean": 0.0,
            "std": 1.0,
            "val_size": 0,
            "train_subset": 0,
        }
    )
    data = load_device_dataset(cfg, torch.device("cpu"))
    assert torch.equal(data.train_images[:, 0], torch.from_numpy(TRAIN_IMAGES).float() / 255)
    with pytest.raises(DataUnavailableError):  # mnist looks in MNIST/raw, which holds nothing
        load_device_dataset(OmegaConf.merge(cfg, {"name": "mnist"}), torch.device("cpu"))


def test_config_group_and_validation(compose_config):
    cfg = compose_config("data=fashion_mnist")
    assert (cfg.data.name, cfg.data.mean, cfg.data.std) == ("fashion_mnist", 0.2860, 0.3530)
    validate(cfg)
    with pytest.raises(ConfigError, match="data.name='cifar10' is not allowed: one of mnist, fashion_mnist"):
        validate(compose_config("data.name=cifar10"))


def test_cli_fetches_the_chosen_dataset(monkeypatch, offline, package_dir, capsys):
    monkeypatch.setattr(debian, "INSTALLED", package_dir)
    assert data_main(["--dataset", "fashion_mnist", "--root", str(offline)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"FashionMNIST files verified (SHA-256) in {offline / 'FashionMNIST' / 'raw'}:")
    with pytest.raises(SystemExit):
        data_main(["--dataset", "cifar10"])
