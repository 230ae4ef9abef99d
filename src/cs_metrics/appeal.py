"""An appeal pack: one shop's evaluated week as evidence an investigator can follow.

Built from the stored week (OUT/<as-of>/) and the history, so it shows exactly what the Monday
run decided: the evaluation, the action and the policy, and for every chat counted late or
missed its timeline (received, buyer messages, the response and who sent it, Holiday Mode
periods that stopped the clock, the deadline). The chats most likely to be disputed come first.

With the data folder (`data`), read through the normal reading and checking path, each timeline
lists every message of the chat with its sender role, chats with a system message are flagged,
and TikTok's own figures of the week (when the connector stored them there) stand beside ours.
Buyers appear only as pseudonyms, and no message text is shown: a buyer's words can name them
in ways no list of identifiers catches.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cs_metrics import files, formats, privacy
from cs_metrics.chats import LATE, ON_TIME, UNRESPONDED
from cs_metrics.fetch.performance import daily_figures, tiktok_figures
from cs_metrics.pipeline import load
from cs_metrics.policy import Policy
from cs_metrics.report.build import environment
from cs_metrics.report.format import day_label, minutes_text, points_change
from cs_metrics.report.tables import local_text
from cs_metrics.week_files import WeekResults

CLOSE_TO_DEADLINE = pd.Timedelta(minutes=30)
"""A late answer this close after its deadline is listed among the likely disputes."""
NEAR_HOLIDAY_MODE = pd.Timedelta(hours=1)
"""A chat received this close to a Holiday Mode period's start or end is a likely dispute."""
SYSTEM = "system"
SYSTEM_FLAG = (
    "a system message came while the chat waited for its answer: system messages neither begin "
    "nor close a chat (docs/metrics.md, section 2), so it was not counted as one"
)
SECONDS = "%a %d %b %H:%M:%S"


@dataclass(frozen=True)
class TimelineEvent:
    """One line of a chat's timeline read from the data: a message, Holiday Mode, the deadline."""

    time: str
    """Local time, to the second."""
    utc: str
    """The same instant, ISO UTC (as chats.csv writes it)."""
    kind: str
    """buyer, seller, auto_reply, system, holiday_mode or deadline."""
    what: str


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
    received_utc: str = ""
    events: list[TimelineEvent] = field(default_factory=list)
    """Every message of the chat, Holiday Mode and the deadline, in time order (with --data)."""


@dataclass(frozen=True)
class FigureRow:
    """One figure of the week, ours beside TikTok's."""

    name: str
    ours: str
    tiktok: str
    difference: str
    """TikTok's minus ours."""


@dataclass(frozen=True)
class DayRow:
    """One local day: our response rate over the chats received that day beside TikTok's."""

    day: str
    assessed: int
    ours: str
    tiktok: str
    difference: str


@dataclass(frozen=True)
class Explaining:
    """Chats that may explain a difference, and why (none of them can be confirmed)."""

    reason: str
    conversations: list[str]


@dataclass(frozen=True)
class TikTokComparison:
    """TikTok's own figures of the week beside ours."""

    days: int
    total_days: int
    rows: list[FigureRow]
    by_day: list[DayRow]
    explaining: list[Explaining]


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
    data_used: bool = False
    """The timelines list every message (the pack was built with the data folder)."""
    tiktok: TikTokComparison | None = None
    tiktok_note: str | None = None
    """Why TikTok's figures are not shown (with the data folder only)."""
    unmatched: list[str] = field(default_factory=list)
    """Chats whose first buyer message the data folder does not hold as chats.csv does."""


def likely_disputes(
    chats: pd.DataFrame, periods: pd.DataFrame, system: np.ndarray | None = None
) -> pd.Series:
    """Per chat: the reasons it may be disputed, as a list of short texts (`system`: per chat,
    whether a system message came inside it; known only from the data folder)."""
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
        (pd.Series(system if system is not None else False, index=chats.index), SYSTEM_FLAG),
    ):
        for i in chats.index[mask.to_numpy(dtype=bool)]:
            flags[i] = [*flags[i], text]
    return flags


def appeal_pack(
    week: WeekResults, shop_id: str, key: bytes, data: Path | None = None, **reading: Any
) -> AppealPack:
    """The pack for one shop of a stored week (`data`: the data folder, for every message and
    TikTok's own figures)."""
    shops = {s["shop_id"]: s for s in week.doc["shops"]}
    shop = shops[shop_id]
    chats = week.chats.loc[week.chats["shop_id"].astype("string") == shop_id]
    counted = chats.loc[chats["status"].isin([LATE, UNRESPONDED])].reset_index(drop=True)
    periods = week.holiday_periods
    if len(periods):
        periods = periods.loc[periods["shop_id"].astype("string") == shop_id]
    zone = str(shop.get("timezone") or "UTC")
    messages = None
    if data is not None and len(counted):
        dataset = load(data, week_policy(week.doc), message_columns=(), **reading)
        messages = chat_messages(dataset.messages, counted, shop_id, _cutoff(week.doc))
    system = None if messages is None else system_inside(messages, len(counted))
    flags = likely_disputes(counted, periods, system) if len(counted) else pd.Series(dtype=object)
    events = (
        timeline_events(messages, counted, periods, zone)
        if messages is not None
        else [[] for _ in range(len(counted))]
    )
    order = sorted(
        range(len(counted)), key=lambda i: (-len(flags[i]), counted["received_at_utc"].iloc[i])
    )
    zones = counted["timezone"] if len(counted) else pd.Series(dtype="string")
    text = {
        column: local_text(counted[column], zones) if len(counted) else pd.Series(dtype=object)
        for column in ("received_at_utc", "responded_at_utc", "deadline_at_utc")
    }
    received_utc = files.iso_text(counted["received_at_utc"]) if len(counted) else pd.Series()
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
            received_utc=str(received_utc.iloc[i]),
            events=events[i],
        )
        for i in order
    ]
    tiktok, note = (None, None)
    if data is not None:
        tiktok, note = tiktok_comparison(data, week.doc, shop, chats, counted, system, zone)
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
        data_used=data is not None,
        tiktok=tiktok,
        tiktok_note=note,
        unmatched=unmatched_chats(messages, counted) if messages is not None else [],
    )


def week_policy(doc: dict) -> Policy:
    """The policy the week was evaluated under (its default zone reads naive timestamps)."""
    stored = doc.get("policy")
    return Policy.from_dict(stored, "metrics.json") if stored else Policy()


def _cutoff(doc: dict) -> pd.Timestamp | None:
    value = doc.get("cutoff")
    return pd.Timestamp(value).tz_convert("UTC") if value else None


def chat_messages(
    messages: pd.DataFrame, counted: pd.DataFrame, shop_id: str, cutoff: pd.Timestamp | None
) -> pd.DataFrame:
    """The messages of each counted chat, in the order of docs/metrics.md section 2: from its
    first buyer message to its response, or to the cut-off when it has none. `chat` is the
    chat's row in `counted`; `response_id` its response's message id."""
    spans = pd.DataFrame(
        {
            "conversation_id": counted["conversation_id"].astype("string"),
            "chat": np.arange(len(counted)),
            "start": counted["received_at_utc"],
            "stop": counted["responded_at_utc"].fillna(cutoff)
            if cutoff is not None
            else counted["responded_at_utc"],
            "response_id": counted["response_message_id"].astype("string"),
        }
    )
    mine = messages.loc[
        messages["shop_id"].eq(shop_id).to_numpy(bool)
        & messages["conversation_id"].isin(spans["conversation_id"]).to_numpy(bool),
        ["conversation_id", "message_id", "sender_role", "sent_at"],
    ]
    joined = mine.merge(spans, on="conversation_id")
    role = joined["sender_role"].astype("string")
    stop = joined["stop"].fillna(joined["start"] + pd.Timedelta(days=3650))
    # At the response's own instant, only buyer messages come before it (section 2's order).
    at_stop = (
        role.eq("buyer").fillna(False)
        | joined["message_id"].eq(joined["response_id"]).fillna(False)
        | joined["response_id"].isna()
    )
    inside = (joined["sent_at"] >= joined["start"]) & (
        (joined["sent_at"] < stop) | ((joined["sent_at"] == stop) & at_stop)
    )
    chosen = joined.loc[inside.to_numpy(bool)].assign(
        buyer_last=(~role.eq("buyer").fillna(False)).loc[inside.to_numpy(bool)]
    )
    return chosen.sort_values(
        ["chat", "sent_at", "buyer_last", "message_id"], kind="stable"
    ).reset_index(drop=True)


def system_inside(messages: pd.DataFrame, chats: int) -> np.ndarray:
    """Per chat: whether a system message came while it waited for its answer."""
    system = messages["sender_role"].astype("string").eq(SYSTEM).fillna(False).to_numpy(bool)
    found = np.zeros(chats, dtype=bool)
    found[messages.loc[system, "chat"].to_numpy("int64")] = True
    return found


def unmatched_chats(messages: pd.DataFrame, counted: pd.DataFrame) -> list[str]:
    """Chats whose first buyer message is not in the data at chats.csv's receipt time (the data
    folder changed since the Monday run, or is another one)."""
    first = messages.drop_duplicates("chat")
    good = first["sender_role"].astype("string").eq("buyer").fillna(False) & (
        first["sent_at"] == first["start"]
    )
    matched = np.zeros(len(counted), dtype=bool)
    matched[first.loc[good.to_numpy(bool), "chat"].to_numpy("int64")] = True
    return [str(c) for c in counted["conversation_id"].to_numpy()[~matched]]


def timeline_events(
    messages: pd.DataFrame, counted: pd.DataFrame, periods: pd.DataFrame, zone: str
) -> list[list[TimelineEvent]]:
    """Per chat of `counted`: its messages, the Holiday Mode periods before its deadline and
    the deadline, in time order."""
    role = messages["sender_role"].astype("string").fillna("")
    first = ~messages["chat"].duplicated()
    response = messages["message_id"].eq(messages["response_id"]).fillna(False)
    what = np.select(
        [
            (first & role.eq("buyer")).to_numpy(bool),
            role.eq("buyer").to_numpy(bool),
            (response & role.eq("auto_reply")).to_numpy(bool),
            response.to_numpy(bool),
            role.eq(SYSTEM).to_numpy(bool),
        ],
        [
            "Buyer message: the chat is received, the clock starts",
            "Buyer message (the same chat: the clock runs on from the first)",
            "Response by an auto-reply: closes the chat (the guidelines count it as a response)",
            "Response by the seller: closes the chat",
            "System message: neither begins nor closes a chat, the clock runs on",
        ],
        default="Message",
    )
    lines = [
        pd.DataFrame(
            {
                "chat": messages["chat"],
                "at": messages["sent_at"],
                "rank": np.where(role.eq("buyer"), 0, 1),
                "kind": role,
                "what": what,
            }
        ),
        pd.DataFrame(
            {
                "chat": np.arange(len(counted)),
                "at": counted["deadline_at_utc"],
                "rank": 3,
                "kind": "deadline",
                "what": "Deadline: 12 hours on the clock",
            }
        ).dropna(subset=["at"]),
    ]
    if len(periods):
        spans = pd.DataFrame(
            {
                "chat": np.arange(len(counted)),
                "received": counted["received_at_utc"],
                "deadline": counted["deadline_at_utc"],
            }
        )
        touching = spans.merge(periods[["start", "end"]], how="cross")
        stop = touching["deadline"].fillna(touching["received"] + pd.Timedelta(days=3650))
        touching = touching.loc[
            (touching["start"] < stop)
            & (touching["end"].isna() | (touching["end"] > touching["received"]))
        ]
        lines.append(
            pd.DataFrame(
                {
                    "chat": touching["chat"],
                    "at": touching["start"],
                    "rank": 2,
                    "kind": "holiday_mode",
                    "what": "Holiday Mode on: the clock stops",
                }
            )
        )
        ended = touching.dropna(subset=["end"])
        lines.append(
            pd.DataFrame(
                {
                    "chat": ended["chat"],
                    "at": ended["end"],
                    "rank": 2,
                    "kind": "holiday_mode",
                    "what": "Holiday Mode off: the clock runs again",
                }
            )
        )
    table = pd.concat([f for f in lines if len(f)], ignore_index=True)
    table = table.sort_values(["chat", "at", "rank"], kind="stable")
    table["time"] = table["at"].dt.tz_convert(zone).dt.strftime(SECONDS)
    table["utc"] = files.iso_text(table["at"])
    events: list[list[TimelineEvent]] = [[] for _ in range(len(counted))]
    for chat, group in table.groupby("chat", sort=False):  # a loop over the displayed chats
        events[int(chat)] = [
            TimelineEvent(time=t, utc=u, kind=str(k), what=str(w))
            for t, u, k, w in zip(
                group["time"], group["utc"], group["kind"], group["what"], strict=True
            )
        ]
    return events


def tiktok_comparison(
    data: Path,
    doc: dict,
    shop: dict,
    chats: pd.DataFrame,
    counted: pd.DataFrame,
    system: np.ndarray | None,
    zone: str,
) -> tuple[TikTokComparison | None, str | None]:
    """TikTok's own figures of the week beside ours, day by day too, and the counted chats that
    may explain a difference; or, when the store has none, why not."""
    shop_id = str(shop["shop_id"])
    first = dt.date.fromisoformat(str(doc["window_first_day"]))
    last = dt.date.fromisoformat(str(doc["window_last_day"]))
    figures = tiktok_figures(data, [shop_id], first, last).iloc[0]
    if int(figures["days"]) == 0:
        return None, (
            f"TikTok's own figures for {first} to {last} are not in {data.name}/ "
            "(the connector stores them in tiktok_performance.csv: docs/fetch.md)."
        )
    ours_rate = _number(shop.get("response_rate_12h"))
    ours_minutes = _number(shop.get("first_response_minutes_mean"))
    ours_satisfied = _number(shop.get("satisfaction_rate"))
    theirs = {k: _number(figures[k]) for k in PERFORMANCE_FIGURES}
    rows = [
        FigureRow(
            "Response rate (ours: within 12 hours)",
            _pct(ours_rate),
            _pct(theirs["response_rate"]),
            points_change(_minus(ours_rate, theirs["response_rate"])),
        ),
        FigureRow(
            "Mean first response time",
            minutes_text(ours_minutes),
            minutes_text(theirs["response_time_minutes"]),
            _minutes_change(_minus(ours_minutes, theirs["response_time_minutes"])),
        ),
        FigureRow(
            "Satisfaction rate",
            _pct(ours_satisfied),
            _pct(theirs["satisfaction_rate"]),
            points_change(_minus(ours_satisfied, theirs["satisfaction_rate"])),
        ),
    ]
    days = pd.date_range(first, last, freq="D").strftime("%Y-%m-%d")
    stored = daily_figures(data, [shop_id], first, last)
    tiktok_day = stored.set_index("day")["response_rate"].reindex(days)
    assessed = chats.loc[chats["status"].isin([ON_TIME, LATE, UNRESPONDED])]
    local_day = assessed["received_at_utc"].dt.tz_convert(zone).dt.strftime("%Y-%m-%d")
    per_day = (
        assessed.assign(day=local_day, on_time=assessed["status"].eq(ON_TIME))
        .groupby("day")
        .agg(assessed=("on_time", "size"), on_time=("on_time", "sum"))
        .reindex(days)
    )
    ours_day = per_day["on_time"] / per_day["assessed"]
    by_day = [
        DayRow(
            day=day_label(dt.date.fromisoformat(day)),
            assessed=int(0 if pd.isna(n) else n),
            ours=_pct(_number(o)),
            tiktok=_pct(_number(t)),
            difference=points_change(_minus(_number(o), _number(t))),
        )
        for day, n, o, t in zip(days, per_day["assessed"], ours_day, tiktok_day, strict=True)
    ]
    explaining = []
    if system is not None and system.any():
        explaining.append(
            Explaining(
                "counted late or missed by us with a system message while they waited: if "
                "TikTok's figure takes that message as an answer, it counts these chats answered",
                [str(c) for c in counted["conversation_id"].to_numpy()[system]],
            )
        )
    auto = counted["responder_role"].astype("string").eq("auto_reply").fillna(False)
    if auto.any():
        explaining.append(
            Explaining(
                "answered late by an auto-reply: if TikTok's figure treats auto-replies other "
                "than as the guidelines do (a response), these chats count differently there",
                [str(c) for c in counted.loc[auto.to_numpy(bool), "conversation_id"]],
            )
        )
    missing_days = set(tiktok_day.index[tiktok_day.isna()])
    if len(counted) and missing_days:
        counted_day = counted["received_at_utc"].dt.tz_convert(zone).dt.strftime("%Y-%m-%d")
        gap = counted_day.isin(missing_days).to_numpy(bool)
        if gap.any():
            explaining.append(
                Explaining(
                    "received on a day TikTok gave no figure for: TikTok's week leaves the day "
                    "out, ours counts these chats late or missed",
                    [str(c) for c in counted["conversation_id"].to_numpy()[gap]],
                )
            )
    return (
        TikTokComparison(
            days=int(figures["days"]),
            total_days=len(days),
            rows=rows,
            by_day=by_day,
            explaining=explaining,
        ),
        None,
    )


PERFORMANCE_FIGURES = ("response_rate", "response_time_minutes", "satisfaction_rate")


def _pct(value: float | None) -> str:
    return formats.percent(value, "–")


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _minutes_change(value: float | None) -> str:
    if value is None:
        return "–"
    return ("+" if value >= 0 else "−") + minutes_text(abs(value))


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


def write_pack(
    week: WeekResults,
    shop_id: str,
    key: bytes,
    folder: Path,
    data: Path | None = None,
    **reading: Any,
) -> tuple[Path, Path]:
    """Write the page and the CSV (atomically, owner-only); their paths. `reading`: the weekly
    run's reading options for `data` (`date_format`, `reject_mangled_ids`)."""
    pack = appeal_pack(week, shop_id, key, data, **reading)
    page, table = folder / f"{file_stem(shop_id)}.html", folder / f"{file_stem(shop_id)}.csv"
    files.write_atomic(page, render(pack), mode=files.PRIVATE_MODE)
    files.write_atomic(table, chats_csv(week, shop_id, key), mode=files.PRIVATE_MODE)
    return page, table
