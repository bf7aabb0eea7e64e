"""The recorder: the one owner of what a run leaves behind while it trains.

It writes the console's progress bars and epoch lines, TensorBoard's events, metrics.json and the
checkpoints, and it is a context manager: whatever ends the block (completion, a stop signal, a
diverging loss, any exception), metrics.json is left with a final status, never `running`, and
the event file is flushed and closed.
"""

from __future__ import annotations

import logging
import math
from types import TracebackType

import torch
from omegaconf import DictConfig, OmegaConf

from mnist_exp.errors import Diverged, UserError
from mnist_exp.models import count_parameters, layer_summary
from mnist_exp.monitor import console
from mnist_exp.monitor.diagnostics import log_test_diagnostics
from mnist_exp.monitor.provenance import Provenance
from mnist_exp.monitor.tensorboard import TensorBoardLog, dashboard_hparams
from mnist_exp.rundir.checkpoints import save_checkpoint
from mnist_exp.rundir.job_names import set_keys
from mnist_exp.rundir.layout import METRICS, PROVENANCE, best_checkpoint, last_checkpoint
from mnist_exp.rundir.metrics import RunMetrics
from mnist_exp.rundir.readers import read_provenance

log = logging.getLogger("mnist_exp")
INPUT_SHAPE = (1, 28, 28)


class Recorder:
    """`job` is what Hydra told the run of itself (`mnist_exp.train.Job`: its run dir, group
    choices, overrides and swept keys); `state` is its `mnist_exp.engine.state.TrainingState`;
    `resumed` is the checkpoint a resumed run continues from (its history and time so far carry on).
    `show_progress`: whether its progress bars show on a terminal (of packed runs, one shows)."""

    def __init__(self, job, cfg: DictConfig, state, device: torch.device, resumed=None, show_progress=True):
        run_dir = job.run_dir
        self.run_dir, self.cfg, self.state, self.resumed = run_dir, cfg, state, resumed is not None
        self.overrides = job.overrides
        self.config = OmegaConf.to_container(cfg, resolve=True)  # saved in every checkpoint
        self.epochs = cfg.trainer.epochs
        self.log_every = cfg.trainer.log_every_n_steps
        self.check_every = 1 if device.type == "cpu" else self.log_every  # reading the loss syncs a GPU
        params = count_parameters(state.model)
        self.hparams = dashboard_hparams(cfg, job.choices, job.swept or set_keys(job.overrides), params)
        self.metrics = RunMetrics(
            run_dir / METRICS,
            cfg.model.name,
            params,
            str(device),
            self.epochs,
            history=resumed["history"] if resumed else (),
            duration=resumed["duration_s"] if resumed else 0.0,
        )
        earlier = read_provenance(run_dir) if resumed else []
        self.provenance = Provenance(run_dir / PROVENANCE, device, earlier)
        # A resumed run drops the events a killed process wrote after its checkpoint.
        self.board = TensorBoardLog(run_dir, purge_step=state.step + 1 if resumed else None)
        self.bars = console.epoch_progress(show_progress)
        self.bar, self.epoch, self.status = None, None, None

    def __enter__(self) -> Recorder:
        self.provenance.save()
        self.bars.__enter__()
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        """Whatever ended the block is what the caller sees: a failure to record how the run ended
        (a full disk) is logged, never raised in its place."""
        try:
            if error is not None and self.status is None:
                self.ended(*how_it_ended(error))
        except (OSError, UserError) as unrecorded:
            if error is None:
                raise
            log.error("could not record how the run ended: %s", unrecorded)
        finally:
            self.bars.__exit__(kind, error, trace)
            self.close_board(error)

    def close_board(self, error: BaseException | None) -> None:
        """Flush and close TensorBoard's file; with an error already on its way, a failure here
        is logged instead of hiding it."""
        try:
            self.board.close()
        except OSError as unflushed:
            if error is None:
                raise
            log.error("could not flush TensorBoard's events: %s", unflushed)

    def start(self, state, example_input: torch.Tensor, example_digits: tuple | None) -> None:
        """The model's summary on the console; in TensorBoard, this process's command and
        provenance, and a new run's layout, config, graph and example digits."""
        console.show_model_summary(layer_summary(state.model, INPUT_SHAPE), self.metrics.identity["params"])
        self.board.log_origin(self.provenance.attempts[-1], self.overrides, state.step)
        if self.resumed:
            return
        self.board.log_start(self.cfg, state.model, example_input)
        if example_digits is not None:
            self.board.log_training_digits(*example_digits, self.cfg.data.mean, self.cfg.data.std)

    def start_epoch(self, epoch: int, state) -> None:
        self.epoch = epoch
        self.bar = self.bars.add_task(
            f"Epoch {epoch}/{self.epochs}",
            total=state.steps_per_epoch,
            completed=state.progress.next_batch if state.progress else 0,
            loss=0.0,
        )

    def on_step(self, state, loss: torch.Tensor) -> None:
        """After every optimizer step: the bar moves; the loss is read (and checked) only as often
        as needed, since on a GPU each read waits for the device."""
        self.bars.advance(self.bar)
        if state.step % self.check_every and state.step % self.log_every:
            return
        value = loss.item()
        if not math.isfinite(value):
            raise Diverged(value, self.epoch, state.step, state.lr)
        if state.step % self.log_every == 0:
            self.board.log_batch_loss(state.step, value)
            self.bars.update(self.bar, loss=value)

    def end_epoch(self, record: dict, state) -> None:
        """Show and keep the finished epoch: its line, its scalars, last.pt (and best.pt)."""
        self.bars.remove_task(self.bar)
        console.log_epoch(record, self.epochs)
        self.board.log_epoch(record, state.step)
        is_best = self.metrics.add_epoch(record)
        checkpoint = self.checkpoint(state, "running")
        save_checkpoint(last_checkpoint(self.run_dir), checkpoint)
        if is_best:
            save_checkpoint(best_checkpoint(self.run_dir), checkpoint)
        self.metrics.save("running")

    def interrupted(self, state) -> None:
        """Stopped at a batch boundary: the unfinished epoch is saved with the rest, to go on from."""
        save_checkpoint(last_checkpoint(self.run_dir), self.checkpoint(state, "interrupted"))
        self.ended("interrupted")

    @property
    def history(self) -> list[dict]:
        """The records of the epochs finished so far, those before a resume included."""
        return self.metrics.history

    def finished(
        self, state, status: str, test_logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor
    ) -> dict:
        """The run's final record and checkpoint (`status`: completed, or stopped_early), then the
        test diagnostics and HParams; returns the final metrics document."""
        if status == "stopped_early":
            self.explain_early_stop()
        final = self.metrics.document(status)
        save_checkpoint(last_checkpoint(self.run_dir), self.checkpoint(state, status))
        self.ended(status)
        log_test_diagnostics(
            self.board.writer, test_logits.softmax(dim=1), images, labels, self.run_dir, state.step,
            self.cfg.data.mean, self.cfg.data.std,
        )  # fmt: skip
        console.show_final_summary(final, str(self.run_dir))
        return final

    def explain_early_stop(self) -> None:
        rule = self.cfg.trainer.early_stopping
        best = max(self.history, key=lambda record: record["val_acc"])
        log.info(
            "Stopped early after epoch %d of %d: validation accuracy has not beaten its best by more "
            "than %g points for %d epochs (best %.2f%% at epoch %d, kept in %s)",
            self.history[-1]["epoch"], self.epochs, rule.min_delta, rule.patience,
            best["val_acc"], best["epoch"], best_checkpoint(self.run_dir).relative_to(self.run_dir),
        )  # fmt: skip

    def ended(self, status: str, error: str | None = None) -> None:
        """The run's final status (and error) in metrics.json and provenance.json, and its row,
        whatever the status, in TensorBoard's HParams table."""
        self.status = status
        final = self.metrics.save(status, error)
        self.provenance.ended(status)
        ending = {"status": status, "epochs_done": len(final["history"])}
        self.board.log_hparams({**self.hparams, **ending}, final["duration_s"], self.state.step)

    def checkpoint(self, state, status: str) -> dict:
        return {
            **state.state_dict(),
            "config": self.config,
            "status": status,
            "history": self.metrics.history,
            "duration_s": self.metrics.duration,
        }


def how_it_ended(error: BaseException) -> tuple[str, str | None]:
    """What metrics.json says of a run that an exception ended, with the error for a failure."""
    if isinstance(error, Diverged):
        return "diverged", None
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", None
    return "failed", f"{type(error).__name__}: {error}"
