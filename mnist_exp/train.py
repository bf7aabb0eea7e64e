"""The run: compose the config, build data, model and optimizer, train, evaluate, record.

`python -m mnist_exp ...` and the `mnist-exp` console script both land in `main`. Torch and
TensorBoard are imported inside `train`, so `--help` and `--cfg job` answer without them.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

INPUT_SHAPE = (1, 28, 28)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    runtime = HydraConfig.get().runtime
    choices = {k: v for k, v in runtime.choices.items() if not k.startswith("hydra/") and v}
    return train(cfg, Path(runtime.output_dir), choices)


def train(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None = None) -> float:
    """Train as configured, writing everything into `run_dir`; returns the final test accuracy."""
    import torch
    from hydra.utils import instantiate

    from mnist_exp import console
    from mnist_exp.device import resolve_device
    from mnist_exp.device_dataset import load_device_dataset
    from mnist_exp.loop import evaluate, train_epoch
    from mnist_exp.models import count_parameters, layer_summary
    from mnist_exp.optim import Schedule, build_optimizer
    from mnist_exp.run_files import save_checkpoint, write_json
    from mnist_exp.tensorboard_log import TensorBoardLog, flat_hparams

    started = time.perf_counter()
    console.show_config(cfg)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.trainer.device)

    console.log.info("Loading %s onto %s", cfg.data.name, device)
    data = load_device_dataset(cfg.data, device)
    train_count = len(data.train_labels)
    steps_per_epoch = -(-train_count // cfg.data.batch_size)

    console.log.info("Instantiating model <%s>", cfg.model._target_)
    model = instantiate(cfg.model).to(device)
    params = count_parameters(model)
    console.show_model_summary(layer_summary(model, INPUT_SHAPE), params)
    optimizer = build_optimizer(cfg.optimizer, model)
    schedule = Schedule(cfg.scheduler, optimizer, steps_per_epoch)
    shuffle = torch.Generator().manual_seed(cfg.seed)

    board = TensorBoardLog(run_dir)
    board.log_start(cfg, model, data.test_images[:1])
    config = OmegaConf.to_container(cfg, resolve=True)
    metrics = {
        "model": cfg.model.name,
        "params": params,
        "device": str(device),
        "epochs": cfg.trainer.epochs,
        "status": "running",
        "history": [],
        "final_test_acc": None,
        "best_test_acc": None,
        "duration_s": None,
    }
    step = 0
    every = cfg.trainer.log_every_n_steps

    with console.epoch_progress() as progress:
        for epoch in range(1, cfg.trainer.epochs + 1):
            epoch_started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            bar = progress.add_task(
                f"Epoch {epoch}/{cfg.trainer.epochs}", total=steps_per_epoch, loss=float("nan")
            )

            def on_batch(loss: torch.Tensor, bar=bar) -> None:
                nonlocal step
                step += 1
                if step % every == 0:
                    value = loss.item()
                    board.log_batch_loss(step, value)
                    progress.update(bar, loss=value)
                progress.advance(bar)

            order = torch.randperm(train_count, generator=shuffle).to(device)
            train_loss, train_acc = train_epoch(
                model,
                data.train_images,
                data.train_labels,
                order,
                cfg.data.batch_size,
                optimizer,
                schedule,
                on_batch,
            )
            schedule.after_epoch()
            test_loss, test_acc = evaluate(
                model, data.test_images, data.test_labels, cfg.data.test_batch_size
            )
            progress.remove_task(bar)

            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": lr,
                "seconds": time.perf_counter() - epoch_started,
            }
            console.log_epoch(record, cfg.trainer.epochs)
            board.log_epoch(record)
            metrics["history"].append(record)
            metrics["final_test_acc"] = test_acc
            is_best = metrics["best_test_acc"] is None or test_acc > metrics["best_test_acc"]
            metrics["best_test_acc"] = max(test_acc, metrics["best_test_acc"] or test_acc)
            checkpoint = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(),
                "epoch": epoch,
                "step": step,
                "config": config,
            }
            save_checkpoint(run_dir / "checkpoints" / "last.pt", checkpoint)
            if is_best:
                save_checkpoint(run_dir / "checkpoints" / "best.pt", checkpoint)
            metrics["duration_s"] = time.perf_counter() - started
            write_json(run_dir / "metrics.json", metrics)

    metrics["status"] = "completed"
    metrics["duration_s"] = time.perf_counter() - started
    write_json(run_dir / "metrics.json", metrics)
    final = {
        "hparam/final_test_acc": metrics["final_test_acc"],
        "hparam/best_test_acc": metrics["best_test_acc"],
    }
    board.log_hparams(flat_hparams(cfg, choices or {}), final)
    board.close()
    console.show_final_summary(metrics, str(run_dir))
    return metrics["final_test_acc"]
