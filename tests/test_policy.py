"""Policy as data: guideline defaults, TOML files, statuses and actions (SPEC 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from cs_metrics.enforcement import actions, statuses
from cs_metrics.errors import UsageError
from cs_metrics.policy import Policy, load_policy
from paths import ROOT


def test_defaults_are_the_guideline_values() -> None:
    policy = Policy()
    assert (policy.response_limit_hours, policy.response_rate_target) == (12.0, 0.85)
    assert (policy.first_response_target_minutes, policy.satisfaction_target) == (30.0, 0.70)
    assert (policy.warning_lookback_weeks, policy.violation_point_validity_days) == (12, 90)
    assert policy.market_timezones["VN"] == "Asia/Ho_Chi_Minh"


def test_example_file_loads_to_the_defaults() -> None:
    assert load_policy(ROOT / "jobs" / "policy.example.toml") == Policy()


def test_a_24_hour_rule_with_a_90_percent_target_needs_no_code(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[policy]\nresponse_limit_hours = 24\nresponse_rate_target = 0.9\n")
    policy = load_policy(path)
    assert policy.response_limit == pd.Timedelta(hours=24)
    metrics = pd.DataFrame(
        {
            "response_rate_12h": [0.89, 0.90],
            "first_response_minutes_mean": [10.0, 10.0],
            "satisfaction_rate": [None, None],
        }
    )
    assert statuses(metrics, policy)["response_rate_12h"].tolist() == ["fail", "pass"]


def test_unknown_key_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[policy]\nresponse_rate_taget = 0.9\n")
    with pytest.raises(UsageError, match="response_rate_taget"):
        load_policy(path)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[policy]\nauto_reply_counts_as_response = "no"', "must be true or false"),
        ("[policy]\nresponse_rate_target = 85", "must be from 0 to 1"),
        ('[policy]\nresponse_rate_target = "high"', "must be a number"),
        ("[policy]\nresponse_limit_hours = -1", "must be over 0"),
        ("[policy]\nresponse_limit_hours = 1e20", "at most 8784"),
        ("[policy]\nresponse_limit_hours = nan", "must be over 0"),
        ("[policy]\nfirst_response_target_minutes = true", "must be a number"),
        ("[policy]\nwindow_days = 7.5", "whole number from 1 to 366"),
        ("[policy]\nwindow_days = 0", "whole number from 1 to 366"),
        ("[policy]\nsatisfied_min_rating = 9", "whole number from 1 to 5"),
        ('[policy]\nwarning_lookback_weeks = "twelve"', "whole number from 0 to 520"),
        ('[policy]\ndefault_timezone = "Mars/Base"', "IANA time zone"),
        ('[policy]\nmarket_timezones = "SG"', "table of market = time zone"),
        ('[policy.market_timezones]\nSG = "Mars/Base"', "unknown time zones: SG"),
        ("[polcy]\nwindow_days = 7", "one [policy] table"),
        ("policy = 5", "one [policy] table"),
    ],
)
def test_policy_values_of_the_wrong_type_or_range_are_usage_errors(
    tmp_path: Path, body: str, problem: str
) -> None:
    """Taken silently, these would give wrong results or crash later (exit 1)."""
    path = tmp_path / "p.toml"
    path.write_text(body + "\n")
    with pytest.raises(UsageError, match=re.escape(problem)):
        load_policy(path)


def test_market_zone_override_keeps_the_other_markets(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[policy.market_timezones]\nmx = "America/Tijuana"\n')
    policy = load_policy(path)
    assert policy.market_timezones["MX"] == "America/Tijuana"
    assert policy.market_timezones["SG"] == "Asia/Singapore"


@pytest.mark.parametrize(
    ("rate", "frt", "csat", "expected"),
    [
        (0.85, 29.99, 0.70, ("pass", "pass", "pass")),
        (0.8499, 30.0, 0.6999, ("fail", "fail", "fail")),
        (None, None, None, ("not_assessed", "not_assessed", "not_assessed")),
    ],
    ids=["at-targets", "just-below", "null"],
)
def test_status_boundaries(rate, frt, csat, expected) -> None:
    metrics = pd.DataFrame(
        {
            "response_rate_12h": [rate],
            "first_response_minutes_mean": [frt],
            "satisfaction_rate": [csat],
        }
    )
    row = statuses(metrics, Policy()).iloc[0]
    assert tuple(row) == expected


def test_only_a_response_rate_failure_carries_an_action() -> None:
    status = pd.Series(["fail", "fail", "pass", "not_assessed"], index=["a", "b", "c", "d"])
    failed_before = pd.Series({"b": True, "c": True, "d": True})
    assert actions(status, failed_before).tolist() == ["warning", "violation_point", "none", "none"]
