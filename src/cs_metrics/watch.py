"""The week so far (SPEC 2-5 with the cut-off at `at`): which chats to answer now, and how many
of them it takes to end the week at the response-rate target.

The current week of a shop is the local Monday to Sunday that holds `at` in the shop's zone:
the week next Monday's evaluation will judge. The projection covers the chats received so far;
chats that arrive later can still move the rate either way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cs_metrics import chats, output
from cs_metrics.pipeline import Dataset, evaluate, shop_zones
from cs_metrics.policy import Policy

SAFE, NEEDS, LOST, NO_CHATS = "safe", "needs", "lost", "no_chats"
"""Verdicts: no pending chat needed; some must be answered in time; the target is out of reach
even if all are; no chat received yet this week."""


@dataclass(frozen=True)
class ShopWeek:
    """One shop's week so far."""

    shop_id: str
    timezone: str
    first_day: dt.date
    chats: int
    on_time: int
    late: int
    missed: int
    pending: int
    excluded_holiday_mode: int
    rate_so_far: float | None
    """On time / assessed (SPEC 5: pending chats count in no rate yet)."""
    rate_if_all_answered: float | None
    """The week's rate if every pending chat is answered in time."""
    rate_if_none_answered: float | None
    """The week's rate if no pending chat is answered in time."""
    needed: int
    """Pending chats that must be answered in time to end at the target (0 when safe; more
    than `pending` when lost)."""
    verdict: str


@dataclass(frozen=True)
class Watch:
    """Every shop's week so far and its pending chats, as known at `at`."""

    at: pd.Timestamp
    target: float
    limit_hours: float
    shops: list[ShopWeek]
    pending: pd.DataFrame
    """Pending chats, soonest deadline first: shop_id, conversation_id, buyer_id,
    received_at_utc, deadline_at_utc, clock_left_minutes, paused (the shop is in Holiday Mode
    at `at`, so the clock stands still), timezone."""


def current_mondays(zones: pd.Series, at: pd.Timestamp) -> pd.Series:
    """Per shop: the local Monday of the week that holds `at` in the shop's zone."""
    days = {zone: at.tz_convert(str(zone)).date() for zone in zones.unique()}
    return zones.map(lambda zone: days[zone] - dt.timedelta(days=days[zone].weekday()))


def needed_in_time(on_time: np.ndarray, total: np.ndarray, target: float) -> np.ndarray:
    """The fewest more on-time chats k with (on_time + k) / total >= target, by the same float
    comparison the Monday status uses (0 when already there; total 0 needs none)."""
    safe_total = np.maximum(total, 1)
    k = np.maximum(np.ceil(target * safe_total - on_time - 1e-9), 0).astype("int64")
    # Settle float edges exactly as `rate >= target` will decide them on Monday.
    k = np.where((k > 0) & ((on_time + k - 1) / safe_total >= target), k - 1, k)
    k = np.where((on_time + k) / safe_total < target, k + 1, k)
    return np.where(total == 0, 0, k)


def watch(
    dataset: Dataset, at: pd.Timestamp, policy: Policy, shop_ids: list[str] | None = None
) -> Watch:
    """The week so far of every shop (or those named), with the cut-off at `at`."""
    zones = shop_zones(dataset, shop_ids).set_index("shop_id")["timezone"]
    mondays = current_mondays(zones, at)
    metrics, pending = [], []
    for monday, ids in mondays.groupby(mondays).groups.items():
        found = evaluate(dataset, monday, monday + dt.timedelta(days=6), policy, at, list(ids))
        metrics.append(found.metrics.assign(first_day=monday))
        rows = output.chat_rows(found.chats)
        pending.append(rows.loc[rows["status"] == chats.PENDING])
    table = pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame()
    return Watch(
        at=at,
        target=policy.response_rate_target,
        limit_hours=policy.response_limit_hours,
        shops=shop_weeks(table, policy) if len(table) else [],
        pending=answer_now(pd.concat(pending, ignore_index=True), dataset, at, policy)
        if pending
        else pd.DataFrame(),
    )


def shop_weeks(table: pd.DataFrame, policy: Policy) -> list[ShopWeek]:
    """Counts, rates, projection and verdict per shop."""
    on = table["chats_responded_12h"].to_numpy("int64")
    late = table["chats_responded_late"].to_numpy("int64")
    missed = table["chats_unresponded"].to_numpy("int64")
    waiting = table["chats_pending"].to_numpy("int64")
    assessed = on + late + missed
    total = assessed + waiting
    needed = needed_in_time(on, total, policy.response_rate_target)
    verdict = np.select(
        [total == 0, needed == 0, needed > waiting], [NO_CHATS, SAFE, LOST], default=NEEDS
    )

    def share(part: np.ndarray, whole: np.ndarray) -> list[float | None]:
        return [None if w == 0 else float(p / w) for p, w in zip(part, whole, strict=True)]

    so_far, best, worst = share(on, assessed), share(on + waiting, total), share(on, total)
    return [
        ShopWeek(
            shop_id=str(row.shop_id),
            timezone=str(row.timezone),
            first_day=row.first_day,
            chats=int(row.chats),
            on_time=int(on[i]),
            late=int(late[i]),
            missed=int(missed[i]),
            pending=int(waiting[i]),
            excluded_holiday_mode=int(row.chats_excluded_holiday_mode),
            rate_so_far=so_far[i],
            rate_if_all_answered=best[i],
            rate_if_none_answered=worst[i],
            needed=int(needed[i]),
            verdict=str(verdict[i]),
        )
        for i, row in enumerate(table.itertuples(index=False))
    ]


def answer_now(
    pending: pd.DataFrame, dataset: Dataset, at: pd.Timestamp, policy: Policy
) -> pd.DataFrame:
    """Pending chats, soonest deadline first, with the time left on the 12-hour clock."""
    columns = ["shop_id", "conversation_id", "buyer_id", "received_at_utc", "deadline_at_utc"]
    out = pending[[*columns, "timezone"]].reset_index(drop=True)
    periods = chats.merged_periods(dataset.holiday_mode)
    shop = chats.period_shops(out["shop_id"], periods)
    started, _ = chats.clock(shop, chats.ticks(out["received_at_utc"]), periods)
    now = np.full(len(out), int(chats.ticks(pd.Series([at]))[0]), dtype="int64")
    running, paused = chats.clock(shop, now, periods)
    limit = policy.response_limit / pd.Timedelta(microseconds=1)
    out["clock_left_minutes"] = (limit - (running - started)) / chats.TICKS_PER_MINUTE
    out["paused"] = paused
    return out.sort_values(
        ["deadline_at_utc", "shop_id", "conversation_id"], na_position="last", kind="stable"
    ).reset_index(drop=True)
