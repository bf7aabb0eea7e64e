"""How a run trains and scores its network, built once from the config.

The `Trainer` holds what does not change as the run goes on (the data on the device, the loss,
the augmentation, the precision, the compiled or graphed step, the network that is scored); all
that does change lives in the `TrainingState` it is given.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

import torch
from omegaconf import DictConfig

from mnist_exp.accel.graph_step import GraphedStep
from mnist_exp.accel.precision import autocast, speed_up
from mnist_exp.data.augment import RandomWarp, augment_generator, augments_epoch
from mnist_exp.data.tensors import DeviceDataset
from mnist_exp.engine.early_stopping import EarlyStopping
from mnist_exp.engine.loop import (
    cross_entropy,
    evaluate,
    loss_and_accuracy,
    optimizer_step,
    predict_logits,
    train_epoch,
)
from mnist_exp.engine.state import TrainingState
from mnist_exp.engine.views import evaluated_network

OnStep = Callable[[TrainingState, torch.Tensor], None]  # (state, the step's detached loss)
log = logging.getLogger("mnist_exp")
EXAMPLE_DIGITS = 64  # training digits shown beside their augmented draws in TensorBoard


class Trainer:
    def __init__(
        self, cfg: DictConfig, state: TrainingState, data: DeviceDataset, device: torch.device, history=()
    ):
        """`history`: the epochs a resumed run finished before, from which early stopping may
        already have ended it (a process killed as it was finishing)."""
        self.state, self.data, self.device, self.seed = state, data, device, cfg.seed
        self.epochs = cfg.trainer.epochs
        self.batch_size, self.test_batch_size = cfg.data.batch_size, cfg.data.test_batch_size
        self.clean_final_epochs = cfg.data.augment.clean_final_epochs
        self.warp = RandomWarp.from_config(cfg.data.augment)
        if self.clean_final_epochs > self.epochs and not self.warp.is_identity:
            log.info(
                "data.augment.clean_final_epochs=%d is more than trainer.epochs=%d: every epoch trains "
                "on the images as they are",
                self.clean_final_epochs,
                self.epochs,
            )
        self.background = -cfg.data.mean / cfg.data.std  # a black pixel, normalised
        self.autocast = functools.partial(autocast, cfg.trainer.precision, device)
        self.network = speed_up(state.model, cfg.trainer)  # the model's own parameters, maybe compiled
        step = functools.partial(
            optimizer_step, self.network, cross_entropy(cfg.trainer.label_smoothing), self.autocast
        )
        if cfg.trainer.cuda_graphs:
            self.take_step = GraphedStep(state.optimizer, functools.partial(step, None))
        else:
            self.take_step = functools.partial(step, state.scaler, state.optimizer)
        self.scored = evaluated_network(  # the weight average if on, averaged over views if asked
            state.average.module if state.average is not None else self.network,
            eval_hflip=cfg.trainer.eval_hflip,
            eval_shift=cfg.trainer.eval_shift,
            background=self.background,
        )
        self.test_logits: torch.Tensor | None = None  # the last test predictions made
        self.early_stopping = EarlyStopping.from_config(cfg.trainer.early_stopping)
        # Set by the epoch whose validation accuracy ends the run, or by the history it resumes.
        self.stopped_early = self.ends_early(list(history))

    def ends_early(self, history: list[dict]) -> bool:
        """Whether early stopping ends the run after the last epoch of `history`, before its planned
        last: only a run with a validation split can stop early."""
        return (
            len(self.data.val_labels) > 0
            and 0 < len(history) < self.epochs
            and self.early_stopping.should_stop(history)
        )

    def train_epoch(self, epoch: int, stop_requested: Callable[[], bool], on_step: OnStep) -> bool:
        """Train epoch `epoch` (from 1) to its end, or until a stop is requested (then False)."""
        progress = self.state.start_epoch()
        started = time.perf_counter()
        finished = train_epoch(
            self.network,
            self.data.train_images,
            self.data.train_labels,
            progress,
            batch_size=self.batch_size,
            take_step=self.take_step,
            after_step=functools.partial(self._after_step, on_step),
            stop_requested=stop_requested,
            augment=self.augment if self.augments(epoch) else None,
        )
        progress.seconds += time.perf_counter() - started
        return finished

    def _after_step(self, on_step: OnStep, loss: torch.Tensor) -> None:
        self.state.after_step()
        on_step(self.state, loss)

    def augments(self, epoch: int) -> bool:
        """Whether epoch `epoch` (from 1) trains on augmented images."""
        return augments_epoch(epoch, self.epochs, self.clean_final_epochs) and not self.warp.is_identity

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """A batch warped with draws from this run's own augmentation stream."""
        return self.warp(images, self.state.streams.augment, self.background)

    def evaluate(self, epoch: int, earlier: list[dict]) -> dict:
        """The finished epoch's record (train, validation where a split exists, test on every epoch
        without a split and on the last one with it), then the state moves on to the next epoch.
        `earlier` are the epochs before it, from which early stopping decides whether this epoch
        is the last (`stopped_early`)."""
        started = time.perf_counter()
        progress = self.state.progress
        record: dict = {"epoch": epoch}
        record["train_loss"], record["train_acc"] = progress.mean_loss_and_accuracy()
        if len(self.data.val_labels):
            record["val_loss"], record["val_acc"] = evaluate(
                self.scored, self.data.val_images, self.data.val_labels, self.test_batch_size, self.autocast
            )
            self.stopped_early = self.ends_early([*earlier, record])
        if not len(self.data.val_labels) or epoch == self.epochs or self.stopped_early:
            record["test_loss"], record["test_acc"] = loss_and_accuracy(
                self.predict_test(), self.data.test_labels
            )
        record["lr"] = progress.lr
        record["seconds"] = progress.seconds + time.perf_counter() - started
        self.state.end_epoch()
        return record

    def predict_test(self) -> torch.Tensor:
        """Logits for the whole test set, from the network that is scored; kept for the diagnostics."""
        self.test_logits = predict_logits(
            self.scored, self.data.test_images, self.test_batch_size, self.autocast
        )
        return self.test_logits

    def final_test_logits(self) -> torch.Tensor:
        """The last epoch's test predictions (made again for a run resumed after its last epoch)."""
        return self.test_logits if self.test_logits is not None else self.predict_test()

    def example_digits(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Some training digits and one augmented draw of each, from a generator of their own so
        training sees the same batches either way; None without augmentation."""
        if self.warp.is_identity:
            return None
        shown = self.data.train_images[:EXAMPLE_DIGITS]
        return shown, self.warp(shown, augment_generator(self.seed, self.device), self.background)
