"""Where a shop stands: its overview group by each rule, the chats it was from the line, and
rates shown with enough decimals never to contradict their badge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cs_metrics.enforcement import FAIL, NOT_ASSESSED, PASS, VIOLATION_POINT, WARNING, WITHHELD
from cs_metrics.policy import Policy
from cs_metrics.report import standing as s

POLICY = Policy()
PASSING = {
    "response_rate_12h": PASS,
    "first_response_minutes_mean": PASS,
    "satisfaction_rate": PASS,
}
FLAT = [0.95] * 8


def place(
    action: str = "none",
    status: dict[str, str] | None = None,
    rate: float | None = 0.95,
    trend: list[float | None] | None = None,
    last_failure: str | None = None,
    policy: Policy = POLICY,
) -> s.Standing:
    """The standing of a shop with these facts (defaults: passing everything, flat trend)."""
    return s.standing(action, status or PASSING, rate, 3, trend or FLAT, last_failure, policy)


@pytest.mark.parametrize(
    ("facts", "group"),
    [
        ({"action": VIOLATION_POINT, "rate": 0.5}, s.ACT_NOW),
        ({"action": WARNING, "rate": 0.8}, s.ACT_NOW),
        ({"rate": 0.869}, s.AT_RISK),
        ({"trend": [None] * 5 + [0.99, 0.97, 0.95]}, s.AT_RISK),
        ({"last_failure": "2026-10-05"}, s.AT_RISK),
        ({"action": WITHHELD, "rate": 0.5}, s.WITHHELD_GROUP),
        ({"status": {**PASSING, "satisfaction_rate": FAIL}}, s.OTHER_MISSED),
        ({}, s.FINE),
        ({"rate": 0.87}, s.FINE),
        ({"trend": [None] * 6 + [0.99, 0.95]}, s.FINE),
        ({"trend": [None] * 5 + [0.99, None, 0.95]}, s.FINE),
        (
            {"rate": None, "status": dict.fromkeys(PASSING, NOT_ASSESSED), "trend": [None] * 8},
            s.NOT_ASSESSED_GROUP,
        ),
    ],
    ids=[
        "violation_point_acts_now",
        "warning_acts_now",
        "within_margin_at_risk",
        "falling_two_weeks_at_risk",
        "earlier_failure_in_lookback_at_risk",
        "withheld",
        "satisfaction_missed",
        "fine",
        "exactly_the_margin_above_is_fine",
        "one_fall_is_fine",
        "a_gap_breaks_the_fall",
        "not_assessed",
    ],
)
def test_each_group_rule(facts: dict, group: int) -> None:
    assert place(**facts).group == group


def test_the_margin_comes_from_the_policy() -> None:
    """0.90 is at risk under a 0.06 margin, fine under the default 0.02."""
    assert place(rate=0.90).group == s.FINE
    assert place(rate=0.90, policy=Policy(at_risk_margin=0.06)).group == s.AT_RISK


def test_at_risk_says_why_with_the_policy_numbers() -> None:
    risks = place(rate=0.86, last_failure="2026-10-05").risks
    assert risks == [
        "12-hour rate within 2 pp of the target",
        "failed on 2026-10-05: a failure up to 2026-12-28 brings a violation point",
    ]


@pytest.mark.parametrize(
    ("on_time", "assessed", "target", "distance"),
    [
        (2, 5, 0.85, -3),  # 5 of 5 needed (4/5 = 80%)
        (17, 20, 0.85, 0),  # exactly 85%: on the line
        (85, 100, 0.85, 0),  # 0.85 * 100 is 85.00000000000001 in floats: still 85 needed
        (90, 100, 0.85, 5),
        (0, 1, 0.85, -1),
        (0, 0, 0.85, None),
    ],
)
def test_chats_from_the_line(on_time: int, assessed: int, target: float, distance: int) -> None:
    assert s.chats_from_line(on_time, assessed, target) == distance


@given(st.integers(1, 5000), st.floats(0, 1))
def test_needed_is_the_fewest_that_pass(assessed: int, target: float) -> None:
    """Exactly `on_time_needed` chats pass under the enforcement rule, one fewer does not."""
    k = s.on_time_needed(assessed, target)
    assert k / assessed >= target or k == assessed
    assert k == 0 or (k - 1) / assessed < target


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.84958, "84.96%"),
        (0.849999, "84.9999%"),
        (0.8499999999, "84.9999%"),
        (0.85, "85.0%"),
        (0.85004, "85.0%"),
        (0.853, "85.3%"),
        (0.4, "40.0%"),
        (None, "–"),
    ],
)
def test_rate_text_never_contradicts_the_badge(value: float | None, text: str) -> None:
    assert s.rate_text(value, 0.85) == text


@given(st.floats(0, 1), st.floats(0.01, 0.99))
def test_shown_rate_stays_on_its_side_of_the_target(value: float, target: float) -> None:
    shown = float(s.rate_text(value, target).rstrip("%")) / 100
    assert (round(shown, 8) >= round(target, 8)) == (value >= target) or abs(value - target) < 1e-6


def test_minutes_near_the_target_show_decimals() -> None:
    assert s.minutes_against(29.96, 30) == "29.96 min"
    assert s.minutes_against(30.0, 30) == "30.0 min"
    assert s.minutes_against(12.34, 30) == "12.3 min"


@pytest.mark.parametrize(
    ("action", "status", "text"),
    [
        (
            "none",
            {**PASSING, "first_response_minutes_mean": FAIL, "satisfaction_rate": FAIL},
            "FRT and satisfaction below target (no enforcement)",
        ),
        (WARNING, {**PASSING, "response_rate_12h": FAIL}, "Warning: 12-hour rate below target"),
        ("none", PASSING, "None"),
    ],
)
def test_the_action_names_what_is_failing(action: str, status: dict, text: str) -> None:
    assert s.action_text(action, place(action=action, status=status)) == text
    assert s.action_css(action, place(action=action, status=status)) != "ok" or text == "None"


def test_at_risk_margin_is_checked_and_leaves_the_fingerprint_alone() -> None:
    """A report-only key: out of range is an error naming it; any value keeps the policy's
    fingerprint (re-running a stored week under it is not a policy change)."""
    from cs_metrics.errors import UsageError

    with pytest.raises(UsageError, match="at_risk_margin"):
        Policy.from_dict({"at_risk_margin": 1.5})
    assert Policy(at_risk_margin=0.05).fingerprint() == Policy().fingerprint()
    assert Policy(response_rate_target=0.9).fingerprint() != Policy().fingerprint()
