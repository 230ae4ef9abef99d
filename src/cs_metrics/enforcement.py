"""Enforcement (SPEC 6 and 6a): metric statuses, data coverage, the action, lookback, points.

Every rule that turns metrics into a recommendation lives here, read from the typed `Policy`:
the report, the weekly job and the history summary call these functions, never restate them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cs_metrics.formats import local_time
from cs_metrics.policy import Policy

PASS = "pass"
FAIL = "fail"
NOT_ASSESSED = "not_assessed"

WARNING = "warning"
VIOLATION_POINT = "violation_point"
WITHHELD = "withheld"
"""SPEC 6a: a 12-hour-rate failure on data that does not cover the week carries no penalty."""
NO_ACTION = "none"

COMPLETE = "complete"
PARTIAL = "partial"
BAD_ROWS = "bad_rows"

STATUS_METRICS = ("response_rate_12h", "first_response_minutes_mean", "satisfaction_rate")


def metric_status(values: pd.Series, passes: pd.Series) -> pd.Series:
    """`pass`/`fail` per value, `not_assessed` where the value is null."""
    status = np.where(passes.fillna(False).astype(bool), PASS, FAIL)
    return pd.Series(status, index=values.index).where(values.notna(), NOT_ASSESSED)


def rate_passes(rate: pd.Series, policy: Policy) -> pd.Series:
    """Whether each 12-hour response rate meets the target (the one pass rule for it)."""
    return rate.astype("Float64") >= policy.response_rate_target


def statuses(metrics: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """The section 6 status of each metric, one row per shop."""
    rate = metrics["response_rate_12h"].astype("Float64")
    frt = metrics["first_response_minutes_mean"].astype("Float64")
    csat = metrics["satisfaction_rate"].astype("Float64")
    return pd.DataFrame(
        {
            "response_rate_12h": metric_status(rate, rate_passes(rate, policy)),
            "first_response_minutes_mean": metric_status(
                frt, frt < policy.first_response_target_minutes
            ),
            "satisfaction_rate": metric_status(csat, csat >= policy.satisfaction_target),
        },
        index=metrics.index,
    )


def bad_row_shares(rows_read: pd.Series, rows_quarantined: pd.Series) -> pd.Series:
    """Per shop: the share of its message rows read that were quarantined (0 when none read)."""
    read = rows_read.astype("float64")
    bad = rows_quarantined.reindex(read.index).fillna(0).astype("float64")
    return (bad / read.where(read > 0)).fillna(0.0)


def coverage(
    window_end: pd.Series, cutoff: pd.Timestamp | None, bad_share: pd.Series, policy: Policy
) -> pd.Series:
    """SPEC 6a per shop: `partial` when the cut-off is before the window's end (or there is no
    cut-off: no data at all), else `bad_rows` over the policy's share of quarantined rows, else
    `complete`."""
    if cutoff is None:
        covered = np.zeros(len(window_end), dtype=bool)
    else:
        covered = (pd.to_datetime(window_end, utc=True) <= cutoff).to_numpy(dtype=bool)
    too_bad = (bad_share.reindex(window_end.index).fillna(0) > policy.max_bad_row_share).to_numpy()
    values = np.where(~covered, PARTIAL, np.where(too_bad, BAD_ROWS, COMPLETE))
    return pd.Series(values, index=window_end.index)


def actions(
    rate_status: pd.Series, failed_recently: pd.Series, coverage: pd.Series | None = None
) -> pd.Series:
    """`warning` for a first 12-hour-rate failure in the lookback, else `violation_point`;
    `withheld` instead of either when the week's data coverage is not complete."""
    failing = (rate_status == FAIL).to_numpy()
    repeat = failed_recently.reindex(rate_status.index).fillna(False).astype(bool).to_numpy()
    action = np.where(failing & repeat, VIOLATION_POINT, np.where(failing, WARNING, NO_ACTION))
    if coverage is not None:
        incomplete = (coverage.reindex(rate_status.index) != COMPLETE).to_numpy()
        action = np.where(failing & incomplete, WITHHELD, action)
    return pd.Series(action, index=rate_status.index)


def counted_in_lookback(history: pd.DataFrame) -> pd.DataFrame:
    """Stored evaluations that count in the lookback: complete coverage only (SPEC 6a).

    Records stored before coverage was recorded have none and count as complete.
    """
    if "coverage" not in history:
        return history
    return history.loc[history["coverage"].fillna(COMPLETE) == COMPLETE]


def failed_recently(history: pd.DataFrame, as_of: dt.date, lookback_weeks: int) -> pd.Series:
    """Per shop: did any counted evaluation in the lookback weeks before `as_of` fail the rate."""
    return latest_failures(history, as_of, lookback_weeks).notna()


def latest_failures(history: pd.DataFrame, as_of: dt.date, lookback_weeks: int) -> pd.Series:
    """Per shop that failed: the latest counted failure in the lookback before `as_of` (ISO)."""
    earliest = (as_of - dt.timedelta(weeks=lookback_weeks)).isoformat()
    counted = counted_in_lookback(history)
    window = counted.loc[(counted["as_of"] >= earliest) & (counted["as_of"] < as_of.isoformat())]
    failed = window.loc[window["status_response_rate_12h"] == FAIL]
    return failed.groupby("shop_id")["as_of"].max()


def active_points(history: pd.DataFrame, on: dt.date, validity_days: int) -> pd.Series:
    """Per shop: violation points issued within the validity period up to and including `on`."""
    earliest = (on - dt.timedelta(days=validity_days)).isoformat()
    issued = history.loc[
        (history["action"] == VIOLATION_POINT)
        & (history["as_of"] > earliest)
        & (history["as_of"] <= on.isoformat())
    ]
    return issued.groupby("shop_id").size()


def withheld_reason(shop: dict, cutoff: str | None, policy: Policy) -> str:
    """Why a shop's week is not covered (SPEC 6a), in the shop's local time."""
    if shop.get("coverage") == BAD_ROWS:
        share = float(shop.get("bad_row_share") or 0.0)
        return (
            f"{share:.1%} of its message rows were quarantined "
            f"(more than {policy.max_bad_row_share:.1%})"
        )
    if cutoff is None:
        return "no usable message at all"
    return f"data ends {local_time(cutoff, shop['timezone'])}"


def missing_weeks(
    history: pd.DataFrame, as_of: dt.date, shop_ids: list[str], lookback_weeks: int
) -> list[str]:
    """Mondays inside the lookback before `as_of` that the data set never evaluated, after the
    first stored week of a shop evaluated now: a failure there would be unseen, so a warning
    could be given where a violation point is due. Only the weeks are named; the actions stay
    those of SPEC 6, which counts the evaluations that exist."""
    earlier = history.loc[history["as_of"] < as_of.isoformat()]
    starts = earlier.loc[earlier["shop_id"].isin(shop_ids), "as_of"]
    if starts.empty:
        return []
    first = starts.min()
    evaluated = set(earlier["as_of"])
    mondays = [(as_of - dt.timedelta(weeks=k)).isoformat() for k in range(1, lookback_weeks + 1)]
    return sorted(day for day in mondays if day > first and day not in evaluated)
