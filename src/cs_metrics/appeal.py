"""An appeal pack: one shop's evaluated week as evidence an investigator can follow.

Built from the stored week (OUT/<as-of>/) and the history alone, so it shows exactly what the
Monday run decided: the evaluation, the action and the policy, and for every chat counted late
or missed its timeline (received, buyer messages, the response and who sent it, Holiday Mode
periods that stopped the clock, the deadline). The chats most likely to be disputed come first.
Buyers appear only as pseudonyms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cs_metrics import files, formats, privacy
from cs_metrics.chats import LATE, UNRESPONDED
from cs_metrics.report.build import environment
from cs_metrics.report.format import minutes_text
from cs_metrics.report.tables import local_text
from cs_metrics.week_files import WeekResults

CLOSE_TO_DEADLINE = pd.Timedelta(minutes=30)
"""A late answer this close after its deadline is listed among the likely disputes."""
NEAR_HOLIDAY_MODE = pd.Timedelta(hours=1)
"""A chat received this close to a Holiday Mode period's start or end is a likely dispute."""


@dataclass(frozen=True)
class TimelineChat:
    """A chat counted late or missed, as an investigator reads it."""

    conversation_id: str
    buyer: str
    status: str
    received: str
    buyer_messages: int
    responded: str
    responder_role: str
    response_time: str
    deadline: str
    holiday_mode: list[str]
    """Holiday Mode periods between receipt and deadline (they stopped the clock)."""
    flags: list[str]
    """Why the decision may be disputed (empty: nothing stands out)."""


@dataclass(frozen=True)
class AppealPack:
    """Everything in the pack."""

    shop_id: str
    as_of: str
    shop: dict
    """The shop's record of the week (metrics.json)."""
    policy: dict
    policy_fingerprint: str | None
    cutoff: str | None
    chats: list[TimelineChat]
    counts: dict[str, int]


def likely_disputes(chats: pd.DataFrame, periods: pd.DataFrame) -> pd.Series:
    """Per chat: the reasons it may be disputed, as a list of short texts."""
    flags = pd.Series([[] for _ in range(len(chats))], index=chats.index, dtype=object)
    auto = chats["responder_role"].astype("string").eq("auto_reply").fillna(False)
    late_by = chats["responded_at_utc"] - chats["deadline_at_utc"]
    close = (late_by > pd.Timedelta(0)) & (late_by <= CLOSE_TO_DEADLINE)
    near = pd.Series(False, index=chats.index)
    for period in periods.itertuples(index=False):
        mine = chats["shop_id"].eq(period.shop_id)
        for edge in (period.start, period.end):
            if pd.notna(edge):
                near |= mine & ((chats["received_at_utc"] - edge).abs() <= NEAR_HOLIDAY_MODE)
    for mask, text in (
        (auto, "answered by an auto-reply (the guidelines count it as a response)"),
        (close, f"answered within {CLOSE_TO_DEADLINE.seconds // 60} minutes after the deadline"),
        (near, "received within an hour of a Holiday Mode period's start or end"),
    ):
        for i in chats.index[mask.to_numpy(dtype=bool)]:
            flags[i] = [*flags[i], text]
    return flags


def appeal_pack(week: WeekResults, shop_id: str, key: bytes) -> AppealPack:
    """The pack for one shop of a stored week."""
    shops = {s["shop_id"]: s for s in week.doc["shops"]}
    shop = shops[shop_id]
    chats = week.chats.loc[week.chats["shop_id"].astype("string") == shop_id]
    counted = chats.loc[chats["status"].isin([LATE, UNRESPONDED])].reset_index(drop=True)
    periods = week.holiday_periods
    if len(periods):
        periods = periods.loc[periods["shop_id"].astype("string") == shop_id]
    flags = likely_disputes(counted, periods) if len(counted) else pd.Series(dtype=object)
    order = sorted(
        range(len(counted)), key=lambda i: (-len(flags[i]), counted["received_at_utc"].iloc[i])
    )
    zones = counted["timezone"] if len(counted) else pd.Series(dtype="string")
    text = {
        column: local_text(counted[column], zones) if len(counted) else pd.Series(dtype=object)
        for column in ("received_at_utc", "responded_at_utc", "deadline_at_utc")
    }
    timelines = [
        TimelineChat(
            conversation_id=str(counted["conversation_id"].iloc[i]),
            buyer=privacy.pseudonym(key, shop_id, counted["buyer_id"].iloc[i]),
            status=str(counted["status"].iloc[i]),
            received=str(text["received_at_utc"].iloc[i]),
            buyer_messages=int(counted["buyer_messages"].iloc[i]),
            responded=str(text["responded_at_utc"].iloc[i]),
            responder_role=_text(counted["responder_role"].iloc[i]),
            response_time=minutes_text(_number(counted["response_minutes"].iloc[i])),
            deadline=str(text["deadline_at_utc"].iloc[i]),
            holiday_mode=_periods_between(
                periods,
                counted["received_at_utc"].iloc[i],
                counted["deadline_at_utc"].iloc[i],
                str(zones.iloc[i]),
            ),
            flags=list(flags[i]),
        )
        for i in order
    ]
    return AppealPack(
        shop_id=shop_id,
        as_of=str(week.doc["as_of"]),
        shop=shop,
        policy=dict(week.doc.get("policy") or {}),
        policy_fingerprint=week.doc.get("policy_fingerprint"),
        cutoff=week.doc.get("cutoff"),
        chats=timelines,
        counts={
            "late": int((counted["status"] == LATE).sum()) if len(counted) else 0,
            "missed": int((counted["status"] == UNRESPONDED).sum()) if len(counted) else 0,
            "flagged": sum(1 for c in timelines if c.flags),
        },
    )


def _text(value: object) -> str:
    return "–" if value is None or pd.isna(value) else str(value)


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _periods_between(
    periods: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, zone: str
) -> list[str]:
    """Holiday Mode periods overlapping [start, end), as local text."""
    if periods.empty or pd.isna(start):
        return []
    stop = end if pd.notna(end) else start + pd.Timedelta(days=3650)
    touching = periods.loc[
        (periods["start"] < stop) & (periods["end"].isna() | (periods["end"] > start))
    ]
    return [
        f"{formats.local_time(p.start, zone)} to "
        + ("still on" if pd.isna(p.end) else formats.local_time(p.end, zone))
        for p in touching.itertuples(index=False)
    ]


def render(pack: AppealPack) -> str:
    """The pack as one self-contained HTML page (print it to PDF from a browser)."""
    return (
        environment()
        .get_template("appeal.html")
        .render(
            pack=pack,
            policy_text=json.dumps(pack.policy, indent=2, sort_keys=True),
            rate=pack.shop.get("response_rate_12h"),
        )
    )


def chats_csv(week: WeekResults, shop_id: str, key: bytes) -> str:
    """The shop's chats of the week (chats.csv's columns), buyers pseudonymised."""
    chats = week.chats.loc[week.chats["shop_id"].astype("string") == shop_id].copy()
    if len(chats):
        chats["buyer_id"] = [privacy.pseudonym(key, shop_id, b) for b in chats["buyer_id"]]
    for column in ("received_at_utc", "responded_at_utc", "deadline_at_utc"):
        if column in chats and len(chats):
            chats[column] = files.iso_text(chats[column])
    return files.csv_text(chats)


def file_stem(shop_id: str) -> str:
    """A file name for a shop id, whatever characters it holds."""
    return "appeal-" + (re.sub(r"[^A-Za-z0-9_.-]", "_", shop_id).strip(".") or "shop")


def write_pack(week: WeekResults, shop_id: str, key: bytes, folder: Path) -> tuple[Path, Path]:
    """Write the page and the CSV (atomically, owner-only); their paths."""
    pack = appeal_pack(week, shop_id, key)
    page, table = folder / f"{file_stem(shop_id)}.html", folder / f"{file_stem(shop_id)}.csv"
    files.write_atomic(page, render(pack), mode=files.PRIVATE_MODE)
    files.write_atomic(table, chats_csv(week, shop_id, key), mode=files.PRIVATE_MODE)
    return page, table
