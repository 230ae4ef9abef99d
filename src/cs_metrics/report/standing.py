"""Where a shop stands against the line: its overview group, what is failing, what is at risk,
how many chats from the line it was, and numbers that never contradict their badge."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cs_metrics.enforcement import FAIL, NOT_ASSESSED, VIOLATION_POINT, WARNING, WITHHELD
from cs_metrics.policy import Policy
from cs_metrics.report.format import minutes_text

ACT_NOW, AT_RISK, WITHHELD_GROUP, OTHER_MISSED, FINE, NOT_ASSESSED_GROUP = range(6)
GROUP_TITLES = {
    ACT_NOW: "Act now",
    AT_RISK: "At risk",
    WITHHELD_GROUP: "Withheld",
    OTHER_MISSED: "Other targets missed",
    FINE: "Fine",
    NOT_ASSESSED_GROUP: "Not assessed",
}
GROUP_NOTES = {
    ACT_NOW: "a violation point or a warning this week",
    AT_RISK: "passing, but close to the line, falling, or one failure away from a point",
    WITHHELD_GROUP: "failing, but the data does not cover the week: no action issued",
    OTHER_MISSED: "response rate met; first response or satisfaction missed (no enforcement)",
    FINE: "every target met",
    NOT_ASSESSED_GROUP: "no chat counted this week",
}
GROUP_CSS = {
    ACT_NOW: "vp",
    AT_RISK: "risk",
    WITHHELD_GROUP: "warn",
    OTHER_MISSED: "other",
    FINE: "ok",
    NOT_ASSESSED_GROUP: "na",
}
GROUP_SLUGS = {
    ACT_NOW: "act-now",
    AT_RISK: "at-risk",
    WITHHELD_GROUP: "withheld",
    OTHER_MISSED: "other-missed",
    FINE: "fine",
    NOT_ASSESSED_GROUP: "not-assessed",
}
FALLING_WEEKS = 2
"""A rate that fell week on week this many times in a row puts a passing shop at risk."""
MAX_DECIMALS = 4


def on_time_needed(assessed: int, target: float) -> int:
    """The fewest on-time chats out of `assessed` that pass the target (the float rule of
    enforcement.rate_passes: on_time / assessed >= target)."""
    if assessed <= 0:
        return 0
    k = max(0, min(assessed, math.ceil(target * assessed - 1e-9)))
    while k < assessed and k / assessed < target:
        k += 1
    while k > 0 and (k - 1) / assessed >= target:
        k -= 1
    return k


def chats_from_line(on_time: int, assessed: int, target: float) -> int | None:
    """On-time chats above (+, the margin) or below (-, still needed) the pass line."""
    if assessed <= 0:
        return None
    return on_time - on_time_needed(assessed, target)


def line_text(distance: int | None) -> str:
    """`3 more needed` (on-time chats to pass) / `margin 2` (misses it could have taken) /
    `on the line` (one more miss fails)."""
    if distance is None:
        return "–"
    if distance < 0:
        return f"{-distance} more needed"
    if distance == 0:
        return "on the line"
    return f"margin {distance}"


def exact_text(
    value: float,
    passes: bool,
    holds: Callable[[float], bool],
    show: Callable[[float, int], str],
    scale: float = 1.0,
) -> str:
    """`value` with the fewest decimals (1 up to MAX_DECIMALS) that keep it on its side of the
    line, so the text never contradicts the pass/fail badge; past that, cut toward its side."""
    for decimals in range(1, MAX_DECIMALS + 1):
        shown = round(value * scale, decimals) / scale
        if holds(shown) == passes:
            return show(value, decimals)
    step = 10**MAX_DECIMALS
    cut = math.floor if holds(-math.inf) == passes else math.ceil
    return show(cut(value * scale * step) / step / scale, MAX_DECIMALS)


def rate_text(value: float | None, target: float) -> str:
    """A rate against its target: `84.96%` for 0.84958 under 85 % (never `85.0%` and FAIL)."""
    if value is None or math.isnan(value):
        return "–"
    return exact_text(
        value,
        value >= target,
        lambda v: v >= target,
        lambda v, d: f"{v * 100:.{d}f}%",
        scale=100.0,
    )


def minutes_against(value: float | None, target: float) -> str:
    """A mean first response time against its target (passes strictly below), never
    contradicting its badge: `29.96 min` under a 30-minute target, not `30.0 min`."""
    if value is None or math.isnan(value):
        return "–"
    if value >= 60 and abs(value - target) >= 1:
        return minutes_text(value)
    return exact_text(value, value < target, lambda v: v < target, lambda v, d: f"{v:.{d}f} min")


def falling_weeks(rates: Sequence[float | None]) -> int:
    """How many weeks in a row the rate fell, ending with the last one (gaps stop the count)."""
    count = 0
    values = list(rates)
    for before, after in zip(values[-2::-1], values[::-1], strict=False):
        if before is None or after is None or math.isnan(before) or math.isnan(after):
            break
        if after >= before:
            break
        count += 1
    return count


@dataclass(frozen=True)
class Standing:
    """A shop's place in the overview and the words for it."""

    group: int
    failing: list[str]
    risks: list[str]
    distance: int | None


def failing_metrics(status: dict[str, str], policy: Policy) -> list[str]:
    """The names of the metrics below target, in the report's words."""
    names = {
        "response_rate_12h": f"{policy.limit_label} rate",
        "first_response_minutes_mean": "FRT",
        "satisfaction_rate": "satisfaction",
    }
    return [label for key, label in names.items() if status.get(key) == FAIL]


def joined(names: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def standing(
    action: str,
    status: dict[str, str],
    rate: float | None,
    distance: int | None,
    trend: Sequence[float | None],
    last_failure: str | None,
    policy: Policy,
) -> Standing:
    """The group of a shop (Act now, At risk, Withheld, Other targets missed, Fine, Not
    assessed) and why: what is failing, what puts a passing rate at risk."""
    failing = failing_metrics(status, policy)
    risks: list[str] = []
    if action in (VIOLATION_POINT, WARNING):
        return Standing(ACT_NOW, failing, risks, distance)
    if action == WITHHELD:
        return Standing(WITHHELD_GROUP, failing, risks, distance)
    if rate is not None and rate - policy.response_rate_target < policy.at_risk_margin:
        risks.append(
            f"{policy.limit_label} rate within {policy.at_risk_margin * 100:g} pp of the target"
        )
    fell = falling_weeks(trend)
    if fell >= FALLING_WEEKS:
        risks.append(f"{policy.limit_label} rate fell {fell} weeks in a row")
    if last_failure is not None:
        until = dt.date.fromisoformat(last_failure) + dt.timedelta(
            weeks=policy.warning_lookback_weeks
        )
        risks.append(f"failed on {last_failure}: a failure up to {until} brings a violation point")
    if risks:
        return Standing(AT_RISK, failing, risks, distance)
    if status.get("response_rate_12h") == NOT_ASSESSED:
        return Standing(NOT_ASSESSED_GROUP, failing, risks, distance)
    if failing:
        return Standing(OTHER_MISSED, failing, risks, distance)
    return Standing(FINE, failing, risks, distance)


def action_text(action: str, place: Standing) -> str:
    """The action column: the action and what is failing; never a bare `None` on a failing shop."""
    below = f"{joined(place.failing)} below target" if place.failing else ""
    if action == VIOLATION_POINT:
        return f"1 violation point: {below}"
    if action == WARNING:
        return f"Warning: {below}"
    if action == WITHHELD:
        return f"Withheld: {below}, data short of the week"
    if below:
        return f"{below[0].upper()}{below[1:]} (no enforcement)" + (
            "; at risk" if place.group == AT_RISK else ""
        )
    if place.group == AT_RISK:
        return "No action yet: at risk"
    if place.group == NOT_ASSESSED_GROUP:
        return "Not assessed"
    return "None"


def action_css(action: str, place: Standing) -> str:
    """The badge colour of the action column."""
    if action == VIOLATION_POINT:
        return "vp"
    if action in (WARNING, WITHHELD):
        return "warn"
    return GROUP_CSS[place.group]
