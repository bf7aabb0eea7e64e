"""The run: validate the config, build data, model and optimizer, train, evaluate, record.

`python -m mnist_exp ...` and the `mnist-exp` console script both enter through `cli`, then the
Hydra `main`. Torch and TensorBoard are imported inside `train`, so `--help` and `--cfg job`
answer without them.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mnist_exp.accel.job_gpu import register_job_gpu
from mnist_exp.cli.plugins import exit_if_plugin_missing
from mnist_exp.cli.preflight import continue_earlier_job
from mnist_exp.cli.shorthand import expand_group_shorthand
from mnist_exp.config.schema import register_schemas
from mnist_exp.errors import Diverged, Interrupted, ResumeError, Stopped, StoppedAsItFinished, UserError
from mnist_exp.rundir.lock import sole_trainer
from mnist_exp.rundir.resume import register_resolvers
from mnist_exp.rundir.signals import StopRequests
from mnist_exp.rundir.writes import write_failures_explained

register_schemas()
register_resolvers()
register_job_gpu()
log = logging.getLogger("mnist_exp")
INPUT_SHAPE = (1, 28, 28)


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
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra/") and v}
    run_dir = Path(hydra_cfg.runtime.output_dir)
    stop = StopRequests()  # obeyed in the training loop, and checked again once the run is done
    try:
        with write_failures_explained(run_dir), sole_trainer(run_dir):
            if hydra_cfg.mode == RunMode.MULTIRUN and not cfg.resume:
                cfg = continue_earlier_job(cfg, run_dir)
            accuracy = train(cfg, run_dir, stop, choices, list(hydra_cfg.overrides.task))
        if stop.requested():
            raise StoppedAsItFinished(stop.signum, str(run_dir))
        return accuracy
    except UserError as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {error}", file=sys.stderr)
        logging.getLogger("mnist_exp.logfile").error("%s", error)
        if isinstance(error, Stopped):
            stop.hand_over()  # a submitit job's SIGUSR2 goes on to its requeue
        if hydra_cfg.mode == RunMode.RUN or isinstance(error, Stopped):
            sys.exit(error.exit_code)
        raise  # in a sweep: this job fails, the others go on


def train(
    cfg: DictConfig,
    run_dir: Path,
    stop: StopRequests,
    choices: dict | None = None,
    overrides: list[str] = (),
) -> float:
    """Train as configured, writing everything into `run_dir`; `stop` catches Ctrl-C, SIGTERM and SIGUSR2
    during the training loop, which then saves its state and raises `Interrupted`.

    Returns the final validation accuracy when a validation split exists (what a sweeper should
    optimise), else the final test accuracy.
    """
    import torch
    from hydra.utils import instantiate

    from mnist_exp.accel.device import resolve_device
    from mnist_exp.accel.graph_step import GraphedStep, check_cuda_graphs
    from mnist_exp.accel.precision import autocast, check_precision, grad_scaler, memory_format, speed_up
    from mnist_exp.config.validation import validate
    from mnist_exp.data import DataUnavailableError
    from mnist_exp.data.augment import RandomWarp, augment_generator, augments_epoch
    from mnist_exp.data.tensors import load_device_dataset
    from mnist_exp.engine.distill import training_loss
    from mnist_exp.engine.loop import EpochProgress, evaluate, loss_and_accuracy, predict_logits, train_epoch
    from mnist_exp.engine.optim import Schedule, build_optimizer
    from mnist_exp.engine.rng import capture_rng, restore_rng
    from mnist_exp.engine.views import evaluated_network
    from mnist_exp.engine.weight_average import weight_average
    from mnist_exp.models import count_parameters, layer_summary
    from mnist_exp.monitor import console
    from mnist_exp.monitor.diagnostics import log_test_diagnostics
    from mnist_exp.monitor.tensorboard import TensorBoardLog, flat_hparams
    from mnist_exp.rundir.metrics import RunMetrics
    from mnist_exp.rundir.resume import is_sweep_job_rerun, resume_checkpoint, resumed_config
    from mnist_exp.rundir.writes import remove_stale_temporaries, save_checkpoint

    validate(cfg)
    saved = None
    if cfg.resume:
        saved = resume_checkpoint(cfg.resume)
        cfg = resumed_config(cfg, saved["config"], overrides)
        sweep_job_rerun = is_sweep_job_rerun(overrides)
        if saved["status"] == "completed":
            if not sweep_job_rerun:
                done = f"resume={cfg.resume}: that run already completed; there is nothing to resume."
                raise ResumeError(done)
            log.info("%s holds this job's completed run: its result stands, not trained again", run_dir)
            return sweep_result(saved["history"][-1])
        if sweep_job_rerun:
            log.info("Continuing the unfinished run (%s) this job left in %s", saved["status"], run_dir)
        log.info("Resuming %s from epoch %d, step %d", run_dir, len(saved["history"]) + 1, saved["step"])
        remove_stale_temporaries(run_dir)
    if cfg.trainer.threads:
        torch.set_num_threads(cfg.trainer.threads)
    device = resolve_device(cfg.trainer.device)
    check_precision(cfg.trainer.precision, device)
    if cfg.trainer.cuda_graphs:
        check_cuda_graphs(device)
    loss_fn = training_loss(cfg.trainer, cfg.data, device)  # a teacher that cannot teach stops the run here
    console.show_config(cfg)
    torch.manual_seed(cfg.seed)

    log.info("Loading %s onto %s", cfg.data.name, device)
    try:
        data = load_device_dataset(cfg.data, device, memory_format(cfg.trainer))
    except DataUnavailableError as error:
        raise UserError(str(error)) from error
    train_count = len(data.train_labels)
    steps_per_epoch = -(-train_count // cfg.data.batch_size)

    log.info("Instantiating model <%s>", cfg.model._target_)
    model = instantiate(cfg.model).to(device)
    params = count_parameters(model)
    console.show_model_summary(layer_summary(model, INPUT_SHAPE), params)
    optimizer = build_optimizer(cfg.optimizer, model)
    schedule = Schedule(cfg.scheduler, optimizer, steps_per_epoch)
    ema = weight_average(model, cfg.trainer.ema_decay)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    transform = RandomWarp.from_config(cfg.data.augment)
    augment_rng = augment_generator(cfg.seed, device)
    background = -cfg.data.mean / cfg.data.std  # a black pixel, normalised
    augment = functools.partial(transform, generator=augment_rng, background=background)
    metrics = RunMetrics(run_dir / "metrics.json", cfg.model.name, params, str(device), cfg.trainer.epochs)
    step, unfinished, test_logits = 0, None, None
    if saved:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["scheduler"])
        restore_rng(saved["rng"], shuffle, augment_rng)
        if ema:
            ema.load_state_dict(saved["ema"])
        step = saved["step"]
        metrics.history, metrics.previous_duration = saved["history"], saved["duration_s"]
        if saved["epoch_progress"]:
            unfinished = EpochProgress.from_state_dict(saved["epoch_progress"], device)

    board = TensorBoardLog(run_dir, purge_step=step + 1 if saved else None)
    if not saved:
        board.log_start(cfg, model, data.test_images[:1])
        if not transform.is_identity:  # a generator of its own: training sees the same batches either way
            shown = data.train_images[:64]
            example = transform(shown, augment_generator(cfg.seed, device), background)
            board.log_training_digits(shown, example, cfg.data.mean, cfg.data.std)
    fast_model = speed_up(model, cfg.trainer)  # shares model's parameters; checkpoints use `model`
    # The network whose val/test accuracy is recorded: the weight average if on, view-averaged if asked.
    evaluated = evaluated_network(
        ema.module if ema else fast_model,
        eval_hflip=cfg.trainer.eval_hflip,
        eval_shift=cfg.trainer.eval_shift,
        background=background,
    )
    precision = functools.partial(autocast, cfg.trainer.precision, device)
    predict_test_set = functools.partial(
        predict_logits, evaluated, data.test_images, cfg.data.test_batch_size, precision
    )  # its final logits also feed the end-of-run diagnostics
    scaler = grad_scaler(cfg.trainer.precision, device)
    if saved:
        scaler.load_state_dict(saved["scaler"])
    graphed_step = GraphedStep(fast_model, optimizer, loss_fn, precision) if cfg.trainer.cuda_graphs else None
    config = OmegaConf.to_container(cfg, resolve=True)

    def checkpoint(status: str, progress: EpochProgress | None = None) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(),
            "scaler": scaler.state_dict(),
            "ema": ema.state_dict() if ema else None,
            "epoch": len(metrics.history),
            "step": step,
            "config": config,
            "status": status,
            "history": metrics.history,
            "duration_s": metrics.duration,
            "rng": capture_rng(shuffle, augment_rng),
            "epoch_progress": progress.state_dict() if progress else None,
        }

    every = cfg.trainer.log_every_n_steps
    check_every = 1 if device.type == "cpu" else every  # reading the loss syncs an accelerator
    first_epoch = len(metrics.history) + 1
    with stop, console.epoch_progress() as bars:
        for epoch in range(first_epoch, cfg.trainer.epochs + 1):
            progress = unfinished or EpochProgress(
                order=torch.randperm(train_count, generator=shuffle).to(device),
                lr=optimizer.param_groups[0]["lr"],
            )
            unfinished = None
            bar = bars.add_task(
                f"Epoch {epoch}/{cfg.trainer.epochs}",
                total=steps_per_epoch,
                completed=progress.next_batch,
                loss=0.0,
            )

            def on_batch(loss: torch.Tensor, epoch=epoch, bar=bar) -> None:
                nonlocal step
                step += 1
                if ema:
                    ema.update_parameters(model)
                bars.advance(bar)
                if step % check_every and step % every:
                    return
                value = loss.item()
                if not torch.isfinite(loss):
                    metrics.save("diverged")
                    board.close()
                    raise Diverged(value, epoch, step, optimizer.param_groups[0]["lr"])
                if step % every == 0:
                    board.log_batch_loss(step, value)
                    bars.update(bar, loss=value)

            augmented = augments_epoch(epoch, cfg.trainer.epochs, cfg.data.augment.clean_final_epochs)
            epoch_started = time.perf_counter()
            finished = train_epoch(
                fast_model, data.train_images, data.train_labels, progress, cfg.data.batch_size,
                optimizer, schedule, on_batch, stop.requested, precision, scaler,
                augment if augmented else None, loss_fn, graphed_step,
            )  # fmt: skip
            progress.seconds += time.perf_counter() - epoch_started
            if not finished:
                save_checkpoint(run_dir / "checkpoints" / "last.pt", checkpoint("interrupted", progress))
                metrics.save("interrupted")
                board.close()
                raise Interrupted(stop.signum, str(run_dir), epoch, step)
            schedule.after_epoch()
            evaluation_started = time.perf_counter()
            train_loss, train_acc = progress.mean_loss_and_accuracy()
            record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc}
            if len(data.val_labels):
                record["val_loss"], record["val_acc"] = evaluate(
                    evaluated, data.val_images, data.val_labels, cfg.data.test_batch_size, precision
                )
            if not len(data.val_labels) or epoch == cfg.trainer.epochs:  # a split: test measures the end only
                test_logits = predict_test_set()
                record["test_loss"], record["test_acc"] = loss_and_accuracy(test_logits, data.test_labels)
            record["lr"] = progress.lr
            record["seconds"] = progress.seconds + time.perf_counter() - evaluation_started
            bars.remove_task(bar)
            console.log_epoch(record, cfg.trainer.epochs)
            board.log_epoch(record, step)
            is_best = metrics.add_epoch(record)
            state = checkpoint("running")
            save_checkpoint(run_dir / "checkpoints" / "last.pt", state)
            if is_best:
                save_checkpoint(run_dir / "checkpoints" / "best.pt", state)
            metrics.save("running")

    final = metrics.document("completed")
    save_checkpoint(run_dir / "checkpoints" / "last.pt", checkpoint("completed"))
    metrics.save("completed")
    if test_logits is None:  # resumed after its last epoch was recorded
        test_logits = predict_test_set()
    log_test_diagnostics(
        board.writer, test_logits.softmax(dim=1), data.test_images, data.test_labels, run_dir, step,
        cfg.data.mean, cfg.data.std,
    )  # fmt: skip
    headline = {k: final[k] for k in ("final_test_acc", "best_test_acc", "final_val_acc") if k in final}
    board.log_hparams(flat_hparams(cfg, choices or {}), {f"hparam/{k}": v for k, v in headline.items()}, step)
    board.close()
    console.show_final_summary(final, str(run_dir))
    return sweep_result(final["history"][-1])


def sweep_result(last_epoch: dict) -> float:
    """What a sweeper optimises: the final validation accuracy where a split exists, else test's."""
    return last_epoch.get("val_acc", last_epoch["test_acc"])
