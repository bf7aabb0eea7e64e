"""A group of sweep jobs that differ only in their seed, trained together as one packed network.

Each job is still a run of its own: its directory, log, TensorBoard events, metrics.json and
checkpoints are written by its own `Recorder` from its own `TrainingState`, as `mnist_exp.train.run`
writes them, so the summary, the report, `predict`, `eval` and `resume=` read them as a run alone's.
What ends one job ends it alone (a refused config, a diverging loss, early stopping); a stop
signal stops them all at one batch boundary, each with its state saved.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from mnist_exp.errors import Diverged, Stopped, UserError
from mnist_exp.packing.plan import differences_beyond_seed
from mnist_exp.rundir.guard import continue_earlier_job
from mnist_exp.rundir.layout import resume_command
from mnist_exp.rundir.lock import sole_trainer
from mnist_exp.rundir.metrics import FINISHED
from mnist_exp.rundir.signals import StopRequests
from mnist_exp.rundir.writes import write_failures_explained
from mnist_exp.train import Job, say_error, sweep_result, train_from

log = logging.getLogger("mnist_exp")


@dataclass
class PackedJob:
    """One job of the group: its config and Hydra facts, a context that sends logging to its own
    log file while held, and, once it ends, its result (the sweep objective, or the error)."""

    cfg: DictConfig
    job: Job
    logs: Callable[[], AbstractContextManager]
    result: float | BaseException | None = None
    saved: dict | None = None  # the checkpoint it resumes from
    run_cfg: DictConfig | None = None  # its config once resumed (the checkpoint's)


class PackInterrupted(Stopped):
    def __init__(self, signum: int, jobs: list[PackedJob], epoch: int, step: int):
        dirs = [str(job.job.run_dir) for job in jobs]
        quoted = ",".join(f"'{path}'" for path in dirs)  # Hydra's quotes: job dirs hold '='
        super().__init__(
            signum,
            f"Interrupted by {signal.Signals(signum).name} at epoch {epoch}, step {step}; the state of "
            f"all {len(jobs)} packed jobs is saved. Resume them packed: python -m mnist_exp -m "
            f'hydra/launcher=packed "resume={quoted}", or each alone: {resume_command(dirs[0])}',
        )


def run_group(jobs: list[PackedJob], stop: StopRequests) -> None:
    """Train the jobs together where they can, else one after another; each job's `result` is set."""
    with ExitStack() as held:
        pending = [job for job in jobs if _prepare(job, held)]
        reason = _why_not_together(pending) if len(pending) > 1 else None
        if len(pending) > 1 and reason is None:
            _train_together(pending, stop, held)
        else:
            if reason:
                log.info("These %d jobs train one after another: %s", len(pending), reason)
            for job in pending:
                with job.logs(), _ends_job_on_error(job):
                    job.result = train_from(job.run_cfg, job.saved, job.job, stop)


def _prepare(job: PackedJob, held: ExitStack) -> bool:
    """Hold the job's run dir, check its config and read the state it resumes from; False when it
    has nothing to train (already finished, or refused: its `result` says which)."""
    from mnist_exp.cli.checks import check_config
    from mnist_exp.rundir.resume import resume_state

    with job.logs(), _ends_job_on_error(job):
        held.enter_context(write_failures_explained(job.job.run_dir))  # a full disk: one line
        held.enter_context(sole_trainer(job.job.run_dir))
        if not job.cfg.resume:
            job.cfg = continue_earlier_job(job.cfg, job.job.run_dir)
        check_config(job.cfg)
        job.run_cfg, job.saved = resume_state(job.cfg, job.job.run_dir, job.job.overrides)
        if job.saved and job.saved["status"] in FINISHED:
            job.result = sweep_result(job.saved["history"][-1])
            return False
        return True
    return False


@contextlib.contextmanager
def _ends_job_on_error(job: PackedJob) -> Iterator[None]:
    """A refused or failed job ends alone, its one line printed and logged; a stop signal (or a
    bug) ends them all."""
    try:
        yield
    except Stopped:
        raise
    except UserError as error:
        say_error(str(error))
        job.result = error


def _why_not_together(jobs: list[PackedJob]) -> str | None:
    """Resumed jobs pack only from one same point, with saved configs alike but for the seed."""
    points = {(job.saved["epoch"], job.saved["step"]) if job.saved else (0, 0) for job in jobs}
    if len(points) > 1:
        return f"they resume from different points (epoch, step): {sorted(points)}"
    differences = differences_beyond_seed([OmegaConf.to_container(job.run_cfg, resolve=True) for job in jobs])
    if differences:
        return f"their saved configs differ in {', '.join(differences)}"
    return None


def _train_together(jobs: list[PackedJob], stop: StopRequests, held: ExitStack) -> None:
    from mnist_exp.accel.device import prepare_device
    from mnist_exp.cli.checks import device_for
    from mnist_exp.engine.probe import load_in_chosen_layout, probe_step
    from mnist_exp.engine.trainer import Trainer
    from mnist_exp.monitor import console
    from mnist_exp.monitor.recorder import Recorder
    from mnist_exp.packing.training import PackedTraining, scratch_network

    cfg = jobs[0].run_cfg
    device = device_for(cfg.trainer.device)
    prepare_device(cfg.trainer, device)
    cfgs = [job.run_cfg for job in jobs]
    scratch = probe_step(cfg, device, lambda: scratch_network(cfg, len(jobs), device), copies=len(jobs))
    data, layout = load_in_chosen_layout(cfg, device, scratch)  # timed packed, as it will train
    for other in cfgs[1:]:
        layout.apply(other.trainer)
    log.info("Training %d jobs packed as one network: seeds %s", len(jobs), [c.seed for c in cfgs])
    pack = PackedTraining.build(cfgs, [job.saved for job in jobs], device, len(data.train_labels))
    trainers, recorders = [], []
    for k, job in enumerate(jobs):
        with job.logs():
            console.show_config(job.run_cfg)
            history = job.saved["history"] if job.saved else ()
            trainers.append(Trainer(job.run_cfg, pack.states[k], data, device, history=history))
            recorder = Recorder(job.job, job.run_cfg, pack.states[k], device, job.saved, show_progress=k == 0)
            recorder.provenance.note(memory_layout=layout.record(), packed_with=len(jobs))
            recorders.append(held.enter_context(recorder))
            recorder.start(pack.states[k], data.test_images[:1], trainers[k].example_digits())
    held.enter_context(stop)
    PackedRun(jobs, pack, trainers, recorders, stop).train()


class PackedRun:
    """The epochs of a packed group: train all, then score and save each job as its run alone does."""

    def __init__(self, jobs: list[PackedJob], pack, trainers: list, recorders: list, stop: StopRequests):
        self.jobs, self.pack, self.trainers, self.recorders, self.stop = jobs, pack, trainers, recorders, stop
        self.cfg = jobs[0].run_cfg
        self.training = list(range(len(jobs)))  # the jobs still training: not ended, diverged or stopped

    def train(self) -> None:
        for epoch in self.pack.states[0].remaining_epochs(self.cfg.trainer.epochs):
            self._finish_early_stopped()
            if not self.training:
                return
            for k in self.training:
                with self.jobs[k].logs():
                    self.recorders[k].start_epoch(epoch, self.pack.states[k])
            batch = self.cfg.data.batch_size
            if not self.pack.train_epoch(self.trainers, epoch, batch, self.stop.requested, self._after_step):
                self._save_interrupted(epoch)
            self._end_epoch(epoch)
        self._finish_early_stopped()
        for k in list(self.training):
            self._finish(k, "completed")

    def _after_step(self, losses) -> None:
        for k in list(self.training):
            try:
                self.recorders[k].on_step(self.pack.states[k], losses[k])
            except Diverged as error:
                self._retire(k, error, "diverged")

    def _end_epoch(self, epoch: int) -> None:
        for k in self.training:
            state = self.pack.write_back(k)
            with self.jobs[k].logs():
                record = self.trainers[k].evaluate(epoch, self.recorders[k].history)
                self.recorders[k].end_epoch(record, state)
        self.pack.end_epoch()

    def _save_interrupted(self, epoch: int) -> None:
        for k in self.training:
            state = self.pack.write_back(k)
            with self.jobs[k].logs():
                self.recorders[k].interrupted(state)
        raise PackInterrupted(self.stop.signum, self.jobs, epoch, self.pack.states[self.training[0]].step)

    def _finish_early_stopped(self) -> None:
        for k in [k for k in self.training if self.trainers[k].stopped_early]:
            self._finish(k, "stopped_early")

    def _finish(self, k: int, status: str) -> None:
        trainer = self.trainers[k]
        test = (trainer.final_test_logits(), trainer.data.test_images, trainer.data.test_labels)
        with self.jobs[k].logs():
            final = self.recorders[k].finished(self.pack.states[k], status, *test)
        self._retire(k, sweep_result(final["history"][-1]))

    def _retire(self, k: int, result: float | UserError, status: str | None = None) -> None:
        """Job k ends (the others go on): with its result, or with the error that ended it."""
        self.training.remove(k)
        self.pack.retire(k)
        self.jobs[k].result = result
        if status is not None:
            with self.jobs[k].logs():
                say_error(f"{self.jobs[k].job.run_dir.name}: {result}")
                self.recorders[k].ended(status)
