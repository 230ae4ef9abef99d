"""The command line: the app with every command registered, and `run`, which maps errors."""

from __future__ import annotations

import logging
import os
import sys
import traceback
import zoneinfo

import typer

# Importing the command modules registers their commands on the app.
from cs_metrics.cli import compute, imports, weekly
from cs_metrics.cli.common import app

__all__ = ["app", "compute", "imports", "run", "weekly"]


def run() -> None:
    """Run the app and turn domain errors into one line and an exit status."""
    logging.basicConfig(
        level=os.environ.get("CS_METRICS_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        app()
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
