"""The Monday HTML report: a typed context built from WeekResults, rendered with Jinja2.

All aggregation is vectorised pandas over the week's chats of every shop at once; the
loops below only walk shops and the few rows each section shows. Templates receive one
`ReportContext` and hold loops and formatting (named filters), nothing else. The only
trusted HTML is the SVG built here from numbers, wrapped in `Markup`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import holidays
import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from cs_metrics import metrics, output
from cs_metrics.charts import WEEKDAYS, bar, heatmap, is_nan, pct, sparkline, split_bar
from cs_metrics.chats import EXCLUDED, LATE, ON_TIME, PENDING, UNRESPONDED
from cs_metrics.policy import FAIL, NOT_ASSESSED, PASS, VIOLATION_POINT, WARNING

if TYPE_CHECKING:
    from cs_metrics.weekly import WeekResults

MISSED_ROWS = 15
"""Missed and late chats listed per shop (unanswered newest first, then late longest first)."""
LOW_RATING_ROWS = 10
FINDING_ROWS = 15
EXCERPT_CHARS = 140
TREND_WEEKS = 8
UPCOMING_HOLIDAY_DAYS = 14
OPEN_SECTIONS_UP_TO = 12
"""With this many shops or fewer, every shop's details start open."""
HOT_HOURS_SHARE = 0.6
HOT_HOURS_MAX = 6
"""Hours are named in advice when at most HOT_HOURS_MAX of them hold HOT_HOURS_SHARE of misses."""
MIN_MISSES_FOR_HOURS = 3
HIST_BINS = (-math.inf, 5.0, 30.0, 60.0, 240.0, 720.0, math.inf)
HIST_LABELS = ("up to 5 min", "5-30 min", "30 min-1 h", "1-4 h", "4-12 h", "over 12 h")
NOT_ASSESSED_ACTION = "not_assessed"
ACTION_RANK = {VIOLATION_POINT: 0, WARNING: 1, "none": 2, NOT_ASSESSED_ACTION: 3}


# ----------------------------------------------------------------------------- context types


@dataclass(frozen=True)
class Metric:
    """One metric of one shop: its value, status and the CSS class that colours it."""

    value: float | None
    status: str
    css: str


@dataclass(frozen=True)
class OverviewRow:
    """One shop in the overview table."""

    shop_id: str
    name: str
    market: str
    anchor: str
    rate: Metric
    frt: Metric
    csat: Metric
    action: str
    action_css: str
    reason: str
    change: float | None
    change_css: str
    trend: Markup
    points: int
    chats_assessed: int


@dataclass(frozen=True)
class OverviewGroup:
    """A block of overview rows with the same standing (violation point, warning, ...)."""

    title: str
    css: str
    rows: list[OverviewRow]


@dataclass(frozen=True)
class DayRow:
    """One local day of a shop's week."""

    day: dt.date
    weekend: bool
    holiday: str
    chats: int
    assessed: int
    on_time: int
    late: int
    missed: int
    pending: int
    excluded: int
    rate: float | None
    rate_css: str


@dataclass(frozen=True)
class HistBin:
    """One bar of the first-response-time histogram."""

    label: str
    count: int
    share: float
    bar: Markup


@dataclass(frozen=True)
class AgentRow:
    """Chats answered by one agent (or by auto-reply) in the week."""

    agent: str
    auto_reply: bool
    answered: int
    median: float | None
    p90: float | None
    late: int


@dataclass(frozen=True)
class ChatRow:
    """A missed or late chat, or a pending one."""

    conversation_id: str
    buyer: str
    received: str
    status: str
    waited: float | None
    responded: str
    deadline: str


@dataclass(frozen=True)
class RatingRow:
    """A low rating counted in the week."""

    conversation_id: str
    rating: int
    rated: str


@dataclass(frozen=True)
class PeriodRow:
    """A Holiday Mode period that touched the week, in local time."""

    start: str
    end: str


@dataclass(frozen=True)
class Advice:
    """One recommendation: a headline, the specific text, optional detail lines."""

    title: str
    text: str
    items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Findings:
    """Compliance-scan findings of one shop: counts and the first findings."""

    total: int
    by_category: list[tuple[str, int]]
    by_agent: list[tuple[str, int]]
    rows: list[dict[str, str]]
    more: int


@dataclass(frozen=True)
class ShopSection:
    """Everything the per-shop detail section shows."""

    row: OverviewRow
    timezone: str
    tz_label: str
    counts: dict[str, int]
    frt_median: float | None
    frt_p90: float | None
    cutoff_local: str
    days: list[DayRow]
    holiday_note: str
    heatmap: Markup
    histogram: list[HistBin]
    responded: int
    auto_replied: int
    auto_share: float | None
    person_replied: int
    responder_bar: Markup
    agents: list[AgentRow]
    missed: list[ChatRow]
    missed_more: int
    low_ratings: list[RatingRow]
    low_ratings_more: int
    periods: list[PeriodRow]
    advice: list[Advice]
    findings: Findings | None
    open: bool


@dataclass(frozen=True)
class ReportContext:
    """The one object the templates receive."""

    title: str
    as_of: dt.date
    first_day: dt.date
    last_day: dt.date
    cutoff: str
    generated_at: str
    summary: dict[str, int]
    summary_css: dict[str, str]
    groups: list[OverviewGroup]
    shops: list[ShopSection]
    policy: list[tuple[str, str]]
    input_line: str
    rate_target: float
    frt_target: float
    csat_target: float


# ----------------------------------------------------------------------------- formatting


def minutes_text(value: float | None) -> str:
    """Minutes for people: `4.2 min`, `3 h 05 min`, `2 d 4 h`; an en dash when null."""
    if value is None or is_nan(value):
        return "–"
    if value < 60:
        return f"{value:.1f} min"
    whole = round(value)
    if whole < 24 * 60:
        return f"{whole // 60} h {whole % 60:02d} min"
    return f"{whole // 1440} d {(whole % 1440) // 60} h"


def points_change(value: float | None) -> str:
    """A change of a rate in percentage points, signed; an en dash when unknown."""
    if value is None or is_nan(value):
        return "–"
    if abs(value) < 0.0005:
        return "±0.0 pp"
    return f"{'+' if value > 0 else '−'}{abs(value) * 100:.1f} pp"


def count(value: int) -> str:
    """A whole number with thousands separators."""
    return f"{int(value):,}"


def raw(value: float | None) -> str:
    """A number for a data attribute (full precision, as in metrics.json); empty when null."""
    return "" if value is None or is_nan(value) else repr(value)


def day_label(value: dt.date) -> str:
    """`Mon 16 Nov`."""
    return f"{WEEKDAYS[value.weekday()]} {value.day} {value:%b}"


STATUS_LABELS = {PASS: "pass", FAIL: "fail", NOT_ASSESSED: "not assessed"}
ACTION_LABELS = {
    VIOLATION_POINT: "1 violation point",
    WARNING: "Warning",
    "none": "None",
    NOT_ASSESSED_ACTION: "Not assessed",
}
CHAT_STATUS_LABELS = {
    UNRESPONDED: "no reply",
    LATE: "late",
    PENDING: "pending",
    ON_TIME: "on time",
    EXCLUDED: "Holiday Mode",
}


def status_label(value: str) -> str:
    """pass / fail / not assessed."""
    return STATUS_LABELS.get(value, value)


def action_label(value: str) -> str:
    """The recommended action as shown to people."""
    return ACTION_LABELS.get(value, value)


def chat_status_label(value: str) -> str:
    """A chat status as shown to people."""
    return CHAT_STATUS_LABELS.get(value, value)


FILTERS = {
    "pct": pct,
    "raw": raw,
    "minutes": minutes_text,
    "pp": points_change,
    "count": count,
    "day": day_label,
    "status_label": status_label,
    "action_label": action_label,
    "chat_status": chat_status_label,
}


def _num(value: Any) -> float | None:
    """A plain float, or None for null/NaN."""
    if value is None or value is pd.NA or pd.isna(value):
        return None
    return float(value)


# ----------------------------------------------------------------------------- environment


@cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: package templates, autoescape, strict undefined, filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cs_metrics", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def render_report(results: WeekResults, pseudonym_key: bytes) -> str:
    """The full HTML of the Monday report for one evaluated week."""
    context = build_context(results, pseudonym_key)
    return environment().get_template("report.html").render(ctx=context)


def report_for(out: Path, as_of: dt.date, history_path: Path) -> Path:
    """Re-render OUT/<as-of>/report.html from the stored week and history; returns its path."""
    from cs_metrics import history, weekly

    results = weekly.load_week(out, as_of, history_path)
    path = weekly.week_folder(out, as_of) / "report.html"
    output.write_atomic(path, render_report(results, history.pseudonym_key(history_path)))
    return path


# ----------------------------------------------------------------------------- derived tables


def pseudonym(key: bytes, shop_id: str, buyer_id: Any) -> str:
    """A buyer id as a keyed hash (HMAC-SHA256 over shop and buyer), stable per key."""
    if buyer_id is None or pd.isna(buyer_id):
        return "–"
    message = f"{shop_id}\x1f{buyer_id}".encode()
    return "buyer-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:10]


def anchor(shop_id: str) -> str:
    """A stable HTML id for a shop's section, whatever characters its id holds."""
    return "shop-" + hashlib.sha256(shop_id.encode()).hexdigest()[:12]


def local_parts(instants: pd.Series, zones: pd.Series) -> pd.DataFrame:
    """Per row: the local calendar day (naive midnight) and hour in the row's zone."""
    day = pd.Series(pd.NaT, index=instants.index, dtype="datetime64[us]")
    hour = pd.Series(-1, index=instants.index, dtype="int64")
    for zone, idx in zones.groupby(zones.astype(str), sort=False).groups.items():
        local = instants.loc[idx].dt.tz_convert(str(zone)).dt.tz_localize(None)
        day.loc[idx] = local.dt.normalize()
        hour.loc[idx] = local.dt.hour.fillna(-1).astype("int64")
    return pd.DataFrame({"day": day, "hour": hour})


def local_text(instants: pd.Series, zones: pd.Series) -> pd.Series:
    """Instants as `Tue 17 Nov 14:05` in each row's zone; an en dash when missing."""
    text = pd.Series("–", index=instants.index, dtype=object)
    for zone, idx in zones.groupby(zones.astype(str), sort=False).groups.items():
        local = instants.loc[idx].dt.tz_convert(str(zone))
        text.loc[idx] = local.dt.strftime("%a %d %b %H:%M").where(local.notna(), "–")
    return text


def prepared_chats(chats: pd.DataFrame, cutoff: pd.Timestamp | None) -> pd.DataFrame:
    """The week's chats with local day and hour, a `miss` flag and how long the buyer waited."""
    if chats.empty:
        # A quiet week: the same columns as below, no rows.
        derived = ["day", "hour", "miss", "waited", "late_first", "order"]
        return pd.DataFrame(columns=[*output.CHAT_COLUMNS, *derived])
    c = chats.copy()
    c["status"] = c["status"].astype(str)
    c = c.join(local_parts(c["received_at_utc"], c["timezone"]))
    c["miss"] = c["status"].isin([LATE, UNRESPONDED])
    waited_open = (
        (cutoff - c["received_at_utc"]).dt.total_seconds() / 60
        if cutoff is not None
        else pd.Series(np.nan, index=c.index)
    )
    c["waited"] = c["response_minutes"].astype(float).where(c["status"] != UNRESPONDED, waited_open)
    # Listing order of misses: unanswered chats newest first (the buyer may still be
    # waiting), then late chats longest wait first.
    c["late_first"] = c["status"] == LATE
    epoch = pd.Timestamp(0, tz="UTC").as_unit("us")
    received_minutes = (c["received_at_utc"] - epoch).dt.total_seconds() / 60
    c["order"] = received_minutes.where(c["status"] == UNRESPONDED, c["waited"])
    return c


def first_rows(
    frame: pd.DataFrame, by: list[str], ascending: list[bool], n: int | None
) -> pd.DataFrame:
    """Each shop's first `n` rows (all when None) in the given order, shops in id order."""
    ordered = frame.sort_values(["shop_id", *by], ascending=[True, *ascending], kind="stable")
    return ordered if n is None else ordered.groupby("shop_id", sort=False).head(n)


def rows_by_shop(frame: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """A frame's rows as dicts, listed per shop (order kept)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in frame.to_dict(orient="records"):
        out.setdefault(record["shop_id"], []).append(record)
    return out


def day_table(chats: pd.DataFrame, shop_ids: pd.Index, days: list[dt.date]) -> pd.DataFrame:
    """Chats per shop and local day by status, with `chats`, `assessed` and `rate` columns."""
    statuses = [ON_TIME, LATE, UNRESPONDED, PENDING, EXCLUDED]
    full = pd.MultiIndex.from_product(
        [shop_ids, pd.to_datetime(days).as_unit("us")], names=["shop_id", "day"]
    )
    if chats.empty:
        table = pd.DataFrame(0, index=full, columns=statuses)
    else:
        table = pd.crosstab([chats["shop_id"], chats["day"]], chats["status"])
        table = table.reindex(index=full, columns=statuses).fillna(0).astype("int64")
    table["chats"] = table[statuses].sum(axis=1)
    table["assessed"] = table[[ON_TIME, LATE, UNRESPONDED]].sum(axis=1)
    table["rate"] = (table[ON_TIME] / table["assessed"]).where(table["assessed"] > 0)
    return table


def heat_counts(chats: pd.DataFrame) -> pd.DataFrame:
    """Chats received and missed (late or unanswered) per shop, local day and hour."""
    if chats.empty:
        return pd.DataFrame(columns=["shop_id", "day", "hour", "received", "missed"])
    return (
        chats.groupby(["shop_id", "day", "hour"])
        .agg(received=("status", "size"), missed=("miss", "sum"))
        .reset_index()
    )


def heat_grids(
    heat: pd.DataFrame, shop_ids: pd.Index, days: list[dt.date]
) -> tuple[np.ndarray, np.ndarray]:
    """Received and missed counts as shop x day x hour arrays."""
    shape = (len(shop_ids), len(days), 24)
    received, missed = np.zeros(shape, dtype="int64"), np.zeros(shape, dtype="int64")
    if len(heat):
        s = shop_ids.get_indexer(heat["shop_id"])
        d = ((heat["day"] - pd.Timestamp(days[0])) // pd.Timedelta(days=1)).to_numpy("int64")
        h = heat["hour"].to_numpy("int64")
        ok = (s >= 0) & (d >= 0) & (d < len(days)) & (h >= 0)
        received[s[ok], d[ok], h[ok]] = heat["received"].to_numpy("int64")[ok]
        missed[s[ok], d[ok], h[ok]] = heat["missed"].to_numpy("int64")[ok]
    return received, missed


def histogram_counts(chats: pd.DataFrame, shop_ids: pd.Index) -> pd.DataFrame:
    """Responded chats per shop and first-response-time bin, plus `never` (unanswered)."""
    columns = [*HIST_LABELS, "never"]
    if chats.empty:
        return pd.DataFrame(0, index=shop_ids, columns=columns)
    responded = chats.loc[chats["status"].isin([ON_TIME, LATE])]
    bins = pd.cut(
        responded["response_minutes"].astype(float), bins=HIST_BINS, labels=list(HIST_LABELS)
    )
    table = pd.crosstab(responded["shop_id"], bins)
    table = table.reindex(index=shop_ids, columns=list(HIST_LABELS)).fillna(0).astype("int64")
    never = chats.loc[chats["status"] == UNRESPONDED].groupby("shop_id").size()
    table["never"] = never.reindex(shop_ids).fillna(0).astype("int64")
    return table


def agent_table(chats: pd.DataFrame) -> pd.DataFrame:
    """Per shop and responder (auto-reply as one): answered, median and p90 minutes, late."""
    columns = ["shop_id", "auto", "agent", "answered", "median", "p90", "late"]
    responded = chats.loc[chats["status"].isin([ON_TIME, LATE])] if len(chats) else chats
    if responded.empty:
        return pd.DataFrame(columns=columns)
    auto = responded["responder_role"] == "auto_reply"
    keys = pd.DataFrame(
        {
            "shop_id": responded["shop_id"],
            "auto": auto,
            "agent": responded["responder_id"]
            .astype(object)
            .where(responded["responder_id"].notna() & ~auto, ""),
        }
    )
    minutes = (
        responded["response_minutes"]
        .astype(float)
        .groupby([keys["shop_id"], keys["auto"], keys["agent"]])
    )
    late = (responded["status"] == LATE).groupby([keys["shop_id"], keys["auto"], keys["agent"]])
    return pd.DataFrame(
        {
            "answered": minutes.size(),
            "median": minutes.median(),
            "p90": minutes.quantile(0.9),
            "late": late.sum(),
        }
    ).reset_index()


def trend_table(history: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The 12-hour rate per shop for the last TREND_WEEKS Mondays up to `as_of` (columns)."""
    mondays = [(as_of - dt.timedelta(weeks=k)).isoformat() for k in range(TREND_WEEKS - 1, -1, -1)]
    if history.empty:
        return pd.DataFrame(columns=mondays, dtype=float)
    rows = history.loc[history["as_of"].isin(mondays)]
    table = rows.pivot_table(
        index="shop_id", columns="as_of", values="response_rate_12h", aggfunc="last", dropna=False
    )
    return table.reindex(columns=mondays).astype(float)


# ----------------------------------------------------------------------------- holidays


@cache
def market_holidays(market: str, years: tuple[int, ...]) -> dict[dt.date, str] | None:
    """Public holidays of a market (ISO code) in some years; None when `holidays` lacks it."""
    try:
        return dict(holidays.country_holidays(market.upper(), years=list(years)).items())
    except NotImplementedError:
        return None


# ----------------------------------------------------------------------------- the context


def metric(value: Any, status: str) -> Metric:
    """A metric with the CSS class of its status."""
    return Metric(_num(value), status, {PASS: "pass", FAIL: "fail"}.get(status, "na"))


def shown_action(shop: dict[str, Any]) -> str:
    """The action column: the stored action, or `not_assessed` when the rate was not assessed."""
    if shop["status"]["response_rate_12h"] == NOT_ASSESSED:
        return NOT_ASSESSED_ACTION
    return str(shop["action"])


def earlier_failures(history: pd.DataFrame, as_of: dt.date, weeks: int) -> pd.Series:
    """Per shop: the latest 12-hour-rate failure in the lookback before `as_of` (ISO date)."""
    if history.empty:
        return pd.Series(dtype=object)
    earliest = (as_of - dt.timedelta(weeks=weeks)).isoformat()
    rows = history.loc[
        (history["as_of"] >= earliest)
        & (history["as_of"] < as_of.isoformat())
        & (history["status_response_rate_12h"] == FAIL)
    ]
    return rows.groupby("shop_id")["as_of"].max()


def reason(shop: dict[str, Any], policy: dict[str, Any], last_failure: str | None) -> str:
    """The one-line reason behind the shop's action."""
    status = shop["status"]
    action = shown_action(shop)
    rate, target = pct(_num(shop["response_rate_12h"])), pct(policy["response_rate_target"])
    weeks = policy["warning_lookback_weeks"]
    if action == VIOLATION_POINT:
        return (
            f"12-hour rate {rate}, below the {target} target again: "
            f"it also failed on {last_failure} (within {weeks} weeks)"
        )
    if action == WARNING:
        return f"12-hour rate {rate}, below the {target} target; first failure in {weeks} weeks"
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
    if status["first_response_minutes_mean"] == FAIL:
        misses.append(
            f"mean first response {minutes_text(_num(shop['first_response_minutes_mean']))} "
            f"(target under {policy['first_response_target_minutes']:g} min)"
        )
    if status["satisfaction_rate"] == FAIL:
        misses.append(
            f"satisfaction {pct(_num(shop['satisfaction_rate']))} "
            f"(target {pct(policy['satisfaction_target'])})"
        )
    if misses:
        return f"12-hour rate met ({rate}); missed: " + "; ".join(misses) + " (no enforcement)"
    return f"All targets met (12-hour rate {rate})"


def sort_key(shop: dict[str, Any]) -> tuple[Any, ...]:
    """Worst first: violation point, warning, more failed metrics, lowest 12-hour rate."""
    fails = sum(1 for s in shop["status"].values() if s == FAIL)
    rate = _num(shop["response_rate_12h"])
    return (
        ACTION_RANK.get(shown_action(shop), 2),
        -fails,
        rate is None,
        rate if rate is not None else 0.0,
        shop["shop_id"],
    )


def group_of(row: OverviewRow) -> tuple[int, str, str]:
    """The overview group a row belongs to: order, title, CSS class."""
    if row.action == VIOLATION_POINT:
        return 0, "Violation point this week", "vp"
    if row.action == WARNING:
        return 1, "Warning this week", "warn"
    if row.action == NOT_ASSESSED_ACTION:
        return 4, "Not assessed (no chats counted)", "na"
    if FAIL in (row.frt.status, row.csat.status):
        return 2, "12-hour rate met, other targets missed", "other"
    return 3, "All targets met", "ok"


def overview_row(
    shop: dict[str, Any],
    policy: dict[str, Any],
    trend: np.ndarray | None,
    previous: float | None,
    last_failure: str | None,
    trend_labels: list[str],
) -> OverviewRow:
    """One row of the overview from the shop's metrics.json entry and its history."""
    rate = _num(shop["response_rate_12h"])
    change = rate - previous if rate is not None and previous is not None else None
    rates: list[float | None] = list(trend) if trend is not None else [None] * TREND_WEEKS
    if trend is None and rate is not None:
        rates[-1] = rate
    action = shown_action(shop)
    return OverviewRow(
        shop_id=shop["shop_id"],
        name=shop.get("name") or shop["shop_id"],
        market=(shop.get("market") or "–"),
        anchor=anchor(shop["shop_id"]),
        rate=metric(shop["response_rate_12h"], shop["status"]["response_rate_12h"]),
        frt=metric(
            shop["first_response_minutes_mean"], shop["status"]["first_response_minutes_mean"]
        ),
        csat=metric(shop["satisfaction_rate"], shop["status"]["satisfaction_rate"]),
        action=action,
        action_css={VIOLATION_POINT: "vp", WARNING: "warn", NOT_ASSESSED_ACTION: "na"}.get(
            action, "ok"
        ),
        reason=reason(shop, policy, last_failure),
        change=change,
        change_css="" if change is None else ("up" if change > 0 else "down" if change < 0 else ""),
        trend=sparkline(rates, policy["response_rate_target"], trend_labels),
        points=int(shop.get("violation_points_active") or 0),
        chats_assessed=int(shop["chats_assessed"]),
    )


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


def advice_for(
    shop: dict[str, Any],
    policy: dict[str, Any],
    as_of: dt.date,
    missed_by_hour: np.ndarray,
    upcoming: list[tuple[dt.date, str]],
    market_known: bool,
    pending: list[ChatRow],
    last_failure: str | None,
) -> list[Advice]:
    """Specific recommendations drawn from the shop's week."""
    out: list[Advice] = []
    weeks = policy["warning_lookback_weeks"]
    validity = policy["violation_point_validity_days"]
    action = shown_action(shop)
    horizon = as_of + dt.timedelta(weeks=weeks)
    if action == WARNING:
        out.append(
            Advice(
                "What the warning means",
                f"The 12-Hour Response Rate was {pct(_num(shop['response_rate_12h']))}, under the "
                f"{pct(policy['response_rate_target'])} target. A warning carries no point, but a "
                f"second failure within {weeks} weeks (any evaluation up to {horizon}) brings "
                "1 violation point.",
            )
        )
    elif action == VIOLATION_POINT:
        out.append(
            Advice(
                "What the violation point means",
                f"The 12-Hour Response Rate failed again ({pct(_num(shop['response_rate_12h']))}; "
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
    hours = hot_hours(missed_by_hour)
    if hours is None and missed_by_hour.sum() >= MIN_MISSES_FOR_HOURS:
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
                f"{share} of {int(missed_by_hour.sum())} missed or late chats were received "
                f"between {hour_ranges(hours)} ({shop['timezone']}). Put someone on these hours "
                "or set up an auto-reply: under the guidelines an auto-reply or FAQ answer "
                "counts as a response.",
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
                f"{len(pending)} chat(s) had no reply at the cut-off but their 12-hour deadline "
                "had not passed. Answer them before the deadline (local time):",
                [
                    f"conversation {c.conversation_id}: reply by {c.deadline}"
                    for c in pending[:MISSED_ROWS]
                ],
            )
        )
    if shop["status"]["satisfaction_rate"] == FAIL:
        out.append(
            Advice(
                "Low satisfaction",
                f"{shop['ratings'] - shop['ratings_satisfied']} of {shop['ratings']} ratings were "
                f"below {policy['satisfied_min_rating']}. Read those conversations (listed below) "
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
    )


def tz_label(zone: str, at: pd.Timestamp | None) -> str:
    """`Asia/Jakarta, UTC+07:00` (offset at the cut-off)."""
    if at is None:
        return zone
    offset = at.tz_convert(zone).strftime("%z")
    return f"{zone}, UTC{offset[:3]}:{offset[3:]}"


def policy_lines(policy: dict[str, Any]) -> list[tuple[str, str]]:
    """The effective policy for the foot of the report."""
    return [
        (
            "12-Hour Response Rate",
            f"at least {pct(policy['response_rate_target'])} of chats answered within "
            f"{policy['response_limit_hours']:g} hours",
        ),
        ("First response time", f"mean under {policy['first_response_target_minutes']:g} min"),
        (
            "Customer satisfaction",
            f"at least {pct(policy['satisfaction_target'])} of ratings "
            f"{policy['satisfied_min_rating']} or above",
        ),
        ("Window", f"{policy['window_days']} calendar days, weekends and public holidays included"),
        (
            "Auto-reply",
            "counts as a response"
            if policy["auto_reply_counts_as_response"]
            else "does not count as a response",
        ),
        (
            "Enforcement",
            f"first 12-hour-rate failure in {policy['warning_lookback_weeks']} weeks: warning; "
            f"a repeat: 1 violation point, active {policy['violation_point_validity_days']} days",
        ),
        ("Default timezone", str(policy["default_timezone"])),
    ]


def build_context(results: WeekResults, pseudonym_key: bytes) -> ReportContext:
    """The report's context from one week's results (all computation happens here)."""
    doc = results.doc
    policy = doc["policy"]
    as_of = results.as_of
    first = dt.date.fromisoformat(doc["window_first_day"])
    last = dt.date.fromisoformat(doc["window_last_day"])
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    cutoff = pd.Timestamp(doc["cutoff"]) if doc.get("cutoff") else None
    shops = sorted(doc["shops"], key=sort_key)
    shop_ids = pd.Index([s["shop_id"] for s in shops], dtype=object)
    zones = pd.Series({s["shop_id"]: s["timezone"] for s in shops}, dtype=object)

    chats = prepared_chats(results.chats, cutoff)
    per_day = rows_by_shop(day_table(chats, shop_ids, days).reset_index())
    received, missed = heat_grids(heat_counts(chats), shop_ids, days)
    hist = histogram_counts(chats, shop_ids)
    agents = agent_table(chats)
    agent_rows = rows_by_shop(
        first_rows(agents, ["auto", "answered", "agent"], [True, False, True], None)
    )
    split = (
        (
            pd.crosstab(agents["shop_id"], agents["auto"], values=agents["answered"], aggfunc="sum")
            if len(agents)
            else pd.DataFrame()
        )
        .reindex(index=shop_ids, columns=[True, False])
        .fillna(0)
    )

    chat_lists = {}
    for name, (mask, by, ascending, n) in {
        "missed": ("miss", ["late_first", "order"], [True, False], MISSED_ROWS),
        "pending": (PENDING, ["deadline_at_utc"], [True], None),
    }.items():
        chosen = chats.loc[chats[mask] if mask == "miss" else chats["status"] == mask]
        chat_lists[name] = rows_by_shop(chat_display(first_rows(chosen, by, ascending, n)))
    missed_total = chats.loc[chats["miss"]].groupby("shop_id").size() if len(chats) else {}

    ratings = results.ratings
    low = (
        ratings.loc[ratings["rating"].astype(float) < policy["satisfied_min_rating"]]
        if len(ratings)
        else ratings
    )
    low_total = low.groupby("shop_id").size() if len(low) else pd.Series(dtype="int64")
    low_shown = first_rows(low, ["rating", "rated_at"], [True, True], LOW_RATING_ROWS)
    if len(low_shown):
        low_shown = low_shown.assign(
            text=local_text(low_shown["rated_at"], low_shown["shop_id"].map(zones))
        )
    low_rows = rows_by_shop(low_shown)
    periods = results.holiday_periods
    if len(periods):
        period_zones = periods["shop_id"].map(zones).fillna("UTC")
        periods = periods.assign(
            start_text=local_text(periods["start"], period_zones),
            end_text=local_text(periods["end"], period_zones).where(
                periods["end"].notna(), "still on"
            ),
        )
    period_rows = rows_by_shop(periods)
    findings = results.findings
    findings_by_shop = (
        dict(tuple(findings.groupby("shop_id"))) if len(findings) and "shop_id" in findings else {}
    )

    history = results.history
    trends = trend_table(history, as_of)
    trend_labels = [f"{dt.date.fromisoformat(m):%d %b}" for m in trends.columns]
    trend_values = trends.reindex(shop_ids).to_numpy(dtype=float)
    previous = (
        trends.iloc[:, -2].reindex(shop_ids) if len(trends.columns) > 1 else pd.Series(dtype=float)
    )
    has_history = pd.Index(trends.index)
    failures = earlier_failures(history, as_of, policy["warning_lookback_weeks"])
    horizon = [as_of + dt.timedelta(days=i) for i in range(UPCOMING_HOLIDAY_DAYS)]
    years = tuple(sorted({d.year for d in days + horizon}))

    rows: list[OverviewRow] = []
    sections: list[ShopSection] = []
    for i, shop in enumerate(shops):
        sid = shop["shop_id"]
        last_failure = failures.get(sid)
        row = overview_row(
            shop,
            policy,
            trend_values[i] if sid in has_history else None,
            _num(previous.get(sid)),
            last_failure,
            trend_labels,
        )
        rows.append(row)
        zone = shop["timezone"]
        market = shop.get("market")
        names = market_holidays(market, years) if market else None
        day_rows = [
            DayRow(
                day=d,
                weekend=d.weekday() >= 5,
                holiday=(names or {}).get(d, ""),
                chats=int(r["chats"]),
                assessed=int(r["assessed"]),
                on_time=int(r[ON_TIME]),
                late=int(r[LATE]),
                missed=int(r[UNRESPONDED]),
                pending=int(r[PENDING]),
                excluded=int(r[EXCLUDED]),
                rate=_num(r["rate"]),
                rate_css=""
                if _num(r["rate"]) is None
                else ("pass" if r["rate"] >= policy["response_rate_target"] else "fail"),
            )
            for d, r in zip(days, per_day.get(sid, []), strict=True)
        ]
        hist_row = hist.loc[sid]
        hist_total = int(hist_row.sum())
        histogram = [
            HistBin(
                label="no reply" if label == "never" else str(label),
                count=int(n),
                share=n / hist_total if hist_total else 0.0,
                bar=bar(
                    n / hist_total if hist_total else 0.0,
                    "bar miss" if label in ("over 12 h", "never") else "bar",
                ),
            )
            for label, n in hist_row.items()
        ]
        auto_n, person_n = (int(v) for v in split.loc[sid])
        pending = [chat_row(c, pseudonym_key) for c in chat_lists["pending"].get(sid, [])]
        upcoming = sorted((d, n) for d, n in (names or {}).items() if d in horizon)
        shop_findings = findings_by_shop.get(sid)
        sections.append(
            ShopSection(
                row=row,
                timezone=zone,
                tz_label=tz_label(zone, cutoff),
                counts={k: int(shop[k]) for k in COUNT_FIELDS},
                frt_median=_num(shop["first_response_minutes_median"]),
                frt_p90=_num(shop["first_response_minutes_p90"]),
                cutoff_local=(
                    cutoff.tz_convert(zone).strftime("%a %d %b %Y %H:%M") if cutoff else "none"
                ),
                days=day_rows,
                holiday_note=holiday_note(market, names is not None),
                heatmap=heatmap(received[i], missed[i], days),
                histogram=histogram,
                responded=auto_n + person_n,
                auto_replied=auto_n,
                auto_share=auto_n / (auto_n + person_n) if auto_n + person_n else None,
                person_replied=person_n,
                responder_bar=split_bar(auto_n, person_n),
                agents=[
                    AgentRow(
                        agent="auto-reply" if a["auto"] else (a["agent"] or "(no agent id)"),
                        auto_reply=bool(a["auto"]),
                        answered=int(a["answered"]),
                        median=_num(a["median"]),
                        p90=_num(a["p90"]),
                        late=int(a["late"]),
                    )
                    for a in agent_rows.get(sid, [])
                ],
                missed=[chat_row(c, pseudonym_key) for c in chat_lists["missed"].get(sid, [])],
                missed_more=max(int(missed_total.get(sid, 0)) - MISSED_ROWS, 0),
                low_ratings=[
                    RatingRow(str(r["conversation_id"]), int(r["rating"]), r["text"])
                    for r in low_rows.get(sid, [])
                ],
                low_ratings_more=max(int(low_total.get(sid, 0)) - LOW_RATING_ROWS, 0),
                periods=[
                    PeriodRow(p["start_text"], p["end_text"]) for p in period_rows.get(sid, [])
                ],
                advice=advice_for(
                    shop,
                    policy,
                    as_of,
                    missed[i].sum(axis=0),
                    upcoming,
                    names is not None,
                    pending,
                    last_failure,
                ),
                findings=findings_for(shop_findings, zone) if shop_findings is not None else None,
                open=len(shops) <= OPEN_SECTIONS_UP_TO,
            )
        )

    grouped: dict[tuple[int, str, str], list[OverviewRow]] = {}
    for row in rows:
        grouped.setdefault(group_of(row), []).append(row)
    actions = [r.action for r in rows]
    return ReportContext(
        title=f"Customer service report, week {day_label(first)} - {day_label(last)} {last.year}",
        as_of=as_of,
        first_day=first,
        last_day=last,
        cutoff=cutoff.tz_convert("UTC").strftime("%a %d %b %Y %H:%M UTC") if cutoff else "none",
        generated_at=str(doc.get("generated_at") or ""),
        summary_css={
            "violation_points": "vp" if VIOLATION_POINT in actions else "",
            "warnings": "warn" if WARNING in actions else "",
        },
        summary={
            "shops": len(rows),
            "violation_points": actions.count(VIOLATION_POINT),
            "warnings": actions.count(WARNING),
            "not_assessed": actions.count(NOT_ASSESSED_ACTION),
            "other_missed": sum(1 for r in rows if group_of(r)[0] == 2),
            "points_active": sum(r.points for r in rows),
        },
        groups=[OverviewGroup(t, css, members) for (_, t, css), members in sorted(grouped.items())],
        shops=sections,
        policy=policy_lines(policy),
        input_line=output.input_line(doc.get("input", {})),
        rate_target=policy["response_rate_target"],
        frt_target=policy["first_response_target_minutes"],
        csat_target=policy["satisfaction_target"],
    )


COUNT_FIELDS = (*metrics.COUNT_FIELDS, "ratings", "ratings_satisfied")


def holiday_note(market: str | None, known: bool) -> str:
    """Under the days table: whose public holidays are named, or why none are."""
    if not market:
        return "No market given for this shop: public holidays are not shown."
    if not known:
        return f"Public holidays of market {market} are not known to the holidays package."
    return f"Public holidays of {market.upper()} named (holidays package)."


def chat_display(chats: pd.DataFrame) -> pd.DataFrame:
    """Chats with local received, responded and deadline text (for the rows shown only)."""
    if chats.empty:
        return chats.assign(received=[], responded=[], deadline=[])
    zones = chats["timezone"]
    return chats.assign(
        received=local_text(chats["received_at_utc"], zones),
        responded=local_text(chats["responded_at_utc"], zones),
        deadline=local_text(chats["deadline_at_utc"], zones),
    )


def chat_row(chat: dict[str, Any], key: bytes) -> ChatRow:
    """A chat as shown in the missed/late and pending lists (buyer pseudonymised)."""
    return ChatRow(
        conversation_id=str(chat["conversation_id"]),
        buyer=pseudonym(key, str(chat["shop_id"]), chat["buyer_id"]),
        received=chat["received"],
        status=str(chat["status"]),
        waited=_num(chat["waited"]),
        responded=chat["responded"],
        deadline=chat["deadline"],
    )
