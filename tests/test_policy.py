"""Policy as data: guideline defaults, TOML files, statuses and actions (SPEC 6)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cs_metrics.errors import UsageError
from cs_metrics.policy import Policy, actions, load_policy, statuses

ROOT = Path(__file__).resolve().parents[1]


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
