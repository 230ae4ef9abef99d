"""The enforcement policy as data: targets, limits, lookbacks and market zones, and the statuses."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from cs_metrics.errors import UsageError
from cs_metrics.timestamps import known_timezones

MARKET_TIMEZONES: dict[str, str] = {
    "SG": "Asia/Singapore",
    "MY": "Asia/Kuala_Lumpur",
    "VN": "Asia/Ho_Chi_Minh",
    "TH": "Asia/Bangkok",
    "PH": "Asia/Manila",
    "ID": "Asia/Jakarta",
    "JP": "Asia/Tokyo",
    "US": "America/Los_Angeles",
    "MX": "America/Mexico_City",
    "BR": "America/Sao_Paulo",
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "ES": "Europe/Madrid",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "IT": "Europe/Rome",
}

PASS, FAIL, NOT_ASSESSED = "pass", "fail", "not_assessed"
WARNING, VIOLATION_POINT, NO_ACTION = "warning", "violation_point", "none"
STATUS_METRICS = ("response_rate_12h", "first_response_minutes_mean", "satisfaction_rate")


@dataclass(frozen=True)
class Policy:
    """Customer Service Guidelines thresholds; defaults are the guideline values (section 6.1)."""

    response_limit_hours: float = 12.0
    response_rate_target: float = 0.85
    first_response_target_minutes: float = 30.0
    satisfaction_target: float = 0.70
    satisfied_min_rating: int = 4
    window_days: int = 7
    auto_reply_counts_as_response: bool = True
    warning_lookback_weeks: int = 12
    violation_point_validity_days: int = 90
    default_timezone: str = "UTC"
    market_timezones: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(MARKET_TIMEZONES))
    )

    @property
    def response_limit(self) -> pd.Timedelta:
        """The response deadline as a duration on the Holiday-Mode-adjusted clock."""
        return pd.Timedelta(hours=self.response_limit_hours)

    def as_dict(self) -> dict[str, Any]:
        """The effective policy, for metrics.json and the report footer."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "market_timezones": dict(self.market_timezones)
        }


def load_policy(path: Path | None = None, **overrides: Any) -> Policy:
    """The policy from a TOML file (keys as in `Policy`), with keyword overrides on top."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: cannot read policy file ({exc})") from exc
        # A misspelled section would silently leave every default in force (found in audit).
        if set(document) - {"policy"} or not isinstance(document.get("policy", {}), dict):
            raise UsageError(f"{path}: a policy file holds one [policy] table (see docs/policy.md)")
        values = dict(document.get("policy", {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(Policy)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"{path}: unknown policy keys: {', '.join(unknown)}")
    for key, value in values.items():
        problem = _value_problem(key, value)
        if problem:
            raise UsageError(f"{path}: policy {key} = {value!r}: {problem}")
    if "market_timezones" in values:
        merged = {
            **MARKET_TIMEZONES,
            **{k.upper(): v for k, v in values["market_timezones"].items()},
        }
        values["market_timezones"] = MappingProxyType(merged)
    try:
        return Policy(**values)
    except TypeError as exc:
        raise UsageError(f"{path}: bad policy value ({exc})") from exc


_NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    "response_limit_hours": (0, 24 * 366, False),
    "first_response_target_minutes": (0, 60 * 24 * 366, False),
    "response_rate_target": (0, 1, True),
    "satisfaction_target": (0, 1, True),
}
"""Number keys: (low, high, low included); high is always included."""
_WHOLE_RANGES = {
    "satisfied_min_rating": (1, 5),
    "window_days": (1, 366),
    "warning_lookback_weeks": (0, 520),
    "violation_point_validity_days": (1, 3660),
}


def _value_problem(key: str, value: Any) -> str | None:
    """What is wrong with one policy value (None: nothing)."""
    if key in _NUMBER_RANGES:
        low, high, closed = _NUMBER_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if closed and not low <= value <= high:
            return f"must be from {low} to {high}"
        if not closed and not low < value <= high:
            return f"must be over {low} and at most {high}"
    elif key in _WHOLE_RANGES:
        low, high = _WHOLE_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be a whole number from {low} to {high}"
    elif key == "auto_reply_counts_as_response" and not isinstance(value, bool):
        return "must be true or false"
    elif key == "default_timezone" and value not in known_timezones():
        return "must be an IANA time zone name such as Asia/Singapore"
    elif key == "market_timezones":
        if not isinstance(value, dict):
            return "must be a table of market = time zone"
        bad = [
            f"{k} = {v!r}"
            for k, v in value.items()
            if not isinstance(v, str) or v not in known_timezones()
        ]
        if bad:
            return f"unknown time zones: {', '.join(bad)}"
    return None


def metric_status(values: pd.Series, passes: pd.Series) -> pd.Series:
    """`pass`/`fail` per value, `not_assessed` where the value is null."""
    status = np.where(passes.fillna(False).astype(bool), PASS, FAIL)
    return pd.Series(status, index=values.index).where(values.notna(), NOT_ASSESSED)


def statuses(metrics: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """The section 6 status of each metric, one row per shop."""
    rate = metrics["response_rate_12h"].astype("Float64")
    frt = metrics["first_response_minutes_mean"].astype("Float64")
    csat = metrics["satisfaction_rate"].astype("Float64")
    return pd.DataFrame(
        {
            "response_rate_12h": metric_status(rate, rate >= policy.response_rate_target),
            "first_response_minutes_mean": metric_status(
                frt, frt < policy.first_response_target_minutes
            ),
            "satisfaction_rate": metric_status(csat, csat >= policy.satisfaction_target),
        },
        index=metrics.index,
    )


def actions(rate_status: pd.Series, failed_recently: pd.Series) -> pd.Series:
    """`warning` for a first 12-hour-rate failure in the lookback, else `violation_point`."""
    failing = rate_status == FAIL
    repeat = failed_recently.reindex(rate_status.index).fillna(False).astype(bool)
    action = np.where(failing & repeat, VIOLATION_POINT, np.where(failing, WARNING, NO_ACTION))
    return pd.Series(action, index=rate_status.index)
