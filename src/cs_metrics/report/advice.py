"""What the report tells a shop to do, drawn from its week: actions, hours, holidays."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from cs_metrics.enforcement import (
    FAIL,
    NOT_ASSESSED,
    VIOLATION_POINT,
    WARNING,
    WITHHELD,
    latest_failures,
)
from cs_metrics.policy import Policy
from cs_metrics.report.charts import pct
from cs_metrics.report.context import Advice, ChatRow, Findings, ReportSettings, RuleFindings
from cs_metrics.report.format import NOT_ASSESSED_ACTION, as_number, day_label
from cs_metrics.report.standing import minutes_against, rate_text
from cs_metrics.report.tables import local_text

MISSED_ROWS = 15
"""Missed and late chats listed per shop (unanswered newest first, then late longest first)."""
FINDING_ROWS = 15
EXCERPT_CHARS = 140
RULE_BREAKDOWN = 5
"""Agents and auto-reply templates listed per rule (the rest are counted together)."""
TEMPLATE_CHARS = 80
"""Characters of an auto-reply template's excerpt shown next to its count."""
HOT_HOURS_SHARE = 0.6
HOT_HOURS_MAX = 6
"""Hours are named in advice when at most HOT_HOURS_MAX of them hold HOT_HOURS_SHARE of misses."""
MIN_MISSES_FOR_HOURS = 3


def shown_action(shop: dict[str, Any]) -> str:
    """The action column: the stored action, or `not_assessed` when the rate was not assessed."""
    if shop["status"]["response_rate_12h"] == NOT_ASSESSED:
        return NOT_ASSESSED_ACTION
    return str(shop["action"])


def earlier_failures(history: pd.DataFrame, as_of: dt.date, weeks: int) -> pd.Series:
    """Per shop: the latest 12-hour-rate failure counted in the lookback before `as_of` (ISO)."""
    if history.empty:
        return pd.Series(dtype=object)
    return latest_failures(history, as_of, weeks)


def reason(shop: dict[str, Any], policy: Policy, last_failure: str | None) -> str:
    """The one-line reason behind the shop's action."""
    status = shop["status"]
    action = shown_action(shop)
    rate = rate_text(as_number(shop["response_rate_12h"]), policy.response_rate_target)
    target = pct(policy.response_rate_target)
    weeks = policy.warning_lookback_weeks
    if action == VIOLATION_POINT:
        return (
            f"{policy.limit_label} rate {rate}, below the {target} target again: "
            f"it also failed on {last_failure} (within {weeks} weeks)"
        )
    if action == WARNING:
        return (
            f"{policy.limit_label} rate {rate}, below the {target} target; "
            f"first failure in {weeks} weeks"
        )
    if action == WITHHELD:
        return (
            f"{policy.limit_label} rate {rate}, below the {target} target, but the data does "
            "not cover the week: no warning or violation point (withheld)"
        )
    if action == NOT_ASSESSED_ACTION:
        if shop["chats_excluded_holiday_mode"] and not shop["chats_assessed"]:
            return (
                f"No chats assessed: {shop['chats_excluded_holiday_mode']} received in Holiday Mode"
                + (f", {shop['chats_pending']} pending" if shop["chats_pending"] else "")
            )
        if shop["chats_pending"]:
            return f"No chats assessed yet: {shop['chats_pending']} pending at the cut-off"
        return "No chats received this week"
    misses = []
    frt_target = policy.first_response_target_minutes
    if status["first_response_minutes_mean"] == FAIL:
        misses.append(
            "mean first response "
            f"{minutes_against(as_number(shop['first_response_minutes_mean']), frt_target)} "
            f"(target under {policy.first_response_target_minutes:g} min)"
        )
    if status["satisfaction_rate"] == FAIL:
        misses.append(
            f"satisfaction "
            f"{rate_text(as_number(shop['satisfaction_rate']), policy.satisfaction_target)} "
            f"(target {pct(policy.satisfaction_target)})"
        )
    if misses:
        return (
            f"{policy.limit_label} rate met ({rate}); missed: "
            + "; ".join(misses)
            + " (no enforcement)"
        )
    return f"All targets met ({policy.limit_label} rate {rate})"


def hour_ranges(hours: list[int]) -> str:
    """Hours as ranges of local clock time: `22:00-02:59, 13:00-13:59` (wrapping midnight)."""
    chosen = sorted(set(hours))
    runs: list[list[int]] = []
    for h in chosen:
        if runs and h == runs[-1][-1] + 1:
            runs[-1].append(h)
        else:
            runs.append([h])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 23:
        runs[0] = runs.pop() + runs[0]
    return ", ".join(f"{r[0]:02d}:00-{r[-1]:02d}:59" for r in runs)


def hot_hours(missed_by_hour: np.ndarray) -> list[int] | None:
    """The fewest hours (at most HOT_HOURS_MAX) holding HOT_HOURS_SHARE of the misses, or None."""
    total = int(missed_by_hour.sum())
    if total < MIN_MISSES_FOR_HOURS:
        return None
    order = np.argsort(-missed_by_hour, kind="stable")
    covered = np.cumsum(missed_by_hour[order])
    needed = int(np.searchsorted(covered, HOT_HOURS_SHARE * total)) + 1
    return sorted(order[:needed].tolist()) if needed <= HOT_HOURS_MAX else None


def enough_misses(misses: int, assessed: int, settings: ReportSettings) -> bool:
    """Whether a week's misses are enough to advise on (the floor: at least
    `advice_min_misses` chats and `advice_min_miss_share` of the assessed chats)."""
    return misses > 0 and misses >= max(
        settings.advice_min_misses, settings.advice_min_miss_share * assessed
    )


AGENT_LINES = 3


def agent_lines(late_answers: list[dict[str, Any]]) -> list[str]:
    """The agents with the most late answers (at most AGENT_LINES), each with the hours the
    chats were received in, most first: `agent-7: 3 late, received 02:00-02:59 (2), ...`."""
    by_agent: dict[str, list[tuple[int, int]]] = {}
    for r in late_answers:
        by_agent.setdefault(str(r["agent"]), []).append((int(r["hour"]), int(r["late"])))
    ranked = sorted(by_agent.items(), key=lambda kv: (-sum(n for _, n in kv[1]), kv[0]))
    lines = []
    for agent, hours in ranked[:AGENT_LINES]:
        total = sum(n for _, n in hours)
        shown = sorted(hours, key=lambda hn: (-hn[1], hn[0]))[:4]
        lines.append(
            f"{agent}: {total} late, received "
            + ", ".join(f"{h:02d}:00-{h:02d}:59 ({n})" for h, n in shown)
            + (" and other hours" if len(hours) > len(shown) else "")
        )
    return lines


def hour_counts(missed_by_hour: np.ndarray, hours: list[int]) -> list[str]:
    """Each named hour with the chats missed or late in it, most first."""
    ordered = sorted(hours, key=lambda h: (-int(missed_by_hour[h]), h))
    return [
        f"{h:02d}:00-{h:02d}:59: {int(missed_by_hour[h])} chat"
        f"{'s' if missed_by_hour[h] != 1 else ''} missed or late"
        for h in ordered
    ]


def advice_for(
    shop: dict[str, Any],
    policy: Policy,
    as_of: dt.date,
    missed_by_hour: np.ndarray,
    upcoming: list[tuple[dt.date, str]],
    market_known: bool,
    pending: list[ChatRow],
    last_failure: str | None,
    settings: ReportSettings | None = None,
    late_answers: list[dict[str, Any]] | None = None,
) -> list[Advice]:
    """Specific recommendations drawn from the shop's week."""
    settings = settings or ReportSettings()
    out: list[Advice] = []
    weeks = policy.warning_lookback_weeks
    validity = policy.violation_point_validity_days
    action = shown_action(shop)
    horizon = as_of + dt.timedelta(weeks=weeks)
    rate = rate_text(as_number(shop["response_rate_12h"]), policy.response_rate_target)
    if action == WARNING:
        out.append(
            Advice(
                "What the warning means",
                f"The {policy.limit_label.title()} Response Rate was {rate}, under the "
                f"{pct(policy.response_rate_target)} target. A warning carries no point, but a "
                f"second failure within {weeks} weeks (any evaluation up to {horizon}) brings "
                "1 violation point.",
            )
        )
    elif action == VIOLATION_POINT:
        out.append(
            Advice(
                "What the violation point means",
                f"The {policy.limit_label.title()} Response Rate failed again ({rate}; "
                f"earlier failure on {last_failure}), so the shop receives 1 violation point, "
                f"active for {validity} days (until {as_of + dt.timedelta(days=validity)}). "
                f"It now holds {shop.get('violation_points_active') or 0} active point(s). "
                f"Every further failing week up to {horizon} brings another point.",
            )
        )
    elif last_failure is not None and action == "none":
        until = dt.date.fromisoformat(last_failure) + dt.timedelta(weeks=weeks)
        out.append(
            Advice(
                "Still on notice",
                f"The rate passed this week, but the failure on {last_failure} still counts: "
                f"a failure in any evaluation up to {until} brings 1 violation point.",
            )
        )
    total = int(missed_by_hour.sum())
    enough = enough_misses(total, int(shop["chats_assessed"]), settings)
    hours = hot_hours(missed_by_hour) if enough else None
    if hours is None and enough:
        out.append(
            Advice(
                "Misses are spread over the day",
                f"The {int(missed_by_hour.sum())} missed or late chats are not bunched in a few "
                "hours (see the hour chart): answer faster throughout the day, or add an "
                "auto-reply, which counts as a response under the guidelines.",
            )
        )
    if hours is not None:
        share = int(missed_by_hour[hours].sum())
        out.append(
            Advice(
                "Cover the hours where chats are missed",
                f"{share} of {total} missed or late chats were received "
                f"between {hour_ranges(hours)} ({shop['timezone']}). Put someone on these hours "
                "or set up an auto-reply: under the guidelines an auto-reply or FAQ answer "
                "counts as a response.",
                hour_counts(missed_by_hour, hours),
            )
        )
    agents = agent_lines(late_answers or [])
    if enough and agents:
        out.append(
            Advice(
                "Who answered late",
                "The agents with the most chats answered after the "
                f"{policy.limit_label} limit, and the local hours those chats came in "
                "(unanswered chats have no agent: see the hour chart):",
                agents,
            )
        )
    if upcoming:
        out.append(
            Advice(
                "Public holidays in the next 14 days",
                "Turn on Holiday Mode for days the shop is closed, or plan cover: the guidelines "
                "count public holidays like any other day.",
                [f"{day_label(d)} {d.year}: {name}" for d, name in upcoming],
            )
        )
    elif not market_known:
        out.append(
            Advice(
                "Public holidays unknown",
                "The shop has no known market, so upcoming public holidays cannot be listed. "
                "Add its market to the shops table.",
            )
        )
    if pending:
        out.append(
            Advice(
                "Chats that can still be answered in time",
                f"{len(pending)} chat(s) had no reply at the cut-off but their "
                f"{policy.limit_label} deadline had not passed. "
                "Answer them before the deadline (local time):",
                [
                    f"conversation {c.conversation_id}: "
                    + (c.clock_left or f"reply by {c.deadline}")
                    for c in pending[:MISSED_ROWS]
                ],
            )
        )
    if shop["status"]["satisfaction_rate"] == FAIL:
        out.append(
            Advice(
                "Low satisfaction",
                f"{shop['ratings'] - shop['ratings_satisfied']} of {shop['ratings']} ratings were "
                f"below {policy.satisfied_min_rating}. Read those conversations (listed below) "
                "for common causes.",
            )
        )
    return out


def findings_for(rows: pd.DataFrame, zone: str) -> Findings:
    """Counts by category and agent, and the first findings with shortened excerpts."""
    by_category = rows.groupby("category").size().sort_values(ascending=False, kind="stable")
    agents = rows["sender_id"].astype(object).where(rows["sender_id"].notna(), "(unknown)")
    auto = rows["from_auto_reply"].astype(str).str.lower().isin(["true", "1"])
    agents = agents.where(~auto, "auto-reply")
    by_agent = agents.groupby(agents).size().sort_values(ascending=False, kind="stable")
    shown = rows.sort_values("sent_at", kind="stable").head(FINDING_ROWS)
    times = local_text(shown["sent_at"], pd.Series(zone, index=shown.index))
    excerpt = shown["excerpt"].astype(object).where(shown["excerpt"].notna(), "").astype(str)
    excerpt = excerpt.where(
        excerpt.str.len() <= EXCERPT_CHARS, excerpt.str.slice(0, EXCERPT_CHARS - 1) + "…"
    )
    listed = pd.DataFrame(
        {
            "sent": times,
            "conversation_id": shown["conversation_id"].astype(str),
            "agent": agents.loc[shown.index].astype(str),
            "category": shown["category"].astype(str),
            "rule": shown["rule_id"].astype(str)
            + shown["section"].astype(object).map(lambda s: "" if pd.isna(s) else f" (§{s})"),
            "excerpt": excerpt,
        }
    )
    return Findings(
        total=len(rows),
        by_category=[(str(k), int(v)) for k, v in by_category.items()],
        by_agent=[(str(k), int(v)) for k, v in by_agent.items()],
        rows=listed.to_dict(orient="records"),
        more=max(len(rows) - FINDING_ROWS, 0),
        by_rule=findings_by_rule(rows, agents, auto),
    )


def _template_key(excerpt: pd.Series) -> pd.Series:
    """One key per auto-reply template: the excerpt in NFKC, lower case, white space collapsed.

    The scan cuts an excerpt the same way from the same text and rule, so every message of one
    template gives the same excerpt for a rule.
    """
    text = excerpt.astype(object).where(excerpt.notna(), "").astype(str)
    return text.str.normalize("NFKC").str.lower().str.replace(r"\s+", " ", regex=True).str.strip()


def _top(
    counts: pd.DataFrame, keys: list[str]
) -> tuple[dict[str, list[tuple[str, int]]], dict[str, int]]:
    """Per rule, its RULE_BREAKDOWN largest (name, n) rows and the findings of the others.

    `counts` has columns rule, name, n; `keys` is every rule id."""
    ordered = counts.sort_values(
        ["rule", "n", "name"], ascending=[True, False, True], kind="stable"
    )
    shown = ordered.groupby("rule", sort=False).cumcount() < RULE_BREAKDOWN
    listed = ordered.loc[shown]
    rest = ordered.loc[~shown].groupby("rule")["n"].sum()
    pairs = {
        str(rule): [(str(name), int(n)) for name, n in zip(g["name"], g["n"], strict=True)]
        for rule, g in listed.groupby("rule", sort=False)
    }
    return (
        {k: pairs.get(k, []) for k in keys},
        {k: int(rest.get(k, 0)) for k in keys},
    )


def findings_by_rule(rows: pd.DataFrame, agents: pd.Series, auto: pd.Series) -> list[RuleFindings]:
    """Per rule (most findings first): its category, section and count, the agents whose own
    messages broke it, and the auto-reply templates that did (identical normalised text is
    one template), so that one bad auto-reply shows as one line with its count."""
    if not len(rows):
        return []
    excerpt = rows["excerpt"].astype(object).where(rows["excerpt"].notna(), "").astype(str)
    frame = pd.DataFrame(
        {
            "rule": rows["rule_id"].astype(str),
            "category": rows["category"].astype(str),
            "section": rows["section"]
            .astype(object)
            .where(rows["section"].notna(), "")
            .astype(str),
            "auto": auto.to_numpy(dtype=bool),
            "agent": agents.astype(str),
            "template": _template_key(rows["excerpt"]),
            "excerpt": excerpt.where(
                excerpt.str.len() <= TEMPLATE_CHARS,
                excerpt.str.slice(0, TEMPLATE_CHARS - 1).str.rstrip() + "…",
            ),
        },
        index=rows.index,
    )
    per_rule = (
        frame.groupby("rule", sort=False)
        .agg(category=("category", "first"), section=("section", "first"), n=("rule", "size"))
        .reset_index()
        .sort_values(["n", "rule"], ascending=[False, True], kind="stable")
    )
    keys = per_rule["rule"].tolist()
    people = frame.loc[~frame["auto"]].groupby(["rule", "agent"]).size().rename("n").reset_index()
    templates = (
        frame.loc[frame["auto"]]
        .groupby(["rule", "template"])
        .agg(name=("excerpt", "first"), n=("rule", "size"))
        .reset_index()
    )
    by_agent, agents_more = _top(people.rename(columns={"agent": "name"}), keys)
    by_template, templates_more = _top(templates[["rule", "name", "n"]], keys)
    return [
        RuleFindings(
            rule_id=rule,
            category=category,
            section=section,
            count=int(n),
            by_agent=by_agent[rule],
            agents_more=agents_more[rule],
            templates=by_template[rule],
            templates_more=templates_more[rule],
        )
        for rule, category, section, n in zip(
            per_rule["rule"], per_rule["category"], per_rule["section"], per_rule["n"], strict=True
        )
    ]
