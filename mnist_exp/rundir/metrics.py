"""metrics.json: the run's identity, status, per-epoch history and headline numbers.

Rewritten atomically after every epoch and at every ending (completed, interrupted, diverged,
failed), so a reader always sees a complete document that says how far the run got and how it
ended; a failed run's document also says why (`error`).
"""

from __future__ import annotations

import time
from pathlib import Path

from mnist_exp.fs.atomic import write_json


class RunMetrics:
    def __init__(
        self, path: Path, model: str, params: int, device: str, epochs: int, history=(), duration=0.0
    ):
        self.path = path
        self.identity = {"model": model, "params": params, "device": device, "epochs": epochs}
        self.history = list(history)
        self.previous_duration = duration  # time spent before a resume
        self.started = time.perf_counter()

    @property
    def duration(self) -> float:
        return self.previous_duration + time.perf_counter() - self.started

    def add_epoch(self, record: dict) -> bool:
        """Append an epoch; True if it is the best so far: by validation accuracy when the run
        holds a split out (the test set then only measures the last epoch), else by test accuracy."""
        key = "val_acc" if "val_acc" in record else "test_acc"
        best_before = max((r[key] for r in self.history), default=float("-inf"))
        self.history.append(record)
        return record[key] > best_before

    def document(self, status: str, error: str | None = None) -> dict:
        last = self.history[-1] if self.history else {}
        document = {
            **self.identity,
            "status": status,
            "history": self.history,
            "final_test_acc": last.get("test_acc"),
        }
        if "val_acc" in last:
            document["final_val_acc"] = last["val_acc"]
            document["best_val_acc"] = max(r["val_acc"] for r in self.history)
        else:
            document["best_test_acc"] = max((r["test_acc"] for r in self.history), default=None)
        document["duration_s"] = self.duration
        if error is not None:
            document["error"] = error
        return document

    def save(self, status: str, error: str | None = None) -> dict:
        document = self.document(status, error)
        write_json(self.path, document)
        return document
