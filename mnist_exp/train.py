"""The run: check the config, build data, state and trainer, train epoch by epoch, record.

`python -m mnist_exp ...` and the `mnist-exp` console script both enter through `cli`, then the
Hydra `main`, then `run`. Torch is imported inside `run`, so `--help` and `--cfg job` answer
without it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mnist_exp.cli.plugins import exit_if_plugin_missing
from mnist_exp.cli.shorthand import expand_group_shorthand
from mnist_exp.config.job_gpu import register_job_gpu
from mnist_exp.config.schema import register_schemas
from mnist_exp.errors import Stopped, UserError
from mnist_exp.rundir.guard import continue_earlier_job
from mnist_exp.rundir.job_names import keys_this_sweep_varies
from mnist_exp.rundir.lock import sole_trainer
from mnist_exp.rundir.metrics import FINISHED
from mnist_exp.rundir.resume import register_resolvers
from mnist_exp.rundir.signals import Interrupted, StoppedAsItFinished, StopRequests
from mnist_exp.rundir.writes import write_failures_explained

register_schemas()
register_resolvers()
register_job_gpu()
log = logging.getLogger("mnist_exp")


@dataclass(frozen=True)
class Job:
    """What Hydra tells a run about itself."""

    run_dir: Path
    choices: dict[str, str]  # the config groups' choices, for TensorBoard's HParams
    overrides: list[str]  # the command line's, as Hydra parsed them
    in_sweep: bool
    swept: tuple[str, ...]  # the keys the sweep varies, where the command line sweeps some

    @classmethod
    def current(cls) -> Job:
        return cls.of(HydraConfig.get())

    @classmethod
    def of(cls, hydra_cfg: DictConfig) -> Job:
        """From a job's `hydra` config node (as `HydraConfig.get()` gives it)."""
        choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v}
        in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
        swept = keys_this_sweep_varies() if in_sweep else ()
        return cls(
            Path(hydra_cfg.runtime.output_dir), choices, list(hydra_cfg.overrides.task), in_sweep, swept
        )


def cli() -> None:
    """The console entry: a preset whose Hydra plugin is missing gets its pip line, not Hydra's
    error, and `data.augment=NAME` selects the preset `data/augment=NAME`. Ctrl-C while torch
    imports or the data loads, before the training loop handles it, exits without a traceback;
    so does Ctrl-C in a sweep whose launcher waits on worker processes, which it then stops."""
    sys.argv[1:] = expand_group_shorthand(sys.argv[1:])
    exit_if_plugin_missing(sys.argv[1:])
    try:
        main()
    except KeyboardInterrupt:
        if {"-m", "--multirun"} & set(sys.argv[1:]):
            message = (
                "the sweep was interrupted by Ctrl-C; the files written are complete, and a job "
                "stopped mid-epoch resumes from its last finished epoch: python -m mnist_exp resume=JOB_DIR"
            )
        else:
            message = "interrupted by Ctrl-C while starting or finishing; the files written are complete"
        print(f"Error: {message}", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra's task: one run in its own directory, held against a second trainer. A UserError is
    printed as its one line; a single run exits with its code, a sweep's job fails alone."""
    job = Job.current()
    stop = StopRequests()  # obeyed in the training loop, and checked again once the run is done
    try:
        with write_failures_explained(job.run_dir), sole_trainer(job.run_dir):
            if job.in_sweep and not cfg.resume:
                cfg = continue_earlier_job(cfg, job.run_dir)
            result = run(cfg, job, stop)
        if stop.requested():
            raise StoppedAsItFinished(stop.signum, str(job.run_dir))
        return result
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        say_error(str(error))
        if isinstance(error, Stopped):
            stop.hand_over()  # a submitit job's SIGUSR2 goes on to its requeue
        if not job.in_sweep or isinstance(error, Stopped):
            sys.exit(error.exit_code)
        raise  # in a sweep: this job fails, the others go on


def say_error(message: str) -> None:
    """A refused or failed run's one line: on the console, and in its log file."""
    print(f"Error: {message}", file=sys.stderr)
    logging.getLogger("mnist_exp.logfile").error("%s", message)


def run(cfg: DictConfig, job: Job, stop: StopRequests) -> float:
    """Train as configured, writing everything into the job's run dir. `stop` catches Ctrl-C,
    SIGTERM and SIGUSR2 during training, which then saves its state and raises `Interrupted`.

    Returns what a sweeper optimises: the final validation accuracy where a split exists, else
    the final test accuracy.
    """
    from mnist_exp.cli.checks import check_config
    from mnist_exp.rundir.resume import resume_state

    check_config(cfg)  # a single run's was checked before Hydra made its directory: found done here
    cfg, saved = resume_state(cfg, job.run_dir, job.overrides)
    if saved and saved["status"] in FINISHED:
        return sweep_result(saved["history"][-1])
    return train_from(cfg, saved, job, stop)


def train_from(cfg: DictConfig, saved: dict | None, job: Job, stop: StopRequests) -> float:
    """The run once its config is checked and the checkpoint it resumes from (if any) is read."""
    from hydra.utils import instantiate

    from mnist_exp.accel.device import prepare_device
    from mnist_exp.cli.checks import device_for
    from mnist_exp.engine.probe import load_in_chosen_layout, probe_step
    from mnist_exp.engine.state import TrainingState
    from mnist_exp.engine.trainer import Trainer
    from mnist_exp.monitor import console
    from mnist_exp.monitor.recorder import Recorder

    device = device_for(cfg.trainer.device)
    prepare_device(cfg.trainer, device)
    log.info("Loading %s onto %s", cfg.data.name, device)
    data, layout = load_in_chosen_layout(cfg, device, probe_step(cfg, device, lambda: instantiate(cfg.model)))
    console.show_config(cfg)
    log.info("Instantiating model <%s>", cfg.model._target_)
    state = TrainingState.fresh(cfg, device, len(data.train_labels))
    if saved:
        state.load_state_dict(saved)
    trainer = Trainer(cfg, state, data, device, history=saved["history"] if saved else ())

    recorder = Recorder(job, cfg, state, device, resumed=saved)
    recorder.provenance.note(memory_layout=layout.record())
    with recorder, stop:
        recorder.start(state, data.test_images[:1], trainer.example_digits())
        for epoch in state.remaining_epochs(cfg.trainer.epochs):
            if trainer.stopped_early:  # a resumed run that early stopping had ended
                break
            recorder.start_epoch(epoch, state)
            if not trainer.train_epoch(epoch, stop.requested, recorder.on_step):
                recorder.interrupted(state)
                raise Interrupted(stop.signum, str(job.run_dir), epoch, state.step)
            recorder.end_epoch(trainer.evaluate(epoch, recorder.history), state)
            if trainer.stopped_early:
                break
        status = "stopped_early" if trainer.stopped_early else "completed"
        test_logits = trainer.final_test_logits()
        final = recorder.finished(state, status, test_logits, data.test_images, data.test_labels)
    return sweep_result(final["history"][-1])


def sweep_result(last_epoch: dict) -> float:
    """What a sweeper optimises: the final validation accuracy where a split exists, else test's."""
    return last_epoch.get("val_acc", last_epoch["test_acc"])
