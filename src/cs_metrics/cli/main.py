"""The `cs-metrics` entry point: process settings first, then the command line."""

from __future__ import annotations

from cs_metrics.cli.allocator import tune_environment


def main() -> None:
    """Set the process's memory settings, then run the command line."""
    tune_environment()
    # Imported only now: numpy and pyarrow read the settings when they load.
    from cs_metrics.cli.app import run

    run()
