"""A clear word, before Hydra composes anything, when a chosen preset's Hydra plugin is missing.

Hydra alone answers `hydra/launcher=parallel` without its plugin with "In
'hydra/launcher/parallel': Could not load 'hydra/launcher/joblib'", which names neither the
package nor the extra that brings it.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

JOBLIB = ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "sweep")
SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "slurm")
RAY = ("hydra_plugins.hydra_ray_launcher", "hydra-ray-launcher", "ray")
OPTUNA = ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper", "optuna")

PLUGIN_OF_CHOICE = {
    "hydra/launcher=parallel": JOBLIB,
    "hydra/launcher=joblib": JOBLIB,
    "hydra/launcher=local_isolated": SUBMITIT,
    "hydra/launcher=submitit_local": SUBMITIT,
    "hydra/launcher=slurm": SUBMITIT,
    "hydra/launcher=submitit_slurm": SUBMITIT,
    "hydra/launcher=ray": RAY,
    "hydra/launcher=ray_tasks": RAY,
    "hydra/sweeper=optuna": OPTUNA,
    "hparams_search=optuna": OPTUNA,
}


def plugin_installed(module: str) -> bool:
    """False also where no Hydra plugin at all is installed: `find_spec` then raises, as the
    `hydra_plugins` namespace it would look in does not exist."""
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def missing_plugin_message(overrides: list[str]) -> str | None:
    """None when every plugin the command line's group choices need is importable."""
    for override in overrides:
        needed = PLUGIN_OF_CHOICE.get(override.lstrip("+~"))
        if needed is None:
            continue
        module, package, extra = needed
        if not plugin_installed(module):
            return (
                f"{override} needs the Hydra plugin {package}, which is not installed. "
                f'Install it with: pip install "mnist-exp[{extra}]"'
            )
    return None


def exit_if_plugin_missing(argv: list[str]) -> None:
    message = missing_plugin_message(argv)
    if message:
        print(f"Error: {message}", file=sys.stderr)
        sys.exit(2)
