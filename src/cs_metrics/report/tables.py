"""The week's chats turned into the report's per-shop tables: days, hours, agents, trend."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from functools import cache
from typing import Any

import holidays
import numpy as np
import pandas as pd

from cs_metrics import chats as chat_clock
from cs_metrics import output
from cs_metrics.chats import EXCLUDED, LATE, ON_TIME, PENDING, UNRESPONDED
from cs_metrics.formats import LOCAL_TIME
from cs_metrics.privacy import hidden_findings, identifiers

TREND_WEEKS = 8
HIST_EDGES = (5.0, 30.0, 60.0, 240.0)
"""First-response-time bin edges (minutes) below the response limit, always the last edge."""


def duration_label(minutes: float) -> str:
    """Minutes as a bin edge is written: `5 min`, `1 h`, `12 h`, `1.5 h`."""
    return f"{minutes:g} min" if minutes < 60 else f"{minutes / 60:g} h"


def _range_start(low: float, high: float) -> str:
    """A range's start without its unit when the end has the same one (`1-4 h`, `30 min-1 h`)."""
    if (low < 60) != (high < 60):
        return duration_label(low)
    return f"{low:g}" if low < 60 else f"{low / 60:g}"


def histogram_bins(limit_hours: float) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """The histogram's edges and labels for a response limit: the last bin is the late one."""
    limit = limit_hours * 60
    edges = (*(e for e in HIST_EDGES if e < limit), limit)
    labels = [f"up to {duration_label(edges[0])}"]
    for low, high in itertools.pairwise(edges):
        labels.append(f"{_range_start(low, high)}-{duration_label(high)}")
    labels.append(f"over {duration_label(limit)}")
    return (-math.inf, *edges, math.inf), tuple(labels)


def hide_buyer_ids(findings: pd.DataFrame, chats: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Findings with this week's buyers hidden once more by pseudonym (the weekly run hides
    every buyer of the data folder before findings.csv is written; a week stored by an older
    version is covered here for its own buyers)."""
    if not len(findings) or "buyer_id" not in chats or "shop_id" not in findings:
        return findings
    # Only the buyers of shops with findings can be named in one.
    chats = chats.loc[chats["shop_id"].astype(str).isin(findings["shop_id"].astype(str))]
    buyers = pd.DataFrame(
        {
            "shop_id": chats["shop_id"].astype("string"),
            "buyer_id": chats["buyer_id"].astype("string"),
            "name": pd.Series(pd.NA, index=chats.index, dtype="string"),
        }
    ).drop_duplicates()
    return hidden_findings(findings, identifiers(buyers, key))


def slug(shop_id: str) -> str:
    """A shop id as a readable piece of an HTML id and a file name: letters, digits, `_` and
    `-` kept, every other run of characters one `-` (`VN 001/a` -> `VN-001-a`)."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", shop_id).strip("-")
    return text[:80] or "x"


def anchors(shop_ids: list[str]) -> dict[str, str]:
    """Per shop id: its stable section id, `shop-` + its slug; ids whose slugs collide get
    `-2`, `-3`... in id order, so a shop keeps its anchor from week to week."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for shop_id in sorted(set(shop_ids)):
        base = f"shop-{slug(shop_id)}"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        out[shop_id] = name
    return out


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
        text.loc[idx] = local.dt.strftime(LOCAL_TIME).where(local.notna(), "–")
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


def histogram_counts(chats: pd.DataFrame, shop_ids: pd.Index, limit_hours: float) -> pd.DataFrame:
    """Responded chats per shop and first-response-time bin, plus `never` (unanswered)."""
    edges, labels = histogram_bins(limit_hours)
    columns = [*labels, "never"]
    if chats.empty:
        return pd.DataFrame(0, index=shop_ids, columns=columns)
    responded = chats.loc[chats["status"].isin([ON_TIME, LATE])]
    bins = pd.cut(
        responded["response_minutes"].astype(float), bins=list(edges), labels=list(labels)
    )
    table = pd.crosstab(responded["shop_id"], bins)
    table = table.reindex(index=shop_ids, columns=list(labels)).fillna(0).astype("int64")
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


@cache
def market_holidays(market: str, years: tuple[int, ...]) -> dict[dt.date, str] | None:
    """Public holidays of a market (ISO code) in some years; None when `holidays` lacks it."""
    try:
        return dict(holidays.country_holidays(market.upper(), years=list(years)).items())
    except NotImplementedError:
        return None


def holiday_grid(
    periods: pd.DataFrame, zone: str, days: list[dt.date], cutoff: pd.Timestamp | None
) -> np.ndarray:
    """Local day x hour: whether Holiday Mode was on for any part of that hour (an open
    period runs to the cut-off)."""
    grid = np.zeros((len(days), 24), dtype=bool)
    if periods.empty:
        return grid
    starts = pd.date_range(
        pd.Timestamp(days[0]).tz_localize(zone, ambiguous=True, nonexistent="shift_forward"),
        periods=len(days) * 24,
        freq="h",
    )
    local = starts.tz_convert(zone)
    index = np.array(
        [((d.date() - days[0]).days, d.hour) for d in local.tz_localize(None)], dtype="int64"
    )
    end_default = cutoff if cutoff is not None else starts[-1] + pd.Timedelta(hours=1)
    for start, end in zip(periods["start"], periods["end"], strict=True):
        stop = end if pd.notna(end) else end_default
        on = (starts < stop) & (starts + pd.Timedelta(hours=1) > start)
        ok = on & (index[:, 0] >= 0) & (index[:, 0] < len(days))
        grid[index[ok, 0], index[ok, 1]] = True
    return grid


def clock_left(
    pending: pd.DataFrame, periods: pd.DataFrame, cutoff: pd.Timestamp | None, limit_hours: float
) -> pd.Series:
    """Minutes left on the response clock at the cut-off of each pending chat (Holiday Mode
    holds the clock: for a chat caught by a period still on, what remains once it ends)."""
    if pending.empty or cutoff is None:
        return pd.Series(np.nan, index=pending.index, dtype=float)
    merged = chat_clock.merged_periods(periods)
    shop = chat_clock.period_shops(pending["shop_id"], merged)
    received = chat_clock.ticks(pending["received_at_utc"])
    at_cutoff = np.full(len(pending), chat_clock.ticks(pd.Series([cutoff]))[0], dtype="int64")
    active_received, _ = chat_clock.clock(shop, received, merged)
    active_cutoff, _ = chat_clock.clock(shop, at_cutoff, merged)
    used = (active_cutoff - active_received) / chat_clock.TICKS_PER_MINUTE
    return pd.Series(limit_hours * 60 - used, index=pending.index, dtype=float)


def late_by_agent(chats: pd.DataFrame) -> pd.DataFrame:
    """Late answers per shop, agent (auto-reply as one) and local hour received."""
    columns = ["shop_id", "agent", "hour", "late"]
    late = chats.loc[chats["status"] == LATE] if len(chats) else chats
    if late.empty:
        return pd.DataFrame(columns=columns)
    agent = (
        late["responder_id"]
        .astype(object)
        .where(late["responder_id"].notna(), "(no agent id)")
        .where(late["responder_role"] != "auto_reply", "auto-reply")
    )
    return (
        pd.DataFrame({"shop_id": late["shop_id"], "agent": agent, "hour": late["hour"]})
        .groupby(["shop_id", "agent", "hour"])
        .size()
        .rename("late")
        .reset_index()
    )
