"""metrics.json: the run's identity, status, per-epoch history and headline numbers.

Rewritten atomically after every epoch and at every ending (completed, stopped_early, interrupted,
diverged, failed), so a reader always sees a complete document that says how far the run got and how it
ended; a failed run's document also says why (`error`).
"""

from __future__ import annotations

import time
from pathlib import Path

from mnist_exp.fs.atomic import write_json

# A run that ended by design: it ran all its epochs, or early stopping ended it. Nothing is left to
# resume, and its final numbers are results.
FINISHED = frozenset({"completed", "stopped_early"})


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
        """Append an epoch; True if it is the best so far by validation accuracy. A run without a
        validation split has no best epoch: picking one by test accuracy would select the model
        on the set that is meant to measure it."""
        best_before = max((r.get("val_acc", float("-inf")) for r in self.history), default=float("-inf"))
        self.history.append(record)
        return "val_acc" in record and record["val_acc"] > best_before

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
        document["duration_s"] = self.duration
        if status == "stopped_early":
            document["stopped_epoch"] = last["epoch"]
        if error is not None:
            document["error"] = error
        return document

    def save(self, status: str, error: str | None = None) -> dict:
        document = self.document(status, error)
        write_json(self.path, document)
        return document
