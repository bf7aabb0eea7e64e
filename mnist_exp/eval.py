"""`mnist-exp-eval RUN_DIR_OR_CHECKPOINT [key=value ...]`: score a saved model again, without training.

The model is scored on its dataset's test set and, where its run held out a validation split, on
that split too, exactly as its run scored it (same normalisation, views and fp32), so a completed
run's last.pt gives back its final_test_acc. A run directory means the model the run hands on:
best.pt (its best validation epoch) where it held a split, else last.pt. The numbers, per-class
accuracy and confusion matrices go into RUN_DIR/eval/<checkpoint>_<dataset>/ (or out=DIR).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from mnist_exp.errors import UserError
from mnist_exp.fs.atomic import atomic_write_bytes, write_json
from mnist_exp.inference.checkpoint import CheckpointError, load_trained_model
from mnist_exp.inference.evaluate import evaluate, evaluation_files, evaluation_tables, plan_evaluation
from mnist_exp.inference.overrides import KEYS, parse_overrides

__all__ = ["main"]
PROG = "mnist-exp-eval"
WIDE_ENOUGH = 200  # when piped, print paths whole rather than folded at 80 columns
OVERRIDES_HELP = "overrides (unless given: the run's dataset and data.*, trainer.device=cpu):\n" + "\n".join(
    f"  {key + '=...':<26}{allowed}" for key, allowed in KEYS.items()
)


def write_files(files: dict[str, bytes | dict], out: Path) -> None:
    """Each file lands whole or not at all; a refused or failed evaluation got here with nothing."""
    for name, content in files.items():
        if isinstance(content, bytes):
            atomic_write_bytes(out / name, content)
        else:
            write_json(out / name, content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, epilog=OVERRIDES_HELP, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, metavar="RUN_DIR_OR_CHECKPOINT")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="see overrides below")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.overrides)
        trained = load_trained_model(args.checkpoint)
        plan = plan_evaluation(trained, overrides)
        evaluation = evaluate(trained, plan)
        write_files(evaluation_files(evaluation), plan.out)
    except (UserError, CheckpointError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    console = Console(width=None if sys.stdout.isatty() else WIDE_ENOUGH)
    console.print(*evaluation_tables(evaluation))
    console.print(f"Written to {plan.out}", soft_wrap=True, highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
