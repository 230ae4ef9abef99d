"""The enforcement policy as data: targets, limits, lookbacks and market zones, checked once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from cs_metrics.config import (
    Number,
    Problem,
    Whole,
    boolean,
    first_problem,
    read_toml,
    unknown_names,
)
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
    max_bad_row_share: float = 0.02
    """SPEC 6a: above this share of a shop's message rows quarantined, its week is not covered."""
    at_risk_margin: float = 0.02
    """The report's "at risk" group: a passing response rate less than this above the target."""
    default_timezone: str = "UTC"
    schedule_timezone: str = "local"
    """Whose calendar says which Monday it is when `weekly` runs without --as-of: the host's
    (`local`), or an IANA zone, e.g. the shops' when the host runs on UTC."""
    market_timezones: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(MARKET_TIMEZONES))
    )

    @property
    def response_limit(self) -> pd.Timedelta:
        """The response deadline as a duration on the Holiday-Mode-adjusted clock."""
        return pd.Timedelta(hours=self.response_limit_hours)

    @property
    def limit_label(self) -> str:
        """The response limit as people write it: `12-hour`, `24-hour`, `1.5-hour`."""
        return f"{self.response_limit_hours:g}-hour"

    def as_dict(self) -> dict[str, Any]:
        """The effective policy as plain values, for metrics.json and the history store."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "market_timezones": dict(self.market_timezones)
        }

    def fingerprint(self) -> str:
        """A short digest of the values: two evaluations under one policy share it. Keys that
        only shape the report (REPORT_ONLY) change no result and are left out."""
        values = {k: v for k, v in self.as_dict().items() if k not in REPORT_ONLY}
        text = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "policy") -> Policy:
        """The policy from plain values (a policy file's table or a stored `policy`), checked."""
        values = dict(values)
        unknown = unknown_names(values, (f.name for f in fields(cls)))
        if unknown:
            raise UsageError(f"{source}: unknown policy keys: {', '.join(unknown)}")
        problem = first_problem(values, CHECKS)
        if problem:
            key, text = problem
            raise UsageError(f"{source}: policy {key} = {values[key]!r}: {text}")
        if "market_timezones" in values:
            merged = {
                **MARKET_TIMEZONES,
                **{k.upper(): v for k, v in values["market_timezones"].items()},
            }
            values["market_timezones"] = MappingProxyType(merged)
        return cls(**values)


REPORT_ONLY = ("at_risk_margin",)
"""Policy keys that change what the report says, never a status, an action or a stored value."""

CONFIG_TABLES = ("policy", "delivery")
"""The tables a config file may hold: the policy, and how the weekly result is sent."""


def load_policy(path: Path | None = None, **overrides: Any) -> Policy:
    """The policy from a TOML file (keys as in `Policy`), with keyword overrides on top."""
    values: dict[str, Any] = {}
    if path is not None:
        document = read_toml(path, UsageError, "policy file")
        # A misspelled section would silently leave every default in force. [delivery] is read
        # and checked by cs_metrics.delivery (the commands that send); here it is only let by.
        if unknown_names(document, CONFIG_TABLES) or not all(
            isinstance(document.get(name, {}), dict) for name in CONFIG_TABLES
        ):
            raise UsageError(
                f"{path}: a config file holds one [policy] table and, to send the report, "
                "one [delivery] table (see docs/policy.md, docs/delivery.md)"
            )
        values = dict(document.get("policy", {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Policy.from_dict(values, str(path))


def _time_zone(value: Any) -> str | None:
    if value not in known_timezones():
        return "must be an IANA time zone name such as Asia/Singapore"
    return None


def _market_zones(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a table of market = time zone"
    bad = [
        f"{k} = {v!r}"
        for k, v in value.items()
        if not isinstance(v, str) or v not in known_timezones()
    ]
    return f"unknown time zones: {', '.join(bad)}" if bad else None


CHECKS: dict[str, Problem] = {
    "response_limit_hours": Number(0, 24 * 366, low_included=False),
    "first_response_target_minutes": Number(0, 60 * 24 * 366, low_included=False),
    "response_rate_target": Number(0, 1),
    "satisfaction_target": Number(0, 1),
    "max_bad_row_share": Number(0, 1),
    "at_risk_margin": Number(0, 1),
    "satisfied_min_rating": Whole(1, 5),
    "window_days": Whole(1, 366),
    "warning_lookback_weeks": Whole(0, 520),
    "violation_point_validity_days": Whole(1, 3660),
    "auto_reply_counts_as_response": boolean,
    "default_timezone": _time_zone,
    "schedule_timezone": lambda value: None if value == "local" else _time_zone(value),
    "market_timezones": _market_zones,
}
"""What each policy key must be (docs/policy.md lists the same)."""
