"""Run `cs-metrics` with a fault injected at its Nth write point (a test aid, run as a script).

    python tests/faults.py N SIGNAL POINTS_FILE -- weekly --data ...

Write points are the calls that change files on disk or the history: fsync, rename and replace,
mkdir, folder removal, the atomic exchange of two folders, and the history commit; each counts
twice, just before and just after the call. At the Nth the process sends itself SIGNAL (KILL:
dies at once; TERM or INT: the handler runs as a real signal would). N = 0 injects nothing.
Each point's name is appended to POINTS_FILE, so a run with N = 0 lists them all.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def install(target: int, signum: int, points_file: str) -> None:
    """Wrap every write point of the package; send `signum` at the `target`th."""
    from cs_metrics import history, week_files

    count = 0
    log = Path(points_file).open("a", encoding="utf-8")  # noqa: SIM115 - open for the process

    def hit(name: str) -> None:
        nonlocal count
        count += 1
        log.write(f"{count} {name}\n")
        log.flush()
        if count == target:
            os.kill(os.getpid(), signum)

    def wrapped(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            hit(f"before {name}")
            result = function(*args, **kwargs)
            hit(f"after {name}")
            return result

        return call

    for name in ("fsync", "replace", "rename", "mkdir"):
        setattr(os, name, wrapped(f"os.{name}", getattr(os, name)))
    shutil.rmtree = wrapped("shutil.rmtree", shutil.rmtree)  # type: ignore[assignment]
    week_files._exchange = wrapped("exchange", week_files._exchange)
    history.save_week = wrapped("history commit", history.save_week)


def main() -> None:
    target, name, points_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    assert sys.argv[4] == "--"
    install(target, getattr(signal, f"SIG{name}"), points_file)
    sys.argv = ["cs-metrics", *sys.argv[5:]]
    from cs_metrics.cli.main import main as cli

    cli()


if __name__ == "__main__":
    main()
