"""Make a dataset's raw files present and verified: the cache, else each source in turn, always SHA-256."""

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mnist_exp.errors import UserError

from .cache import default_root, locked
from .checksum import sha256_file

logger = logging.getLogger(__name__)

_verified: set = set()  # (raw dir, files) already hashed in this process


class DataUnavailableError(UserError):
    """No source gave files with the expected checksums; the message says what was tried and the fix."""


@dataclass(frozen=True)
class Source:
    """One way to get the files: `fetch(dest)` writes them into the empty directory `dest`, or raises."""

    name: str
    fetch: Callable[[Path], None]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as torchvision lays it out: <root>/<name>/raw/<file>, each file with its SHA-256."""

    name: str
    files: Mapping[str, str]
    sources: tuple[Source, ...]
    # Each label's name, in label order: a model trained on one dataset is scored on another only
    # where these are the same.
    classes: tuple[str, ...]
    fetch_command: str = "python -m mnist_exp.data"  # what the manual fix tells a person to run


def ensure_dataset(spec: DatasetSpec, root: Path | str | None = None) -> Path:
    """Return <root>/<name>/raw holding every file of `spec`, verified; fetch what is missing or corrupt."""
    root = Path(root).expanduser() if root is not None else default_root()
    raw = root / spec.name / "raw"
    key = (raw.resolve(), tuple(sorted(spec.files.items())))
    if key in _verified:
        return raw
    if _problems(raw, spec.files):
        try:
            raw.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataUnavailableError(
                f"{spec.name}: cannot create the data cache {raw} ({error.strerror}). "
                "Point data.root (or --root) at a directory you can write to."
            ) from None
        with locked(raw.parent / ".lock"):
            problems = _problems(raw, spec.files)  # another process may have filled it while we waited
            if problems:
                _fetch(spec, raw, problems)
    logger.info("%s: verified cache at %s", spec.name, raw)
    _verified.add(key)
    return raw


def _problems(directory: Path, files: Mapping[str, str]) -> dict[str, str]:
    """Files that fail verification, each with why."""
    problems = {}
    for name, sha256 in files.items():
        path = directory / name
        if not path.is_file():
            problems[name] = "missing"
        elif sha256_file(path) != sha256:
            problems[name] = f"SHA-256 mismatch, {path.stat().st_size} bytes"
    return problems


def _fetch(spec: DatasetSpec, raw: Path, problems: dict[str, str]) -> None:
    for name, why in problems.items():
        if why != "missing":
            logger.warning(
                "%s: cached %s failed verification (%s); fetching again", spec.name, raw / name, why
            )
    tried = [f"cache {raw}: {_summary(problems)}"]
    for source in spec.sources:
        logger.info("%s: fetching from %s ...", spec.name, source.name)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=raw.parent) as tmp:
            tmp = Path(tmp)
            try:
                source.fetch(tmp)
            except Exception as e:  # any failure of a source just means: try the next one
                reason = " ".join(f"{type(e).__name__}: {e}".split())
            else:
                fetched = {name: spec.files[name] for name in problems}
                bad = _problems(tmp, fetched)
                for name in fetched.keys() - bad.keys():
                    _commit(tmp / name, raw / name)
                problems = bad
                if not problems:
                    return
                reason = f"bad files: {_summary(problems)}"
        logger.warning("%s: %s failed: %s", spec.name, source.name, reason)
        tried.append(f"{source.name}: {reason}")
    raise DataUnavailableError(_manual_fix(spec, raw, tried))


def _commit(src: Path, dst: Path) -> None:
    """Durably move a verified file into place: readers see the old file or all of the new one."""
    with open(src, "rb") as f:
        os.fsync(f.fileno())
    os.replace(src, dst)  # atomic: src is in a sibling temp dir on the same filesystem
    fd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _summary(problems: dict[str, str]) -> str:
    return "; ".join(f"{name} {why}" for name, why in problems.items())


def _manual_fix(spec: DatasetSpec, raw: Path, tried: list[str]) -> str:
    lines = [f"{spec.name} is unavailable: no source gave files with the expected SHA-256. Tried:"]
    lines += [f"  - {line}" for line in tried]
    lines += [
        f"To fix: on a machine with internet access run `{spec.fetch_command} --root DIR`",
        f"and copy DIR/{spec.name}/raw/ to {raw}/, or put these uncompressed files there yourself:",
    ]
    lines += [f"  {name}  sha256 {sha256}" for name, sha256 in spec.files.items()]
    return "\n".join(lines)
