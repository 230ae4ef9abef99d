"""The command line: the app with every command registered, and `run`, which maps errors."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
import zoneinfo

import typer

# Importing the command modules registers their commands on the app.
from cs_metrics.cli import appeal, compute, imports, watch, weekly
from cs_metrics.cli import fetch as fetch_commands
from cs_metrics.cli.common import app

__all__ = ["app", "appeal", "compute", "fetch_commands", "imports", "run", "watch", "weekly"]


class Stopped(BaseException):
    """A signal asked the process to stop (a BaseException: no `except Exception` swallows it,
    and every `finally` on the way out runs, so locks go and staged files are removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run() -> None:
    """Run the app and turn domain errors into one line and an exit status."""
    logging.basicConfig(
        level=os.environ.get("CS_METRICS_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    for number in STOP_SIGNALS:
        signal.signal(number, _stop)
    try:
        app()
    except Stopped as exc:
        logging.getLogger("cs_metrics").error(
            "stopped by %s; nothing half-written is left (a file, a stored week and the "
            "history are each as before or wholly new); the next run resumes or cleans up",
            exc,
        )
        sys.exit(128 + exc.signum)
    except (zoneinfo.ZoneInfoNotFoundError, KeyboardInterrupt) as exc:
        typer.echo(f"cs-metrics: error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("CS_METRICS_DEBUG"):
            traceback.print_exc()
        typer.echo(
            f"cs-metrics: internal error: {type(exc).__name__}: {exc} "
            "(set CS_METRICS_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(1)
