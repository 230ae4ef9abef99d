"""The watch as a small self-contained HTML page, in the report's look (no scripts, nothing
fetched, everything escaped)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from cs_metrics import privacy, watch
from cs_metrics.report.build import environment
from cs_metrics.report.format import minutes_text
from cs_metrics.report.tables import local_text

VERDICT_TEXT = {
    watch.SAFE: "safe: the target holds even if no pending chat is answered in time",
    watch.NEEDS: "answer {needed} of the {pending} pending chats in time to stay at the target",
    watch.LOST: "below the target even if every pending chat is answered in time: only chats "
    "still to come this week, answered in time, can lift it",
    watch.NO_CHATS: "nothing to assess yet this week",
}
VERDICT_CSS = {watch.SAFE: "ok", watch.NEEDS: "warn", watch.LOST: "bad", watch.NO_CHATS: "muted"}


def verdict_text(shop: watch.ShopWeek) -> str:
    """What it takes, in words."""
    text = VERDICT_TEXT[shop.verdict].format(needed=shop.needed, pending=shop.pending)
    if shop.excluded_holiday_mode:
        text += f" ({shop.excluded_holiday_mode} chat(s) received in Holiday Mode count in no rate)"
    return text


@dataclass(frozen=True)
class PendingRow:
    """A pending chat as the page lists it."""

    shop_id: str
    conversation_id: str
    buyer: str
    received: str
    deadline: str
    left: str
    paused: bool


def pending_rows(found: watch.Watch, key: bytes) -> list[PendingRow]:
    """The answer-now list with buyers pseudonymised and times in each shop's zone."""
    table = found.pending
    if table.empty:
        return []
    zones = table["timezone"]
    received = local_text(table["received_at_utc"], zones)
    deadline = local_text(table["deadline_at_utc"], zones)
    return [
        PendingRow(
            shop_id=str(row.shop_id),
            conversation_id=str(row.conversation_id),
            buyer=privacy.pseudonym(key, str(row.shop_id), row.buyer_id),
            received=str(received.iloc[i]),
            deadline=str(deadline.iloc[i]),
            left=minutes_text(row.clock_left_minutes),
            paused=bool(row.paused),
        )
        for i, row in enumerate(table.itertuples(index=False))
    ]


def render(found: watch.Watch, key: bytes) -> str:
    """The watch page."""
    shops = sorted(found.shops, key=lambda s: (_urgency(s.verdict), -s.needed, s.shop_id))
    return (
        environment()
        .get_template("watch.html")
        .render(
            at=found.at.tz_convert("UTC").strftime("%a %d %b %Y %H:%M UTC"),
            target=found.target,
            limit_hours=f"{found.limit_hours:g}",
            shops=[(s, verdict_text(s), VERDICT_CSS[s.verdict]) for s in shops],
            pending=pending_rows(found, key),
        )
    )


def _urgency(verdict: str) -> int:
    return [watch.NEEDS, watch.LOST, watch.SAFE, watch.NO_CHATS].index(verdict)


def pending_frame(found: watch.Watch, key: bytes) -> pd.DataFrame:
    """The answer-now list as a table for people and machines (buyers pseudonymised)."""
    rows = pending_rows(found, key)
    return pd.DataFrame(
        [
            {
                "shop_id": r.shop_id,
                "conversation_id": r.conversation_id,
                "buyer": r.buyer,
                "received": r.received,
                "deadline": r.deadline,
                "clock_left": r.left,
                "paused_by_holiday_mode": r.paused,
            }
            for r in rows
        ],
        columns=[
            "shop_id",
            "conversation_id",
            "buyer",
            "received",
            "deadline",
            "clock_left",
            "paused_by_holiday_mode",
        ],
    )
