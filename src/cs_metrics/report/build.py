"""The Monday HTML report: a typed context built from WeekResults, rendered with Jinja2.

All aggregation is vectorised pandas over the week's chats of every shop at once
(report_tables); the loops here only walk shops and the few rows each section shows.
Templates receive one `ReportContext` (report_context) and hold loops and formatting (the
filters of report_format), nothing else. What the report advises is in `advice`. The only
trusted HTML is the SVG built from numbers (charts), wrapped in `Markup`.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from cs_metrics import files, metrics, output, privacy, week_files
from cs_metrics.chats import EXCLUDED, LATE, ON_TIME, PENDING, UNRESPONDED
from cs_metrics.enforcement import VIOLATION_POINT, WARNING, WITHHELD, withheld_reason
from cs_metrics.formats import local_time
from cs_metrics.policy import Policy
from cs_metrics.privacy import pseudonym
from cs_metrics.report.advice import (
    MISSED_ROWS,
    advice_for,
    earlier_failures,
    findings_for,
)
from cs_metrics.report.charts import bar, heatmap, pct, shade_levels, split_bar
from cs_metrics.report.context import (
    AgentRow,
    Banner,
    ChatRow,
    DayRow,
    FigureRow,
    HistBin,
    OverviewGroup,
    OverviewRow,
    PeriodRow,
    RatingRow,
    ReportContext,
    ReportSettings,
    ShopSection,
    TikTokFigures,
)
from cs_metrics.report.format import (
    FILTERS,
    NOT_ASSESSED_ACTION,
    as_number,
    day_label,
    minutes_text,
    points_change,
)
from cs_metrics.report.overview import group_note, market_rows, order_key, overview_row
from cs_metrics.report.standing import (
    ACT_NOW,
    AT_RISK,
    FINE,
    GROUP_CSS,
    GROUP_SLUGS,
    GROUP_TITLES,
    OTHER_MISSED,
    WITHHELD_GROUP,
    rate_text,
)
from cs_metrics.report.tables import (
    agent_table,
    anchors,
    clock_left,
    day_table,
    first_rows,
    heat_counts,
    heat_grids,
    hide_buyer_ids,
    histogram_counts,
    holiday_grid,
    late_by_agent,
    local_text,
    market_holidays,
    prepared_chats,
    rows_by_shop,
    trend_table,
)
from cs_metrics.week_files import WeekResults

LOW_RATING_ROWS = 10
UPCOMING_HOLIDAY_DAYS = 14


# ----------------------------------------------------------------------------- context types


# ----------------------------------------------------------------------------- formatting


# ----------------------------------------------------------------------------- environment


@cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: package templates, autoescape, strict undefined, filters."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cs_metrics.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def render_pages(
    results: WeekResults, pseudonym_key: bytes, settings: ReportSettings | None = None
) -> tuple[str, dict[str, str]]:
    """The report's HTML and, past `settings.detail_pages_over` shops, each shop's page
    (file name under shops/ -> HTML); both self-contained."""
    context = build_context(results, pseudonym_key, settings)
    env = environment()
    page = env.get_template("report.html").render(ctx=context)
    if not context.split:
        return page, {}
    template = env.get_template("shop.html")
    return page, {
        shop.row.link.removeprefix("shops/"): template.render(ctx=context, shop=shop)
        for shop in context.shops
    }


def render_report(
    results: WeekResults, pseudonym_key: bytes, settings: ReportSettings | None = None
) -> str:
    """The full HTML of the Monday report for one evaluated week (report.html only)."""
    return render_pages(results, pseudonym_key, settings)[0]


def report_for(out: Path, as_of: dt.date, history_path: Path) -> Path:
    """Re-render OUT/<as-of>/report.html from the stored week and history; returns its path."""
    results = week_files.load_week(out, as_of, history_path)
    return write_report(results, week_files.week_folder(out, as_of) / "report.html", history_path)


# ----------------------------------------------------------------------------- derived tables


# ----------------------------------------------------------------------------- holidays


# ----------------------------------------------------------------------------- the context


def tz_label(zone: str, at: pd.Timestamp | None) -> str:
    """`Asia/Jakarta, UTC+07:00` (offset at the cut-off)."""
    if at is None:
        return zone
    offset = at.tz_convert(zone).strftime("%z")
    return f"{zone}, UTC{offset[:3]}:{offset[3:]}"


def policy_lines(policy: Policy) -> list[tuple[str, str]]:
    """The effective policy for the foot of the report."""
    return [
        (
            f"{policy.limit_label.title()} Response Rate",
            f"at least {pct(policy.response_rate_target)} of chats answered within "
            f"{policy.response_limit_hours:g} hours",
        ),
        ("First response time", f"mean under {policy.first_response_target_minutes:g} min"),
        (
            "Customer satisfaction",
            f"at least {pct(policy.satisfaction_target)} of ratings "
            f"{policy.satisfied_min_rating} or above",
        ),
        ("Window", f"{policy.window_days} calendar days, weekends and public holidays included"),
        (
            "Auto-reply",
            "counts as a response"
            if policy.auto_reply_counts_as_response
            else "does not count as a response",
        ),
        (
            "Enforcement",
            f"first {policy.limit_label}-rate failure in {policy.warning_lookback_weeks} weeks: "
            "warning; "
            f"a repeat: 1 violation point, active {policy.violation_point_validity_days} days",
        ),
        ("Default timezone", str(policy.default_timezone)),
    ]


def build_context(
    results: WeekResults, pseudonym_key: bytes, settings: ReportSettings | None = None
) -> ReportContext:
    """The report's context from one week's results (all computation happens here)."""
    settings = settings or ReportSettings()
    doc = results.doc
    policy = Policy.from_dict(doc["policy"], "metrics.json")
    as_of = results.as_of
    first = dt.date.fromisoformat(doc["window_first_day"])
    last = dt.date.fromisoformat(doc["window_last_day"])
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    cutoff = pd.Timestamp(doc["cutoff"]) if doc.get("cutoff") else None
    shops = sorted(doc["shops"], key=lambda shop: str(shop["shop_id"]))
    shop_ids = pd.Index([s["shop_id"] for s in shops], dtype=object)
    zones = pd.Series({s["shop_id"]: s["timezone"] for s in shops}, dtype=object)

    chats = prepared_chats(results.chats, cutoff)
    per_day = rows_by_shop(day_table(chats, shop_ids, days).reset_index())
    received, missed = heat_grids(heat_counts(chats), shop_ids, days)
    hist = histogram_counts(chats, shop_ids, policy.response_limit_hours)
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
        shown = chat_display(first_rows(chosen, by, ascending, n))
        if name == "pending":
            shown = shown.assign(
                left=clock_left(shown, results.holiday_periods, cutoff, policy.response_limit_hours)
            )
        chat_lists[name] = rows_by_shop(shown)
    missed_total = chats.loc[chats["miss"]].groupby("shop_id").size() if len(chats) else {}

    ratings = results.ratings
    low = (
        ratings.loc[ratings["rating"].astype(float) < policy.satisfied_min_rating]
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
    agent_lates = rows_by_shop(late_by_agent(chats))
    findings = hide_buyer_ids(results.findings, results.chats, pseudonym_key)
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
    failures = earlier_failures(history, as_of, policy.warning_lookback_weeks)
    horizon = [as_of + dt.timedelta(days=i) for i in range(UPCOMING_HOLIDAY_DAYS)]
    years = tuple(sorted({d.year for d in days + horizon}))

    theirs = {str(r["shop_id"]): r for r in results.tiktok_figures.to_dict("records")}
    paged = len(shops) > settings.detail_pages_over
    ids = anchors([str(shop["shop_id"]) for shop in shops])
    position = {str(shop["shop_id"]): i for i, shop in enumerate(shops)}
    by_id: dict[str, OverviewRow] = {}
    for i, shop in enumerate(shops):
        sid = shop["shop_id"]
        by_id[sid] = overview_row(
            shop,
            policy,
            trend_values[i] if sid in has_history else None,
            as_number(previous.get(sid)),
            failures.get(sid),
            trend_labels,
            missed[i].sum(axis=0),
            f"shops/{ids[sid].removeprefix('shop-')}.html" if paged else f"#{ids[sid]}",
            ids[sid],
            settings,
        )
    rows = sorted(by_id.values(), key=order_key)
    shops = [shops[position[row.shop_id]] for row in rows]
    sections: list[ShopSection] = []
    for row, shop in zip(rows, shops, strict=True):
        sid = shop["shop_id"]
        i = position[sid]
        last_failure = failures.get(sid)
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
                rate=as_number(r["rate"]),
                rate_css=""
                if as_number(r["rate"]) is None
                else ("pass" if r["rate"] >= policy.response_rate_target else "fail"),
                rate_text=rate_text(as_number(r["rate"]), policy.response_rate_target),
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
                    "bar miss" if label in (hist.columns[-2], "never") else "bar",
                    title=f"{'no reply' if label == 'never' else label}: {int(n)} chats",
                ),
            )
            for label, n in hist_row.items()
        ]
        auto_n, person_n = (int(v) for v in split.loc[sid])
        holiday_hours = holiday_grid(
            pd.DataFrame(period_rows.get(sid, []), columns=["start", "end"]), zone, days, cutoff
        )
        pending = [chat_row(c, pseudonym_key) for c in chat_lists["pending"].get(sid, [])]
        upcoming = sorted((d, n) for d, n in (names or {}).items() if d in horizon)
        shop_findings = findings_by_shop.get(sid)
        sections.append(
            ShopSection(
                row=row,
                timezone=zone,
                tz_label=tz_label(zone, cutoff),
                counts={k: int(shop[k]) for k in COUNT_FIELDS},
                frt_median=as_number(shop["first_response_minutes_median"]),
                frt_p90=as_number(shop["first_response_minutes_p90"]),
                cutoff_local=(
                    cutoff.tz_convert(zone).strftime("%a %d %b %Y %H:%M") if cutoff else "none"
                ),
                days=day_rows,
                holiday_note=holiday_note(market, names is not None),
                heatmap=heatmap(received[i], missed[i], days, holiday_hours),
                heat_legend=[
                    (f"q{level}", text)
                    for level, text in enumerate(shade_levels(received[i])[1], start=1)
                    if text
                ],
                holiday_hours=int(holiday_hours.sum()),
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
                        median=as_number(a["median"]),
                        p90=as_number(a["p90"]),
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
                    PeriodRow(
                        p["start_text"],
                        p["end_text"],
                        f"since {p['start_text']}, still on"
                        if pd.isna(p["end"])
                        else f"{p['start_text']} to {p['end_text']}",
                    )
                    for p in period_rows.get(sid, [])
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
                    settings,
                    agent_lates.get(sid, []),
                ),
                findings=findings_for(shop_findings, zone) if shop_findings is not None else None,
                open=True,
                tiktok=beside_tiktok(shop, row, theirs.get(sid), policy.window_days),
            )
        )

    grouped: dict[int, list[OverviewRow]] = {}
    for row in rows:
        grouped.setdefault(row.group, []).append(row)
    groups = [
        OverviewGroup(
            GROUP_TITLES[g], GROUP_CSS[g], grouped[g], GROUP_SLUGS[g], group_note(g, policy)
        )
        for g in sorted(grouped)
    ]
    actions = [r.action for r in rows]
    compared = [section for section in sections if section.tiktok is not None]
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
            "withheld": "warn" if WITHHELD in actions else "",
        },
        summary={
            "shops": len(rows),
            "violation_points": actions.count(VIOLATION_POINT),
            "warnings": actions.count(WARNING),
            "withheld": actions.count(WITHHELD),
            "not_assessed": actions.count(NOT_ASSESSED_ACTION),
            "other_missed": len(grouped.get(OTHER_MISSED, [])),
            "at_risk": len(grouped.get(AT_RISK, [])),
            "act_now": len(grouped.get(ACT_NOW, [])),
            "fine": len(grouped.get(FINE, [])),
            "points_active": sum(r.points for r in rows),
        },
        groups=groups,
        markets=market_rows(rows),
        group_titles=[GROUP_TITLES[g] for g in sorted(GROUP_TITLES)],
        top=[r for r in rows if r.group in (ACT_NOW, AT_RISK, WITHHELD_GROUP)][
            : settings.top_shops
        ],
        shops=sections,
        split=paged,
        policy=policy_lines(policy),
        input_line=output.input_line(doc.get("input", {})),
        banners=banners(doc, policy),
        limit_label=policy.limit_label,
        rate_target=policy.response_rate_target,
        frt_target=policy.first_response_target_minutes,
        csat_target=policy.satisfaction_target,
        tiktok_differs=frozenset(
            section.row.shop_id for section in compared if section.tiktok and section.tiktok.differs
        ),
        tiktok_shops=len(compared),
    )


RATE_TOLERANCE_PP = 2.0
"""A rate differs from TikTok's when the two are more than this many percentage points apart."""
MINUTES_TOLERANCE = 5.0
MINUTES_TOLERANCE_SHARE = 0.10
"""The response time differs when the two are more than 10% of TikTok's figure apart, and at
least MINUTES_TOLERANCE minutes."""
TOLERANCE_TEXT = (
    f"a rate over {RATE_TOLERANCE_PP:g} percentage points, or a response time over "
    f"{MINUTES_TOLERANCE_SHARE:.0%} (and {MINUTES_TOLERANCE:g} min), from TikTok's"
)


def beside_tiktok(
    shop: dict[str, Any], row: OverviewRow, theirs: dict[str, Any] | None, window_days: int
) -> TikTokFigures | None:
    """The shop's three metrics beside TikTok's own figures of the week (None: it has none).

    A difference is judged on the values as shown (one decimal), so that a marked row never
    shows a difference within the tolerance.
    """
    if theirs is None:
        return None
    days = theirs.get("days")
    if days is None or pd.isna(days) or not int(days):
        return None
    rows = []
    for metric, label, key, shown in (
        ("response_rate_12h", "Response rate", "response_rate", row.rate.text),
        (
            "first_response_minutes_mean",
            "Response time (mean)",
            "response_time_minutes",
            row.frt.text,
        ),
        ("satisfaction_rate", "Satisfaction", "satisfaction_rate", row.csat.text),
    ):
        ours, tiktok = as_number(shop.get(metric)), as_number(theirs.get(key))
        difference = None if ours is None or tiktok is None else ours - tiktok
        if key == "response_time_minutes":
            tiktok_text, difference_text = minutes_text(tiktok), minutes_change(difference)
            gap = None if difference is None else round(abs(difference), 1)
            limit = max(MINUTES_TOLERANCE, MINUTES_TOLERANCE_SHARE * (tiktok or 0.0))
        else:
            tiktok_text, difference_text = pct(tiktok), points_change(difference)
            gap = None if difference is None else round(abs(difference) * 100, 1)
            limit = RATE_TOLERANCE_PP
        rows.append(
            FigureRow(
                metric=metric,
                label=label,
                ours=ours,
                tiktok=tiktok,
                difference=difference,
                ours_text=shown,
                tiktok_text=tiktok_text,
                difference_text=difference_text,
                differs=gap is not None and gap > limit,
            )
        )
    return TikTokFigures(
        days=int(days), window_days=window_days, rows=rows, tolerance=TOLERANCE_TEXT
    )


def minutes_change(value: float | None) -> str:
    """A difference of durations, signed: `+12.5 min`, `−1 h 05 min`; an en dash when unknown."""
    if value is None:
        return "–"
    if round(abs(value), 1) == 0:
        return "±0.0 min"
    return f"{'+' if value > 0 else '−'}{minutes_text(abs(value))}"


BANNER_ITEMS = 10
"""A notice lists this many shops; the rest are counted (a portfolio can have hundreds)."""


def first_items(items: list[str], where: str) -> list[str]:
    """The first BANNER_ITEMS items, then `... and N more, <where>`."""
    if len(items) <= BANNER_ITEMS:
        return items
    return [*items[:BANNER_ITEMS], f"… and {len(items) - BANNER_ITEMS} more, {where}"]


def banners(doc: dict[str, Any], policy: Policy) -> list[Banner]:
    """What the manager must know before reading on: withheld actions and stale weeks (6a)."""
    out = []
    withheld = [s for s in doc["shops"] if s.get("action") == WITHHELD]
    if withheld:
        out.append(
            Banner(
                f"{len(withheld)} shop(s): no warning or violation point issued, "
                "the data does not cover the week",
                f"These shops fail the {policy.limit_label} response rate, but their data cannot "
                "support a penalty. Get a complete export for the week and run the evaluation "
                "again; until then the failure counts neither for nor against them.",
                first_items(
                    [
                        f"{s['shop_id']}: {withheld_reason(s, doc.get('cutoff'), policy)}"
                        for s in withheld
                    ],
                    "in the Withheld group of the overview",
                ),
            )
        )
    quiet = [s for s in doc["shops"] if s.get("last_message_at")]
    if quiet:
        out.append(
            Banner(
                f"{len(quiet)} shop(s) whose messages stop early: their export may be incomplete",
                "The messages of these shops stop more than a day before the rest of the data "
                "ends. Check that their exports are complete; if chats are missing, the figures "
                "below are too good.",
                first_items(
                    [
                        f"{s['shop_id']}: last message "
                        f"{local_time(s['last_message_at'], s['timezone'])}"
                        for s in quiet
                    ],
                    "named in metrics.json (last_message_at)",
                ),
            )
        )
    missing = list(doc.get("missing_weeks", []))
    if missing:
        out.append(
            Banner(
                "Weeks missing from the history: actions may be too lenient",
                "The history holds no evaluation of these Mondays, inside the lookback of "
                "shops with earlier weeks. A failure in a missing week would turn a warning "
                "here into a violation point: evaluate them with `cs-metrics backfill` from "
                "the first of them to this week.",
                missing,
            )
        )
    stale = list(doc.get("stale_weeks", []))
    if stale:
        out.append(
            Banner(
                "Later weeks rest on an earlier result of this week",
                "This week was evaluated again and its results changed. The actions of the "
                "stored later weeks were decided on the old results: evaluate them again with "
                "`cs-metrics backfill` from the first to the last of them.",
                stale,
            )
        )
    return out


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


def clock_text(minutes: float | None) -> str:
    """`5 h 20 min left on the clock once Holiday Mode ends` (empty when unknown)."""
    if minutes is None:
        return ""
    whole = max(round(minutes), 0)
    return f"{whole // 60} h {whole % 60} min left on the clock once Holiday Mode ends"


def chat_row(chat: dict[str, Any], key: bytes) -> ChatRow:
    """A chat as shown in the missed/late and pending lists (buyer pseudonymised)."""
    held = chat.get("deadline") == "–" and as_number(chat.get("left")) is not None
    return ChatRow(
        conversation_id=str(chat["conversation_id"]),
        buyer=pseudonym(key, str(chat["shop_id"]), chat["buyer_id"]),
        received=chat["received"],
        status=str(chat["status"]),
        waited=as_number(chat["waited"]),
        responded=chat["responded"],
        deadline=chat["deadline"],
        clock_left=clock_text(as_number(chat.get("left"))) if held else "",
    )


def write_report(
    results: WeekResults, path: Path, history_path: Path, settings: ReportSettings | None = None
) -> Path:
    """Render the week's report into `path` and, past the split, each shop's page into
    `shops/` beside it (each file written atomically; pages of shops no longer in the week
    are removed)."""
    page, shop_pages = render_pages(results, privacy.pseudonym_key(history_path), settings)
    folder = path.parent / SHOP_FOLDER
    for name, html in shop_pages.items():
        files.write_atomic(folder / name, html)
    if folder.is_dir():
        for old in folder.glob("*.html"):
            if old.name not in shop_pages:
                old.unlink()
    files.write_atomic(path, page)
    return path


SHOP_FOLDER = "shops"
