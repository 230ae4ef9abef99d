"""The store's tables on disk: messages and ratings as Hive-partitioned Parquet, shops as CSV.

Messages live in `messages/shop_id=S/date=D/part-0.parquet` (D: the UTC day of `sent_at`). A
new batch is merged into the days it touches: the day's file is read, the batch appended, repeats
of a message id dropped (the first kept), and the file replaced atomically. A message id always
has the same `sent_at`, so it can only ever be in one day's file: re-fetching never duplicates.
The partition columns are not repeated inside the files (the readers take them from the path).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cs_metrics import files
from cs_metrics.policy import MARKET_TIMEZONES

PART = "part-0.parquet"
TEXT = pa.large_string()
INSTANT = pa.timestamp("us", tz="UTC")
MESSAGE_SCHEMA = pa.schema(
    [
        ("conversation_id", TEXT),
        ("message_id", TEXT),
        ("sender_role", TEXT),
        ("sent_at", INSTANT),
        ("sender_id", TEXT),
        ("message_type", TEXT),
        ("content", TEXT),
        ("api_sender_role", TEXT),
        ("api_is_visible", TEXT),
    ]
)
"""Every day file has exactly this schema (a day whose values are all missing included): the
readers read a shop's files as one dataset, which needs one schema."""
RATING_SCHEMA = pa.schema(
    [("conversation_id", TEXT), ("rating", pa.int64()), ("rated_at", INSTANT), ("session_id", TEXT)]
)
MESSAGE_FILE_COLUMNS = tuple(MESSAGE_SCHEMA.names)
RATING_FILE_COLUMNS = tuple(RATING_SCHEMA.names)


def write_frame(frame: pd.DataFrame, path: Path, schema: pa.Schema) -> None:
    """A frame as one Parquet file of `schema`, written atomically (temporary file, fsync,
    rename)."""
    buffer = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    pq.write_table(table, buffer)
    files.write_atomic(path, buffer.getvalue().to_pybytes())


def merge_messages(data_dir: Path, shop_id: str, batch: pd.DataFrame) -> int:
    """Merge a shop's new message rows into its day files; return how many were new."""
    if batch.empty:
        return 0
    rows = batch.reindex(columns=list(MESSAGE_FILE_COLUMNS))
    days = rows["sent_at"].dt.strftime("%Y-%m-%d")
    added = 0
    for day, part in rows.groupby(days, sort=True):  # I/O edge: one file per day touched
        path = data_dir / "messages" / f"shop_id={shop_id}" / f"date={day}" / PART
        old = read_part(path, MESSAGE_FILE_COLUMNS)
        merged = pd.concat([old, part], ignore_index=True) if len(old) else part
        merged = merged.drop_duplicates("message_id", keep="first")
        added += len(merged) - len(old)
        if len(merged) > len(old):
            ordered = merged.sort_values(["conversation_id", "sent_at"], kind="stable")
            write_frame(ordered, path, MESSAGE_SCHEMA)
    return added


def merge_ratings(data_dir: Path, shop_id: str, ratings: pd.DataFrame) -> int:
    """Merge a shop's ratings (one per session: the latest fetch of a session wins)."""
    path = data_dir / "ratings" / f"shop_id={shop_id}" / PART
    old = read_part(path, RATING_FILE_COLUMNS)
    new = ratings.reindex(columns=list(RATING_FILE_COLUMNS))
    merged = pd.concat([new, old], ignore_index=True) if len(old) else new
    merged = merged.drop_duplicates("session_id", keep="first")
    if merged.empty:
        return 0
    write_frame(merged.sort_values(["rated_at", "session_id"], kind="stable"), path, RATING_SCHEMA)
    return len(merged) - len(old)


def read_part(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """One partition file (an empty frame when there is none yet)."""
    if not path.exists():
        return pd.DataFrame(columns=list(columns))
    return pq.read_table(path).to_pandas().reindex(columns=list(columns))


def shops_table(api_shops: list[dict[str, object]], existing: pd.DataFrame) -> pd.DataFrame:
    """The shops table from Get Authorized Shops: region as market, the market's zone as timezone
    unless the store's shops file already sets one (a hand-edited zone is kept)."""
    api = pd.DataFrame(api_shops).reindex(columns=["id", "name", "region", "cipher"])
    table = pd.DataFrame(
        {
            "shop_id": api["id"].astype("string"),
            "name": api["name"].astype("string"),
            "market": api["region"].astype("string").str.upper(),
            "cipher": api["cipher"].astype("string"),
        }
    )
    kept = existing.reindex(columns=["shop_id", "timezone"]).astype("string")
    kept = kept.loc[kept["timezone"].fillna("").str.strip() != ""].drop_duplicates("shop_id")
    zones = table["shop_id"].map(kept.set_index("shop_id")["timezone"]).astype("string")
    table["timezone"] = zones.fillna(table["market"].map(MARKET_TIMEZONES)).astype("string")
    earlier = existing.loc[~existing["shop_id"].astype("string").isin(table["shop_id"])]
    # A shop no longer authorised keeps its row: its stored messages still need their zone.
    merged = pd.concat([table, earlier.reindex(columns=table.columns).astype("string")])
    return merged.sort_values("shop_id").reset_index(drop=True)[
        ["shop_id", "name", "market", "timezone", "cipher"]
    ]


def read_shops(data_dir: Path) -> pd.DataFrame:
    """The store's shops table (empty before the first sync)."""
    path = data_dir / "shops.csv"
    if not path.exists():
        return pd.DataFrame(columns=["shop_id", "name", "market", "timezone", "cipher"])
    return pd.read_csv(path, dtype="string", keep_default_na=False)


def write_shops(data_dir: Path, shops: pd.DataFrame) -> None:
    """Write the shops table atomically."""
    files.write_atomic(data_dir / "shops.csv", files.csv_bytes(shops))
