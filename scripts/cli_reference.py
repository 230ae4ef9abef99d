"""Write docs/cli.md, the command-line reference, from the live `--help` of every command.

    python scripts/cli_reference.py           # rewrite docs/cli.md
    python scripts/cli_reference.py --check   # exit 1 when docs/cli.md is stale

Commands are found by walking the Typer app's Click command tree, so a new command or
sub-command appears without touching this script. The help is rendered through Typer's
CliRunner at a fixed width, with colour and terminal detection off, so the text is the same
from a shell, under pytest and in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
import typer.main
from typer.testing import CliRunner

from cs_metrics import cli

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "cli.md"
PROG = "cs-metrics"
WIDTH = 100

# Every variable a help renderer (Click's wrapper, or Rich when a command uses it) reads to
# size or colour its output; None removes the variable for the run.
HELP_ENV: dict[str, str | None] = {
    "COLUMNS": str(WIDTH),
    "LINES": "50",
    "TERMINAL_WIDTH": str(WIDTH),
    "TERM": "dumb",
    "NO_COLOR": "1",
    "FORCE_COLOR": None,
    "PY_COLORS": None,
    "CLICOLOR_FORCE": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
}
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

HEADER = f"""\
# Command-line reference

Generated from `{PROG} --help` by `python scripts/cli_reference.py`; do not edit by hand.
After changing a command or its help text, run that command again
(`tests/test_docs.py` fails while this page is stale).

What the commands compute is explained in [metrics.md](metrics.md), with the exit statuses
in [its section 9](metrics.md#9-exit-statuses); the [README](../README.md) has an overview.
"""


def typer_app() -> typer.Typer:
    """The Typer app `cs_metrics.cli.app`, whether `cli` is a module or a package."""
    app = getattr(cli, "app", None)
    if not isinstance(app, typer.Typer):  # a package whose module `app` defines it
        app = importlib.import_module("cs_metrics.cli.app").app
    return app


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The argument paths of the command and every visible sub-command, depth first."""
    yield path
    if not hasattr(command, "list_commands"):
        return
    context = command.context_class(command, info_name=" ".join((PROG, *path)))
    for name in command.list_commands(context):
        sub = command.get_command(context, name)
        if sub is not None and not getattr(sub, "hidden", False):
            yield from command_paths(sub, (*path, name))


@contextlib.contextmanager
def plain_rich_help() -> Iterator[None]:
    """Rich help (when the app uses it) at WIDTH columns, without colour or terminal codes.

    Typer reads TERMINAL_WIDTH and FORCE_COLOR when it is first imported, which under pytest
    happens before this script runs, so its module settings are set here for the run.
    """
    try:
        from typer import rich_utils
    except ImportError:  # Rich is not installed: Click renders the help
        yield
        return
    settings = {"MAX_WIDTH": WIDTH, "FORCE_TERMINAL": False, "COLOR_SYSTEM": None}
    saved = {name: getattr(rich_utils, name) for name in settings}
    try:
        for name, value in settings.items():
            setattr(rich_utils, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(rich_utils, name, value)


def help_text(path: tuple[str, ...]) -> str:
    """The `--help` output of one command, as a user sees it in a 100-column terminal."""
    with plain_rich_help():
        result = CliRunner().invoke(
            typer_app(),
            [*path, "--help"],
            env=HELP_ENV,
            color=False,
            prog_name=PROG,
            terminal_width=WIDTH,
            max_content_width=WIDTH,
        )
    if result.exit_code != 0:
        raise RuntimeError(f"{PROG} {' '.join(path)} --help exited {result.exit_code}")
    lines = ANSI_ESCAPE.sub("", result.stdout).splitlines()
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def reference() -> str:
    """The text of docs/cli.md for the installed command tree."""
    paths = list(command_paths(typer.main.get_command(typer_app())))
    names = [" ".join((PROG, *path)) for path in paths]
    parts = [HEADER, "## Contents\n"]
    parts += [f"- [`{name}`](#{anchor(name)})" for name in names]
    for name, path in zip(names, paths, strict=True):
        parts.append(f"\n## {name}\n\n```text\n{help_text(path)}\n```")
    return "\n".join(parts) + "\n"


def anchor(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, spaces as hyphens, no punctuation."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    """Rewrite docs/cli.md, or with --check report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if docs/cli.md is stale; write nothing"
    )
    args = parser.parse_args(argv)
    text = reference()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else None
    if args.check:
        if current == text:
            return 0
        state = "is missing" if current is None else "is stale (the help text changed)"
        print(
            f"{TARGET.relative_to(ROOT)} {state}: run `python scripts/cli_reference.py`",
            file=sys.stderr,
        )
        return 1
    if current != text:
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
