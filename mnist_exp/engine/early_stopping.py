"""When a run stops before its last epoch: once its validation accuracy has stopped improving.

The decision is made from the run's history alone, so a resumed run reaches the same one as a run
that never stopped. Only validation accuracy counts; the test set never decides when to stop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EarlyStopping:
    patience: int  # 0: never stop early
    min_delta: float  # percentage points of validation accuracy that count as an improvement

    @classmethod
    def from_config(cls, cfg) -> EarlyStopping:
        """From `trainer.early_stopping`."""
        return cls(int(cfg.patience), float(cfg.min_delta))

    def epochs_without_improvement(self, history: list[dict]) -> int:
        """Epochs since the validation accuracy last beat the best before it by more than min_delta."""
        best, waited = float("-inf"), 0
        for record in history:
            if record["val_acc"] > best + self.min_delta:
                best, waited = record["val_acc"], 0
            else:
                waited += 1
        return waited

    def should_stop(self, history: list[dict]) -> bool:
        return self.patience > 0 and self.epochs_without_improvement(history) >= self.patience
