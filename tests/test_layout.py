"""The package's layout holds: imports point one way, from the entry points down, and the top
level keeps only the entry points and what every layer shares.

Each subpackage's `__init__` docstring says what it may import; this test is that list, checked
against every `import` in the package (top-level and inside functions alike).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mnist_exp

PACKAGE = Path(mnist_exp.__file__).parent
# The entry points: they may import anything of ours.
ENTRY = {"train", "predict", "eval", "summarize", "__main__", "__init__", "cli"}
MAY_IMPORT = {
    "errors": set(),
    "models": set(),
    "fs": {"errors"},
    "data": {"errors", "fs"},
    "config": {"errors", "data"},
    "accel": {"errors"},
    "rundir": {"errors", "fs", "config"},
    "engine": {"errors", "models", "accel", "config", "data"},
    "monitor": {"errors", "models", "fs", "rundir"},
    "inference": {"config", "errors", "models", "data", "engine", "rundir", "monitor", "accel"},
    "report": {"errors", "fs", "config", "rundir"},
    # Above the one-run entry: a packed group runs each job as `train` does, and alone through it.
    "packing": {
        "errors",
        "models",
        "accel",
        "config",
        "data",
        "engine",
        "rundir",
        "monitor",
        "report",
        "cli",
        "train",
    },
}
TOP_LEVEL_MODULES = {
    "__init__.py",
    "__main__.py",
    "train.py",
    "predict.py",
    "eval.py",
    "summarize.py",
    "models.py",
    "errors.py",
}


def concern(module: Path) -> str:
    """`engine` for mnist_exp/engine/loop.py, `train` for mnist_exp/train.py."""
    parts = module.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported_concerns(module: Path) -> set[str]:
    """The concerns of ours that `module` imports, by absolute or relative import."""
    tree = ast.parse(module.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    ours = {name.split(".")[1] for name in names if name.startswith("mnist_exp.") and name.count(".") >= 1}
    return ours & (set(MAY_IMPORT) | ENTRY)


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if concern(p) not in ENTRY and concern(p) != "conf")


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_what_its_concern_may(module):
    own = concern(module)
    assert own in MAY_IMPORT, f"{own}/ is a new concern: give it a place in MAY_IMPORT and a docstring"
    upward = imported_concerns(module) - MAY_IMPORT[own] - {own}
    assert not upward, f"{module.relative_to(PACKAGE)} imports {sorted(upward)}, which {own}/ may not"


def test_every_subpackage_says_what_it_holds_and_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "conf":
            continue
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in docstring or "may import" in docstring, f"{init.parent.name}/__init__.py"


def test_the_top_level_keeps_only_entry_points_and_shared_modules():
    assert {p.name for p in PACKAGE.glob("*.py")} == TOP_LEVEL_MODULES
