"""Which engine runs (engines.choose): the auto rule and the options only Dask takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import MESSAGES_HEADER, write_csv
from cs_metrics import engines
from cs_metrics.errors import UsageError


@pytest.fixture
def small(data: Path) -> Path:
    """A data folder with a one-message CSV."""
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    return data


def test_auto_keeps_a_small_table_in_memory(small: Path) -> None:
    with engines.choose("auto", small) as engine:
        assert engine.name == "pandas"


def test_auto_spills_a_large_csv(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CSV of DISK_FROM_BYTES or more goes to the disk engine."""
    monkeypatch.setattr(engines, "DISK_FROM_BYTES", 1)
    with engines.choose("auto", small) as engine:
        assert engine.name == "disk"


def test_auto_spills_what_would_not_fit_in_memory(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever its format, a table the pandas engine could not hold goes to the disk engine."""
    monkeypatch.setattr(engines, "available_memory", lambda: 10)
    assert engines.larger_than_memory(small)
    assert engines.chosen_name("auto", small) == "disk"
    monkeypatch.setattr(engines, "available_memory", lambda: None)
    assert engines.chosen_name("auto", small) == "pandas"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("pandas", {"scheduler": "tcp://127.0.0.1:1"}, "need --engine dask"),
        ("auto", {"partitions": 3}, "need --engine dask"),
        ("spark", {}, "unknown engine"),
    ],
    ids=["scheduler_without_dask", "partitions_without_dask", "unknown"],
)
def test_bad_choices_are_usage_errors(
    small: Path, name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message), engines.choose(name, small, **options):
        pass  # pragma: no cover - never reached
