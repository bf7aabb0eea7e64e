"""The docs cannot drift from the code: every training command they show composes into a valid
config (as `--cfg job` would, without training), and every relative link leads to a file.

Commands are found in code blocks and in inline code of README.md and the other Markdown pages
(`docs/`, `experiments/`, CONTRIBUTING.md). A sweep stands for its first job; what needs more than
the configs (a run to resume, a Hydra launcher or sweeper plugin) is left out of the composed
overrides, not out of the check.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from mnist_exp.cli.shorthand import expand_group_shorthand
from mnist_exp.config.validation import validate
from mnist_exp.engine.optim import construction_problems
from mnist_exp.inference.overrides import parse_overrides

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", *REPO.glob("docs/*.md"), *REPO.glob("experiments/*.md")]
)
PAGES = [page for page in PAGES if page.is_file()]
PROGRAMS = ("python -m mnist_exp ", "mnist-exp ")
EVAL_PROGRAMS = ("python -m mnist_exp.eval ", "mnist-exp-eval ")  # a path, then its own overrides
CODE_BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
NOT_COMPOSED = ("resume=", "hydra.", "hydra/", "hparams_search=", "+hydra.", "++hydra.")


def commands(page: Path, programs: tuple[str, ...] = PROGRAMS) -> list[str]:
    """Every `python -m mnist_exp ...` or `mnist-exp ...` command (or other `programs`) on the
    page, comments dropped."""
    text = page.read_text()
    found = []
    for block in CODE_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            found.append(line.split(" #")[0].strip())
    found += INLINE_CODE.findall(CODE_BLOCK.sub("", text))
    return [command for command in found if command.startswith(programs)]


def overrides_of(command: str) -> list[str]:
    """The overrides a command composes, its first job's where it sweeps."""
    words = shlex.split(command)
    words = words[3:] if words[0] == "python" else words[1:]
    kept, skip_next = [], False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in ("--cfg", "-c", "--package", "-p"):
            skip_next = True
        elif word.startswith("-") or word.startswith(NOT_COMPOSED):
            continue
        else:
            key, _, value = word.partition("=")
            first = value if value.startswith(("[", "{", "'", '"')) else value.split(",")[0]
            kept.append(f"{key}={first}")
    return expand_group_shorthand(kept)


COMMANDS = sorted(
    {(page.relative_to(REPO).as_posix(), command) for page in PAGES for command in commands(page)}
)


def test_the_docs_show_commands_to_check():
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}: {c[:80]}" for p, c in COMMANDS])
def test_a_command_in_the_docs_composes_into_a_valid_config(compose_config, page, command):
    validate(compose_config(*overrides_of(command)), construction_problems)


EVAL_COMMANDS = sorted(
    {
        (page.relative_to(REPO).as_posix(), command)
        for page in PAGES
        for command in commands(page, EVAL_PROGRAMS)
    }
)


@pytest.mark.parametrize(("page", "command"), EVAL_COMMANDS, ids=[f"{p}: {c[:80]}" for p, c in EVAL_COMMANDS])
def test_an_eval_command_in_the_docs_takes_a_path_and_valid_overrides(page, command):
    words = shlex.split(command)
    arguments = [word for word in words[3 if words[0] == "python" else 1 :] if not word.startswith("-")]
    if arguments:  # none with `--help` alone
        assert "=" not in arguments[0], f"{command}: the checkpoint or run dir comes first"
        parse_overrides(arguments[1:])


def relative_links(page: Path) -> list[str]:
    targets = LINK.findall(CODE_BLOCK.sub("", page.read_text()))
    return [target for target in targets if not re.match(r"[a-z]+:|#", target)]


LINKS = [(page, target) for page in PAGES for target in relative_links(page)]


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{p.name}->{t}" for p, t in LINKS])
def test_a_relative_link_in_the_docs_leads_to_a_file(page, target):
    assert (page.parent / target.split("#")[0]).exists(), f"{page.relative_to(REPO)} links to {target}"
