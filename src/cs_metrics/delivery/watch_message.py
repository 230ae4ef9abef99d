"""The watch as a message: sent only for the shops at risk, over the weekly job's channels.

A shop is at risk when at least one pending chat must be answered in time for its week to end
at or above the target, or when the target is already out of reach. A safe shop, or one with no
chat yet, is not mentioned; when no shop is at risk there is nothing to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from cs_metrics import files, formats, watch
from cs_metrics.delivery.message import slack_escaped
from cs_metrics.report.format import minutes_text
from cs_metrics.report.tables import local_text
from cs_metrics.report.watch_page import verdict_text

AT_RISK = (watch.NEEDS, watch.LOST)
"""Verdicts that are sent: some pending chats must be answered in time, or the week is lost."""
SUBJECT_SHOPS = 3
"""Shops named in a subject line (the soonest deadlines); the rest are counted."""


@dataclass(frozen=True)
class RiskRow:
    """One shop at risk: where it stands and how soon its first pending chat runs out."""

    shop_id: str
    verdict: str
    rate_so_far: float | None
    pending: int
    needed: int
    what_it_takes: str
    soonest_deadline: str | None
    """The soonest deadline of its pending chats, in the shop's local time (None: none)."""
    soonest_deadline_utc: str | None
    clock_left_minutes: float | None
    """Time left on that chat's clock (None: no pending chat)."""
    paused: bool
    """The shop is in Holiday Mode at the watched moment: its clocks stand still."""

    @property
    def pressure(self) -> str:
        """`first deadline in 2 h 15 min`, for a subject line."""
        if self.soonest_deadline is None:
            return "no pending chat"
        left = f"{minutes_text(self.clock_left_minutes)} left"
        if self.clock_left_minutes is not None and self.clock_left_minutes <= 0:
            left = "deadline passed"
        paused = ", clock stopped by Holiday Mode" if self.paused else ""
        return f"first deadline {self.soonest_deadline} ({left}{paused})"

    @property
    def short(self) -> str:
        """`NEEDS: answer 3 of 4 in time` or `LOST: already lost`."""
        if self.verdict == watch.LOST:
            return f"{self.shop_id}: already lost"
        return f"{self.shop_id}: answer {self.needed} of {self.pending} in time"


@dataclass(frozen=True)
class WatchMessage:
    """The content of every channel for one watch run with a shop at risk."""

    at: str
    """The watched moment, ISO UTC."""
    target: float
    limit_hours: str
    rows: tuple[RiskRow, ...]
    page: str
    """The watch page (every shop, the answer-now list), self-contained HTML."""

    @property
    def subject(self) -> str:
        """E.g. `cs-metrics watch: 1 shop at risk: NEEDS: answer 3 of 4 in time, first
        deadline Thu 26 Nov 19:59 (7 h 59 min left)`."""
        count = len(self.rows)
        named = self.rows[:SUBJECT_SHOPS]
        shops = "; ".join(f"{r.short}, {r.pressure}" for r in named)
        if count > len(named):
            shops += f"; and {count - len(named)} more"
        return f"cs-metrics watch: {count} shop{'s' if count != 1 else ''} at risk: {shops}"


def risk_rows(found: watch.Watch) -> list[RiskRow]:
    """The shops at risk, the one whose first pending chat runs out soonest first."""
    risky = [s for s in found.shops if s.verdict in AT_RISK]
    if not risky:
        return []
    pending = found.pending
    first = (
        pending.drop_duplicates("shop_id", keep="first").set_index("shop_id")
        if len(pending)
        else pd.DataFrame(
            columns=["deadline_at_utc", "timezone", "clock_left_minutes", "paused"],
            index=pd.Index([], name="shop_id"),
        )
    )
    first = first.reindex(pd.Index([s.shop_id for s in risky], name="shop_id"))
    deadline_utc = pd.to_datetime(first["deadline_at_utc"], utc=True)
    zones = pd.Series([s.timezone for s in risky], index=first.index)
    local = local_text(deadline_utc, zones)
    iso = files.iso_text(deadline_utc)
    rows = [
        RiskRow(
            shop_id=s.shop_id,
            verdict=s.verdict,
            rate_so_far=s.rate_so_far,
            pending=s.pending,
            needed=s.needed,
            what_it_takes=verdict_text(s),
            soonest_deadline=None if pd.isna(deadline_utc.iloc[i]) else str(local.iloc[i]),
            soonest_deadline_utc=None if pd.isna(deadline_utc.iloc[i]) else str(iso.iloc[i]),
            clock_left_minutes=_number(first["clock_left_minutes"].iloc[i]),
            paused=bool(first["paused"].iloc[i]) if pd.notna(first["paused"].iloc[i]) else False,
        )
        for i, s in enumerate(risky)
    ]
    return sorted(
        rows,
        key=lambda r: (
            r.clock_left_minutes is None,
            r.clock_left_minutes or 0.0,
            r.shop_id,
        ),
    )


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def watch_message(found: watch.Watch, page: str) -> WatchMessage | None:
    """The message of a watch run; None when no shop is at risk (nothing is sent)."""
    rows = risk_rows(found)
    if not rows:
        return None
    return WatchMessage(
        at=files.iso_utc(found.at) or "",
        target=found.target,
        limit_hours=f"{found.limit_hours:g}",
        rows=tuple(rows),
        page=page,
    )


def watch_text(message: WatchMessage) -> str:
    """The plain-text part: each shop at risk, its rate so far, what it takes, its first
    deadline."""
    lines = [
        f"cs-metrics watch as of {message.at}: the week so far, "
        f"{message.limit_hours}-hour response rate target {formats.percent(message.target)}",
        "",
        "Shops at risk (answer their pending chats soonest deadline first):",
    ]
    for r in message.rows:
        lines.append(
            f"- {r.shop_id}: rate so far {formats.percent(r.rate_so_far)}, {r.pending} pending; "
            f"{r.what_it_takes}; {r.pressure}"
        )
    lines += [
        "",
        "The full watch (every shop, every pending chat with its conversation id) is the HTML "
        "part of this e-mail. Buyers are pseudonymised.",
        "",
    ]
    return "\n".join(lines)


def watch_webhook_payload(message: WatchMessage) -> dict[str, Any]:
    """The JSON body: Slack's `text` plus the structured figures of each shop at risk."""
    lines = [message.subject] + [
        f"• {r.shop_id}: rate so far {formats.percent(r.rate_so_far)}, {r.pending} pending, "
        f"{r.what_it_takes}"
        for r in message.rows
    ]
    return {
        "text": "\n".join(slack_escaped(line) for line in lines),
        "kind": "watch",
        "at": message.at,
        "response_rate_target": message.target,
        "shops_at_risk": [
            {
                "shop_id": r.shop_id,
                "verdict": r.verdict,
                "rate_so_far": r.rate_so_far,
                "pending": r.pending,
                "needed": r.needed,
                "what_it_takes": r.what_it_takes,
                "soonest_deadline": r.soonest_deadline_utc,
                "clock_left_minutes": r.clock_left_minutes,
                "clock_paused_by_holiday_mode": r.paused,
            }
            for r in message.rows
        ],
    }
