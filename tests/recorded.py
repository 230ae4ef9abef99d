"""Record an evaluated week in a history store alone (no week folder), for tests of the history."""

from __future__ import annotations

from pathlib import Path

from cs_metrics import history, weekly
from cs_metrics.week_files import WeekResults


def record_week(results: WeekResults, store: Path, dataset_id: str = history.LEGACY) -> WeekResults:
    """Store the week's records as a weekly run does; the results then carry the history."""
    results, rows = weekly.with_this_week(results, store, dataset_id)
    history.save_week(store, dataset_id, results.as_of, rows, f"test-{results.as_of}", store.parent)
    return results
