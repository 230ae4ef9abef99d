"""The overview of the report: one row per shop with its standing, its next step and its
trend, ordered into the action list, and the counts per market."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from cs_metrics.enforcement import FAIL, PASS, VIOLATION_POINT
from cs_metrics.policy import Policy
from cs_metrics.report.advice import enough_misses, hot_hours, hour_ranges, reason, shown_action
from cs_metrics.report.charts import sparkline
from cs_metrics.report.context import MarketRow, Metric, OverviewRow, ReportSettings
from cs_metrics.report.format import as_number, minutes_text
from cs_metrics.report.standing import (
    ACT_NOW,
    AT_RISK,
    FALLING_WEEKS,
    GROUP_NOTES,
    GROUP_TITLES,
    NOT_ASSESSED_GROUP,
    OTHER_MISSED,
    WITHHELD_GROUP,
    Standing,
    action_css,
    action_text,
    chats_from_line,
    line_text,
    minutes_against,
    rate_text,
    standing,
)
from cs_metrics.report.tables import TREND_WEEKS


def metric(value: Any, status: str, text: str) -> Metric:
    """A metric with the CSS class of its status and its text."""
    return Metric(as_number(value), status, {PASS: "pass", FAIL: "fail"}.get(status, "na"), text)


def order_key(row: OverviewRow) -> tuple[Any, ...]:
    """Overview order: group; in Act now the violation points first; then how far below (or
    how close to) the line, in percentage points of the response rate; then the shop id."""
    gap = row.rate.value
    return (
        row.group,
        0 if row.action == VIOLATION_POINT else 1,
        gap is None,
        gap if gap is not None else 0.0,
        row.shop_id,
    )


def next_step(
    shop: dict[str, Any],
    place: Standing,
    policy: Policy,
    missed_by_hour: np.ndarray,
    last_failure: str | None,
    settings: ReportSettings,
) -> str:
    """The one thing to do next for a shop, from its group and its week (hours named only
    above the advice floor)."""
    total = int(missed_by_hour.sum())
    enough = enough_misses(total, int(shop["chats_assessed"]), settings)
    hours = hot_hours(missed_by_hour) if enough else None
    where = ""
    if hours is not None:
        where = (
            f"cover {hour_ranges(hours)} local time "
            f"({int(missed_by_hour[hours].sum())} of {int(missed_by_hour.sum())} misses)"
        )
    if place.group == ACT_NOW:
        need = -(place.distance or 0)
        more = f"{need} more chat{'s' if need != 1 else ''} on time would have passed"
        if where:
            return f"{where[0].upper()}{where[1:]}: {more}"
        return f"{more[0].upper()}{more[1:]}" + (
            "; the misses are spread over the day" if enough else ""
        )
    if place.group == WITHHELD_GROUP:
        return "Get a complete export of the week and evaluate it again"
    if place.group == AT_RISK:
        if last_failure is not None and place.risks[-1].startswith("failed on"):
            until = dt.date.fromisoformat(last_failure) + dt.timedelta(
                weeks=policy.warning_lookback_weeks
            )
            return f"Pass every week up to {until}: one more failure brings a violation point"
        if place.distance is not None and place.distance <= 0:
            return "One more late chat fails the target" + (f": {where}" if where else "")
        if place.distance is not None:
            head = f"Only {place.distance} more late chat{'s' if place.distance != 1 else ''}"
            return f"{head} would have failed" + (f": {where}" if where else "")
        return "Find why the rate keeps falling"
    if place.group == OTHER_MISSED:
        if shop["status"]["first_response_minutes_mean"] == FAIL:
            return (
                f"Bring the mean first response under {policy.first_response_target_minutes:g} "
                f"min (now {minutes_text(as_number(shop['first_response_minutes_mean']))})"
            )
        low = int(shop["ratings"]) - int(shop["ratings_satisfied"])
        return f"Read the {low} low rating{'s' if low != 1 else ''} for common causes"
    if place.group == NOT_ASSESSED_GROUP:
        return "Check the shop's export: no chat counted"
    return "Nothing to do"


def overview_row(
    shop: dict[str, Any],
    policy: Policy,
    trend: np.ndarray | None,
    previous: float | None,
    last_failure: str | None,
    trend_labels: list[str],
    missed_by_hour: np.ndarray,
    link: str,
    anchor: str,
    settings: ReportSettings,
) -> OverviewRow:
    """One row of the overview from the shop's metrics.json entry and its history."""
    rate = as_number(shop["response_rate_12h"])
    change = rate - previous if rate is not None and previous is not None else None
    rates: list[float | None] = list(trend) if trend is not None else [None] * TREND_WEEKS
    if trend is None and rate is not None:
        rates[-1] = rate
    rates = [None if v is None or np.isnan(v) else float(v) for v in rates]
    action = shown_action(shop)
    distance = chats_from_line(
        int(shop["chats_responded_12h"]), int(shop["chats_assessed"]), policy.response_rate_target
    )
    place = standing(action, shop["status"], rate, distance, rates, last_failure, policy)
    frt = as_number(shop["first_response_minutes_mean"])
    return OverviewRow(
        shop_id=shop["shop_id"],
        name=shop.get("name") or shop["shop_id"],
        market=(shop.get("market") or "–"),
        anchor=anchor,
        rate=metric(
            rate,
            shop["status"]["response_rate_12h"],
            rate_text(rate, policy.response_rate_target),
        ),
        frt=metric(
            frt,
            shop["status"]["first_response_minutes_mean"],
            minutes_against(frt, policy.first_response_target_minutes),
        ),
        csat=metric(
            shop["satisfaction_rate"],
            shop["status"]["satisfaction_rate"],
            rate_text(as_number(shop["satisfaction_rate"]), policy.satisfaction_target),
        ),
        action=action,
        action_text=action_text(action, place),
        action_css=action_css(action, place),
        reason=reason(shop, policy, last_failure),
        risks=place.risks,
        distance=distance,
        line=line_text(distance),
        next_step=next_step(shop, place, policy, missed_by_hour, last_failure, settings),
        group=place.group,
        link=link,
        change=change,
        change_css="" if change is None else ("up" if change > 0 else "down" if change < 0 else ""),
        trend=sparkline(
            rates, policy.response_rate_target, trend_labels, f"{policy.limit_label} rate"
        ),
        points=int(shop.get("violation_points_active") or 0),
        chats_assessed=int(shop["chats_assessed"]),
    )


def group_note(group: int, policy: Policy) -> str:
    """What puts a shop in an overview group, with the policy's numbers."""
    if group == AT_RISK:
        return (
            f"{policy.limit_label} rate passing by less than {policy.at_risk_margin * 100:g} pp, "
            f"falling {FALLING_WEEKS} or more weeks in a row, or a failure in the last "
            f"{policy.warning_lookback_weeks} weeks: one more failure brings a violation point"
        )
    return GROUP_NOTES[group]


def market_rows(rows: list[OverviewRow]) -> list[MarketRow]:
    """Shops per market and overview group, markets by name."""
    table: dict[str, list[int]] = {}
    for row in rows:
        table.setdefault(row.market, [0] * len(GROUP_TITLES))[row.group] += 1
    return [MarketRow(m, counts, sum(counts)) for m, counts in sorted(table.items())]
