"""Source: torchvision's own download mirrors."""

import socket
from collections.abc import Callable
from pathlib import Path


def torchvision_download(dataset: str, timeout: float = 10.0) -> Callable[[Path], None]:
    """Fetch the raw files of torchvision.datasets.<dataset> from its mirrors.

    torchvision opens URLs without a timeout; ours makes a firewalled machine fail in seconds, not hang.
    """

    def fetch(dest: Path) -> None:
        from torchvision import datasets
        from torchvision.datasets.utils import download_and_extract_archive

        cls = getattr(datasets, dataset)
        errors = []
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)
        try:
            for mirror in cls.mirrors:
                try:
                    for filename, md5 in cls.resources:
                        url = mirror + filename
                        download_and_extract_archive(
                            url, dest, filename=filename, md5=md5, remove_finished=True
                        )
                    return
                except Exception as e:  # offline, timeout, bad md5: try the next mirror
                    errors.append(f"{mirror}: {e}")
        finally:
            socket.setdefaulttimeout(previous)
        raise RuntimeError("; ".join(errors))

    return fetch
