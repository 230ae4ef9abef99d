"""SPEC 6 and 6a rules of enforcement.py on small hand-made tables."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cs_metrics import enforcement
from cs_metrics.enforcement import (
    BAD_ROWS,
    COMPLETE,
    PARTIAL,
    actions,
    bad_row_shares,
    coverage,
    failed_recently,
)
from cs_metrics.policy import Policy

END = pd.Timestamp("2026-11-23T00:00:00+08:00")
"""The end of the week of 16-22 November in Singapore (the window_end of the shops below)."""


@pytest.mark.parametrize(
    ("cutoff", "share", "expected"),
    [
        ("2026-11-23T00:00:00+08:00", 0.0, COMPLETE),  # the cut-off exactly at the window end
        ("2026-11-22T23:59:59+08:00", 0.0, PARTIAL),  # one second short
        ("2026-11-30T00:00:00+08:00", 0.02, COMPLETE),  # at most the share: still complete
        ("2026-11-30T00:00:00+08:00", 0.021, BAD_ROWS),
        ("2026-11-20T00:00:00+08:00", 0.5, PARTIAL),  # partial is named before bad rows
        (None, 0.0, PARTIAL),  # no cut-off: no message at all
    ],
    ids=["at_end", "second_short", "share_at_limit", "share_over", "both", "no_cutoff"],
)
def test_coverage_of_one_shop(cutoff: str | None, share: float, expected: str) -> None:
    ends = pd.Series([END], index=["S"])
    cut = None if cutoff is None else pd.Timestamp(cutoff)
    found = coverage(ends, cut, pd.Series([share], index=["S"]), Policy())
    assert found.tolist() == [expected]


def test_bad_row_share_is_over_the_rows_read_of_the_shop() -> None:
    read = pd.Series([100, 50, 0], index=["A", "B", "C"])
    bad = pd.Series([3], index=["A"])
    assert bad_row_shares(read, bad).tolist() == [0.03, 0.0, 0.0]


def test_max_bad_row_share_comes_from_the_policy() -> None:
    ends = pd.Series([END], index=["S"])
    cut = pd.Timestamp("2026-11-24T00:00:00Z")
    lenient = Policy(max_bad_row_share=0.1)
    assert coverage(ends, cut, pd.Series([0.05], index=["S"]), lenient).tolist() == [COMPLETE]
    assert coverage(ends, cut, pd.Series([0.05], index=["S"]), Policy()).tolist() == [BAD_ROWS]


def test_a_failure_without_complete_coverage_is_withheld_and_nothing_else_changes() -> None:
    status = pd.Series(["fail", "fail", "pass", "fail"], index=["A", "B", "C", "D"])
    before = pd.Series([False, True, False, True], index=status.index)
    cover = pd.Series([PARTIAL, BAD_ROWS, PARTIAL, COMPLETE], index=status.index)
    assert actions(status, before, cover).tolist() == [
        "withheld",
        "withheld",
        "none",
        "violation_point",
    ]


def history(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    """Stored evaluations: (shop, as_of, 12-hour status, coverage)."""
    return pd.DataFrame(rows, columns=["shop_id", "as_of", "status_response_rate_12h", "coverage"])


def test_only_complete_weeks_count_in_the_lookback() -> None:
    stored = history(
        [
            ("A", "2026-11-16", "fail", PARTIAL),  # withheld week: neither failure nor pass
            ("B", "2026-11-16", "fail", COMPLETE),
            ("C", "2026-11-09", "fail", None),  # stored before coverage existed: complete
            ("D", "2026-11-16", "fail", BAD_ROWS),
        ]
    )
    found = failed_recently(stored, dt.date(2026, 11, 23), 12)
    assert found.reindex(["A", "B", "C", "D"]).fillna(False).tolist() == [False, True, True, False]


def test_the_lookback_starts_its_weeks_before_as_of() -> None:
    stored = history([("A", "2026-08-31", "fail", COMPLETE), ("B", "2026-08-24", "fail", COMPLETE)])
    found = failed_recently(stored, dt.date(2026, 11, 23), 12)
    assert found.reindex(["A", "B"]).fillna(False).tolist() == [True, False]


def test_a_withheld_week_earns_no_point() -> None:
    stored = pd.DataFrame(
        {
            "shop_id": ["A", "A"],
            "as_of": ["2026-11-16", "2026-11-23"],
            "action": ["withheld", "violation_point"],
        }
    )
    assert enforcement.active_points(stored, dt.date(2026, 11, 23), 90).to_dict() == {"A": 1}
