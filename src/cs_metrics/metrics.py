"""Per-shop metrics over a window of the shop's local days (SPEC 4, 5)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from cs_metrics.arrow_text import id_numbers, rows_kept, text_codes
from cs_metrics.chats import (
    EXCLUDED,
    LATE,
    ON_TIME,
    PENDING,
    TICKS_PER_MINUTE,
    UNRESPONDED,
    clock,
    merged_periods,
    period_shops,
    positions,
    shop_positions,
    ticks,
    within_bounds,
)
from cs_metrics.timestamps import INSTANT

COUNT_FIELDS = (
    "chats",
    "chats_assessed",
    "chats_excluded_holiday_mode",
    "chats_pending",
    "chats_responded_12h",
    "chats_responded_late",
    "chats_unresponded",
    "chats_responded",
)
RATE_FIELDS = (
    "response_rate_12h",
    "first_response_minutes_mean",
    "first_response_minutes_median",
    "first_response_minutes_p90",
)
RATING_FIELDS = ("ratings", "ratings_satisfied", "satisfaction_rate")
METRIC_FIELDS = (*COUNT_FIELDS, *RATE_FIELDS, *RATING_FIELDS)
"""The SPEC 5 fields, in output order."""


def local_midnights(zones: pd.Series, day: dt.date) -> pd.Series:
    """Each zone's first instant of `day` (a midnight that does not exist moves forward)."""
    out = pd.Series(pd.NaT, index=zones.index, dtype=INSTANT)
    naive = pd.DatetimeIndex([pd.Timestamp(day)])
    for zone, idx in zones.groupby(zones, sort=False).groups.items():
        local = naive.tz_localize(
            str(zone), ambiguous=np.array([True]), nonexistent="shift_forward"
        )
        out.loc[idx] = local.tz_convert("UTC")[0]
    return out


def window_bounds(shops: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Each shop's window [start 00:00, day after end 00:00) in its own zone, as UTC instants."""
    zones = shops["timezone"]
    return pd.DataFrame(
        {
            "shop_id": shops["shop_id"],
            "timezone": zones,
            "window_start": local_midnights(zones, start),
            "window_end": local_midnights(zones, end + dt.timedelta(days=1)),
        }
    )


def in_window(frame: pd.DataFrame, at: str, bounds: pd.DataFrame) -> pd.DataFrame:
    """Rows of `frame` whose `at` instant falls in their shop's window."""
    return rows_kept(frame, window_mask(frame, at, bounds))


def window_mask(frame: pd.DataFrame, at: str, bounds: pd.DataFrame) -> np.ndarray:
    """Whether each row's `at` instant falls in its shop's window."""
    position = shop_positions(pd.Index(bounds["shop_id"]), frame)
    return within_bounds(position, ticks(frame[at]), bounds)


def counted_ratings(
    ratings: pd.DataFrame,
    holiday_mode: pd.DataFrame,
    bounds: pd.DataFrame,
    cutoff: pd.Timestamp | None,
) -> pd.DataFrame:
    """Ratings counted in the window: known at the cut-off, not in Holiday Mode, latest only."""
    r = ratings if cutoff is None else ratings.loc[ratings["rated_at"] <= cutoff]
    r = in_window(r, "rated_at", bounds)
    periods = merged_periods(holiday_mode)
    _, in_holiday = clock(period_shops(r["shop_id"], periods), ticks(r["rated_at"]), periods)
    r = r.loc[~in_holiday]
    # By instant, then place in the file (row numbers are distinct): the latest rating last.
    r = r.take(np.lexsort((r["row_number"].to_numpy(), ticks(r["rated_at"]))))
    return r.loc[~_repeated_later(r["shop_id"], r["conversation_id"])]


def _repeated_later(shop_id: pd.Series, conversation_id: pd.Series) -> np.ndarray:
    """Which rows' (shop_id, conversation_id) a later row repeats (missing equals missing): the
    pairs as one integer each, hashed as numbers rather than as two texts."""
    shop = text_codes(shop_id)[0]
    conversation = pd.factorize(id_numbers(conversation_id))[0]
    pair = shop * (int(conversation.max(initial=-1)) + 1) + conversation
    return pd.Series(pair).duplicated(keep="last").to_numpy()


def chat_counts(window_chats: pd.DataFrame, shop_ids: pd.Index) -> pd.DataFrame:
    """Chat counts by status per shop, with the SPEC 5 totals."""
    statuses = [ON_TIME, LATE, UNRESPONDED, PENDING, EXCLUDED]
    shop = positions(shop_ids, window_chats["shop_id"])
    status = positions(pd.Index(statuses), window_chats["status"])
    counted = (shop >= 0) & (status >= 0)
    cells = np.bincount(
        shop[counted] * len(statuses) + status[counted], minlength=len(shop_ids) * len(statuses)
    )
    counts = pd.DataFrame(cells.reshape(len(shop_ids), len(statuses)), columns=statuses)
    out = pd.DataFrame(index=shop_ids)
    out["chats_responded_12h"] = counts[ON_TIME].to_numpy()
    out["chats_responded_late"] = counts[LATE].to_numpy()
    out["chats_unresponded"] = counts[UNRESPONDED].to_numpy()
    out["chats_pending"] = counts[PENDING].to_numpy()
    out["chats_excluded_holiday_mode"] = counts[EXCLUDED].to_numpy()
    out["chats_responded"] = out["chats_responded_12h"] + out["chats_responded_late"]
    out["chats_assessed"] = out["chats_responded"] + out["chats_unresponded"]
    out["chats"] = out["chats_assessed"] + out["chats_excluded_holiday_mode"] + out["chats_pending"]
    return out


def response_time_stats(window_chats: pd.DataFrame, shop_ids: pd.Index) -> pd.DataFrame:
    """Mean, median and p90 (linear interpolation) of response minutes of responded chats."""
    shop = positions(shop_ids, window_chats["shop_id"])
    responded = window_chats["status"].isin([ON_TIME, LATE]).to_numpy() & (shop >= 0)
    shop = shop[responded]
    minutes = pd.Series(
        window_chats["response_minutes"].to_numpy(dtype="float64")[responded]
    ).groupby(shop)
    whole, rest = np.divmod(
        window_chats["response_ticks"].to_numpy(dtype="int64", na_value=0)[responded],
        TICKS_PER_MINUTE,
    )
    sums = pd.DataFrame({"whole": whole, "rest": rest}).groupby(shop).sum()
    # Exact integer sums make the mean independent of row order.
    mean = (sums["whole"] + sums["rest"] / TICKS_PER_MINUTE) / minutes.size()
    stats = pd.DataFrame(
        {
            "first_response_minutes_mean": mean,
            "first_response_minutes_median": minutes.median(),
            "first_response_minutes_p90": minutes.quantile(0.9),
        }
    )
    stats = stats.reindex(pd.RangeIndex(len(shop_ids)))
    stats.index = shop_ids
    return stats


def rating_stats(rated: pd.DataFrame, shop_ids: pd.Index, satisfied_min: int) -> pd.DataFrame:
    """Counted ratings, satisfied ratings and their share per shop."""
    satisfied = (rated["rating"] >= satisfied_min).astype("int64")
    grouped = satisfied.groupby(rated["shop_id"])
    out = pd.DataFrame({"ratings": grouped.size(), "ratings_satisfied": grouped.sum()})
    out = out.reindex(shop_ids).fillna(0).astype("int64")
    out["satisfaction_rate"] = (out["ratings_satisfied"] / out["ratings"]).where(out["ratings"] > 0)
    return out


def shop_metrics(
    window_chats: pd.DataFrame, rated: pd.DataFrame, shop_ids: pd.Index, satisfied_min: int
) -> pd.DataFrame:
    """The SPEC 5 fields, one row per shop in `shop_ids`."""
    out = chat_counts(window_chats, shop_ids)
    out["response_rate_12h"] = (out["chats_responded_12h"] / out["chats_assessed"]).where(
        out["chats_assessed"] > 0
    )
    out = out.join(response_time_stats(window_chats, shop_ids))
    out = out.join(rating_stats(rated, shop_ids, satisfied_min))
    out.index.name = "shop_id"
    return out[list(METRIC_FIELDS)].reset_index()
