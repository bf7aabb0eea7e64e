"""`hydra.launcher.workers=N`: the packed launcher's groups trained in N processes at once.

On a CPU with few cores, one process's intra-op threads leave the cores partly idle on these thin
kernels, and two one-thread processes each training a packed group beat one process training
them all (docs/sweeps.md, "When to pack"). Each group then runs in a fresh Python process
(`python -m hydra_plugins.mnist_exp_packed.workers PAYLOAD`) that does what the launcher does in
its own process (the jobs' directories, logs, callbacks, `JobReturn`s) with cores / N threads, and
hands the `JobReturn`s back through a file.

The payload is the sweep's and the jobs' configs, pickled (their sweep directory resolved, so
a child's clock cannot rename it), and the job numbers. A worker starts in a session
of its own, so a terminal's Ctrl-C reaches the launcher alone, which hands each stop signal on to
every running worker once and starts no further group.
"""

from __future__ import annotations

import copy
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf, read_write

from mnist_exp.errors import UserError
from mnist_exp.packing.plan import Group
from mnist_exp.rundir.signals import HANDLED

POLL_S = 0.2


@dataclass
class Worker:
    process: subprocess.Popen
    group: Group
    configs: list[DictConfig]
    payload: Path
    results: Path

    @classmethod
    def start(
        cls, launcher, sweep: DictConfig, group: Group, configs: list[DictConfig], threads: int
    ) -> Worker:
        """A process training `group`, whose jobs' configs are `configs` (in sweep order)."""
        handle, payload_path = tempfile.mkstemp(prefix="mnist-exp-packed-", suffix=".payload")
        os.close(handle)
        results = Path(payload_path).with_suffix(".returns")
        payload = {
            "sweep": sweep,
            "jobs": configs,
            "numbers": list(group.jobs),
            "max_copies": launcher.max_copies,
            "threads": threads,
            "results": str(results),
        }
        Path(payload_path).write_bytes(pickle.dumps(payload))
        environment = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        command = [sys.executable, "-m", "hydra_plugins.mnist_exp_packed.workers", payload_path]
        process = subprocess.Popen(command, env=environment, start_new_session=True)
        return cls(process, group, configs, Path(payload_path), results)

    def returns(self, launcher, stopped: bool) -> dict[int, JobReturn]:
        """The jobs' `JobReturn`s as the worker wrote them. A worker that a stop signal ended has
        saved its jobs and said how to resume them; one that ended otherwise without writing them
        (killed, or out of memory) fails its jobs, saying so."""
        try:
            return pickle.loads(self.results.read_bytes())
        except (OSError, EOFError, pickle.UnpicklingError):
            if stopped:
                return {}
            error = UserError(
                f"the worker process training jobs {list(self.group.jobs)} ended with exit code "
                f"{self.process.returncode} before reporting them; their train.log says how far they got"
            )
            ended = zip(self.group.jobs, self.configs, strict=True)
            return {n: launcher._close_job(config, SimpleNamespace(result=error)) for n, config in ended}
        finally:
            self.payload.unlink(missing_ok=True)  # the worker removes it once read, unless it died first
            self.results.unlink(missing_ok=True)


def launch_in_workers(launcher, groups: list[Group], configs: list[DictConfig]) -> dict[int, JobReturn]:
    """Every group in a worker process, at most `launcher.workers` at a time, in sweep order."""
    import torch

    threads = max(1, torch.get_num_threads() // launcher.workers)  # torch's count of this machine's cores
    sweep = _with_literal_sweep_dir(launcher.config)
    resolved = [_with_literal_sweep_dir(config) for config in configs]
    waiting, running, returns = list(groups), [], {}
    with _HandedOn(running) as signals:
        while waiting or running:
            while waiting and len(running) < launcher.workers and not signals.received:
                group = waiting.pop(0)
                launcher._describe(group, configs)
                jobs = [resolved[i] for i in group.jobs]
                running.append(Worker.start(launcher, sweep, group, jobs, threads))
            if not running:
                break
            time.sleep(POLL_S)
            for worker in [worker for worker in running if worker.process.poll() is not None]:
                running.remove(worker)
                returns |= worker.returns(launcher, stopped=bool(signals.received))
    if signals.received:
        sys.exit(128 + signals.received)  # each worker printed how to resume its jobs
    return returns


def _with_literal_sweep_dir(config: DictConfig) -> DictConfig:
    literal = copy.deepcopy(config)
    with read_write(literal.hydra.sweep):
        literal.hydra.sweep.dir = str(config.hydra.sweep.dir)
    return literal


class _HandedOn:
    """While workers run: a stop signal to the launcher goes on to each running worker."""

    def __init__(self, running: list[Worker]):
        self.running, self.received, self._previous = running, 0, {}

    def _handle(self, signum, _frame) -> None:
        self.received = signum
        for worker in self.running:
            worker.process.send_signal(signum)

    def __enter__(self) -> _HandedOn:
        self._previous = {s: signal.signal(s, self._handle) for s in HANDLED}
        return self

    def __exit__(self, *_exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _work(payload_path: Path) -> None:
    """In the worker: train one group as the launcher would, and write its `JobReturn`s."""
    import torch
    from hydra._internal.callbacks import Callbacks
    from hydra.core.utils import JobRuntime, setup_globals
    from hydra.types import HydraContext

    import mnist_exp.train  # noqa: F401  (its resolvers and config schemas)
    from hydra_plugins.mnist_exp_packed.packed_launcher import PackedLauncher
    from mnist_exp.rundir.job_names import register_job_dir_resolver, swept_keys

    payload = pickle.loads(payload_path.read_bytes())
    payload_path.unlink()
    torch.set_num_threads(payload["threads"])
    setup_globals()
    sweep = payload["sweep"]
    JobRuntime.instance().set("name", sweep.hydra.job.name)
    register_job_dir_resolver(swept_keys(OmegaConf.to_container(sweep.hydra.overrides.task)))
    launcher = PackedLauncher(max_copies=payload["max_copies"])
    launcher.config, launcher.task_function = sweep, None
    launcher.hydra_context = HydraContext(config_loader=None, callbacks=Callbacks(sweep))
    returns = launcher._launch_group(payload["jobs"], tuple(payload["numbers"]))  # exits if stopped
    for done in returns.values():
        done.return_value = _picklable(done._return_value)
    written = Path(payload["results"] + ".partial")
    written.write_bytes(pickle.dumps(returns))
    written.replace(payload["results"])


def _picklable(value: object) -> object:
    """An error whose class cannot be rebuilt from its message (say, `Diverged`) goes back as a
    `UserError` with the same message."""
    try:
        pickle.loads(pickle.dumps(value))
        return value
    except Exception:
        return UserError(str(value))


if __name__ == "__main__":
    _work(Path(sys.argv[1]))
