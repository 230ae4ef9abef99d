"""TikTok's own figures and ratings: Get Customer Service Performance and Search Sessions.

Both are extras: a shop whose app may not call them still gets its messages, and the run names
what it could not fetch. `tiktok_figures` reads the stored figures back for the report.

- Performance: one row per shop and day, `tiktok_performance.csv` in the store (`shop_id`, `day`,
  `response_rate` (0..1), `response_time_minutes`, `satisfaction_rate` (0..1)); a day fetched
  again replaces its row (TikTok revises recent days).
- Ratings: each session with a satisfaction score becomes a rating of its conversation.
  `rated_at` is the score's own time (`satisfaction.rate_time`) when the API gives it, else the
  session's end, else its start: the moment the buyer can at the earliest have rated.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics import files
from cs_metrics.fetch import store
from cs_metrics.fetch.client import NO_ACCESS_CODES, ApiError, Client, Unavailable
from cs_metrics.fetch.outcome import Missing, SyncReport
from cs_metrics.fetch.state import ShopState
from cs_metrics.importers.tiktok_api import id_texts, unix_instants

PERFORMANCE_FILE = "tiktok_performance.csv"
PERFORMANCE_PATH = "/customer_service/202407/performance"
SESSIONS_PATH = "/customer_service/202407/sessions/search"
PERFORMANCE_COLUMNS = (
    "shop_id",
    "day",
    "response_rate",
    "response_time_minutes",
    "satisfaction_rate",
)
SESSION_PAGE_SIZE = 50
FIGURE_COLUMNS = ("response_rate", "response_time_minutes", "satisfaction_rate")
REVISED_DAYS = 2
"""Days before a sync's start whose performance figures are fetched again."""


def fetch_extras(
    client: Client,
    data_dir: Path,
    shop_id: str,
    cipher: str,
    entry: ShopState,
    overlap: pd.Timedelta,
    report: SyncReport,
) -> None:
    """Fetch a shop's performance days and rated sessions from where the last fetch of them
    stopped (less `overlap`; the horizon the first time) to its complete-until.

    An app without access to these APIs gets a note, not a failure: they are extras. Any other
    failure is named, and the same span is asked for again next time.
    """
    if entry.extras_until:
        first = pd.Timestamp(entry.extras_until).tz_convert("UTC") - overlap
    else:
        first = pd.Timestamp(entry.horizon or entry.complete_until).tz_convert("UTC")
    last = pd.Timestamp(entry.complete_until).tz_convert("UTC")
    # TikTok revises the figures of recent days: fetch the days before `first` again too.
    revised = (first - pd.Timedelta(days=REVISED_DAYS)).date()
    complete = True
    try:
        days = performance_rows(client, cipher, shop_id, revised, last.date())
        merge_performance(data_dir, days)
    except (ApiError, Unavailable) as exc:
        complete &= _extra_failed(exc, shop_id, "Get Customer Service Performance", report)
    try:
        sessions = list(session_items(client, cipher, first, last))
        report.ratings_added += store.merge_ratings(data_dir, shop_id, session_ratings(sessions))
    except (ApiError, Unavailable) as exc:
        complete &= _extra_failed(exc, shop_id, "Search Sessions (ratings)", report)
    if complete:
        entry.extras_until = entry.complete_until


def _extra_failed(exc: Exception, shop_id: str, what: str, report: SyncReport) -> bool:
    """Name a failed extra; True when it is only missing access (nothing to fetch again)."""
    if isinstance(exc, ApiError) and exc.code in NO_ACCESS_CODES:
        report.notes.append(f"shop {shop_id}: {what} not fetched: {exc}")
        return True
    report.missing.append(Missing(shop_id, what, str(exc)))
    return False


def performance_rows(
    client: Client, cipher: str, shop_id: str, first: dt.date, last: dt.date
) -> pd.DataFrame:
    """TikTok's daily figures of a shop for the days first..last."""
    data = client.get(
        PERFORMANCE_PATH,
        {"start_date": first.isoformat(), "end_date": last.isoformat()},
        cipher,
    )
    items = [d for d in data.get("performance") or [] if isinstance(d, dict)]
    raw = pd.DataFrame(items).reindex(
        columns=["date", "response_rate", "response_time_seconds", "satisfaction_rate"]
    )
    return pd.DataFrame(
        {
            "shop_id": pd.Series([shop_id] * len(raw), dtype="string"),
            "day": raw["date"].astype("string"),
            "response_rate": pd.to_numeric(raw["response_rate"], errors="coerce"),
            "response_time_minutes": pd.to_numeric(raw["response_time_seconds"], errors="coerce")
            / 60,
            "satisfaction_rate": pd.to_numeric(raw["satisfaction_rate"], errors="coerce"),
        }
    )


def merge_performance(data_dir: Path, rows: pd.DataFrame) -> None:
    """Replace the stored rows of the same shop and day; write the file atomically."""
    old = read_performance(data_dir)
    merged = pd.concat([rows, old], ignore_index=True) if len(old) else rows
    merged = merged.drop_duplicates(["shop_id", "day"], keep="first")
    merged = merged.sort_values(["shop_id", "day"]).reset_index(drop=True)
    files.write_atomic(data_dir / PERFORMANCE_FILE, files.csv_bytes(merged))


def read_performance(data_dir: Path) -> pd.DataFrame:
    """The stored performance rows (empty when none were fetched)."""
    path = data_dir / PERFORMANCE_FILE
    if not path.exists():
        return pd.DataFrame(
            {
                c: pd.Series(dtype="string" if c in ("shop_id", "day") else "float64")
                for c in PERFORMANCE_COLUMNS
            }
        )
    return pd.read_csv(path, dtype={"shop_id": "string", "day": "string"})


def daily_figures(
    data_dir: Path, shop_ids: list[str], first_day: dt.date, last_day: dt.date
) -> pd.DataFrame:
    """TikTok's stored daily figures of the shops named over first_day..last_day: one row per
    shop and day with at least one figure (PERFORMANCE_COLUMNS).

    The file may have been edited by hand: a value that is not a number is no figure, a missing
    column has none, an empty file has no rows, and of two rows of one shop and day the later
    counts; none of these fails the week.
    """
    try:
        rows = read_performance(data_dir)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        rows = pd.DataFrame(columns=list(PERFORMANCE_COLUMNS))
    rows = rows.reindex(columns=list(PERFORMANCE_COLUMNS))
    figures_read = rows[list(FIGURE_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    rows = rows.assign(
        shop_id=rows["shop_id"].astype("string"),
        day=rows["day"].astype("string"),
        **{column: figures_read[column] for column in FIGURE_COLUMNS},
    )
    first, last = (pd.Timestamp(d).strftime("%Y-%m-%d") for d in (first_day, last_day))
    inside = rows["day"].between(first, last).fillna(False)
    given = rows[list(FIGURE_COLUMNS)].notna().any(axis=1)
    chosen = rows.loc[(inside & given & rows["shop_id"].isin(shop_ids)).to_numpy(dtype=bool)]
    return chosen.drop_duplicates(["shop_id", "day"], keep="last").reset_index(drop=True)


def tiktok_figures(
    data_dir: Path, shop_ids: list[str], first_day: dt.date, last_day: dt.date
) -> pd.DataFrame:
    """TikTok's own figures per shop over first_day..last_day, for setting beside ours.

    One row per shop named: `days` with at least one figure, the mean daily `response_rate`
    and `satisfaction_rate` (0..1) and `response_time_minutes`; missing where TikTok gave none.
    A folder without TikTok's figures (not a fetched store, or fetched with `--no-extras`)
    gives every shop 0 days.
    """
    chosen = daily_figures(data_dir, shop_ids, first_day, last_day)
    figures = chosen.groupby("shop_id").agg(
        days=("day", "nunique"),
        response_rate=("response_rate", "mean"),
        response_time_minutes=("response_time_minutes", "mean"),
        satisfaction_rate=("satisfaction_rate", "mean"),
    )
    figures = figures.reindex(pd.Index(shop_ids, name="shop_id", dtype="string"))
    figures["days"] = figures["days"].fillna(0).astype("int64")
    return figures.reset_index()


def session_items(
    client: Client, cipher: str, first: pd.Timestamp, last: pd.Timestamp
) -> list[dict[str, Any]]:
    """Sessions that started in first..last (Search Sessions pages by token)."""
    sessions: list[dict[str, Any]] = []
    token = ""
    while True:
        body: dict[str, Any] = {
            "create_time_ge": int(first.timestamp()),
            "create_time_lt": int(last.timestamp()) + 1,
        }
        params = {"page_size": str(SESSION_PAGE_SIZE)}
        if token:
            params["page_token"] = token
        data = client.post(SESSIONS_PATH, body, params, cipher)
        sessions.extend(s for s in data.get("sessions") or [] if isinstance(s, dict))
        new_token = str(data.get("next_page_token") or "")
        if not new_token or new_token == token:
            return sessions
        token = new_token


def session_ratings(sessions: list[dict[str, Any]]) -> pd.DataFrame:
    """Ratings of the sessions that have a satisfaction score (rated_at: see the module)."""
    frame = pd.json_normalize(sessions) if sessions else pd.DataFrame()
    frame = frame.reindex(
        columns=[
            "id",
            "conversation_id",
            "satisfaction.score",
            "satisfaction.rate_time",
            "end_time",
            "start_time",
        ]
    )
    rated_at = (
        unix_instants(frame["satisfaction.rate_time"])
        .fillna(unix_instants(frame["end_time"]))
        .fillna(unix_instants(frame["start_time"]))
    )
    ratings = pd.DataFrame(
        {
            "conversation_id": id_texts(frame["conversation_id"]),
            "rating": pd.to_numeric(frame["satisfaction.score"], errors="coerce").astype("Int64"),
            "rated_at": rated_at,
            "session_id": id_texts(frame["id"]),
        }
    )
    return ratings.loc[ratings.notna().all(axis=1)].reset_index(drop=True)
