"""The pandas stages per partition of the messages, each shop's rows in one partition.

Shared by the engines that do not hold every message at once: Dask (`distributed`, a partition
is a shuffled Dask partition) and disk (`spill`, a partition is a bucket file). Each partition's
rows are settled for duplicates in file order and turned into the metrics of its shops with the
functions `pipeline.evaluate` uses; the small tables, counts and warnings are put together here
so that both engines give what `pipeline.load` gives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cs_metrics import validate
from cs_metrics.chats import build_chats
from cs_metrics.metrics import counted_ratings, in_window, shop_metrics
from cs_metrics.pipeline import Dataset, Evaluation
from cs_metrics.policy import Policy
from cs_metrics.read import ROW
from cs_metrics.validate import Checked, InputCounts, MessageRows

DUPLICATE = "_duplicate"
"""Column set on message rows whose message_id repeats an earlier row of the same shop."""


def flagged_duplicates(part: pd.DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    """A partition's rows in file order, DUPLICATE set on repeats (and conversation keys made)."""
    part = part.astype({c: d for c, d in dtypes.items() if c in part.columns})
    part = part.sort_values(ROW, kind="stable").reset_index(drop=True)
    shop, _ = validate.text_codes(part["shop_id"])
    message, _ = validate.text_codes(part["message_id"])
    if "conversation_id" in part.columns:
        # Keys made per block or chunk do not match across them: make them for the partition.
        part["shop_key"], part["conversation_key"] = (
            shop,
            validate.id_numbers(part["conversation_id"]),
        )
    part[DUPLICATE] = validate.repeated_pairs(shop, message)
    return part


def collapsed_rows(duplicates: pd.DataFrame) -> pd.DataFrame:
    """Duplicate rows whose (cleaned) message_id is in scientific notation."""
    ids = validate.clean_text(duplicates["message_id"].astype("string"))
    scientific = ids.str.fullmatch(validate.SCIENTIFIC_ID).fillna(False).astype(bool)
    frame = pd.DataFrame({ROW: duplicates[ROW].astype("int64"), "message_id": ids})
    return frame.loc[scientific.to_numpy()].reset_index(drop=True)


def partition_collapsed(part: pd.DataFrame) -> pd.DataFrame:
    """A partition's duplicate rows whose message_id is in scientific notation."""
    return collapsed_rows(part.loc[part[DUPLICATE].to_numpy(), [ROW, "message_id"]])


def partition_latest(part: pd.DataFrame) -> pd.Timestamp | None:
    """The latest sent_at of a partition's non-duplicate rows (None when there are none)."""
    latest = part["sent_at"][~part[DUPLICATE].to_numpy()].max()
    return None if pd.isna(latest) else pd.Timestamp(latest)


def partition_earliest(part: pd.DataFrame) -> pd.Timestamp | None:
    """The earliest sent_at of a partition's non-duplicate rows (None when there are none)."""
    earliest = part["sent_at"][~part[DUPLICATE].to_numpy()].min()
    return None if pd.isna(earliest) else pd.Timestamp(earliest)


def partition_shop_ids(part: pd.DataFrame) -> pd.Index:
    """The distinct shop_ids of a partition's non-duplicate rows (in order of appearance)."""
    shops = part["shop_id"][~part[DUPLICATE].to_numpy()].dropna().unique()
    return pd.Index(shops, dtype="string")


def latest_of(instants: list[pd.Timestamp | None]) -> pd.Timestamp | None:
    """The latest of some instants, ignoring missing ones (None when all are missing)."""
    known = [t for t in instants if t is not None]
    return max(known) if known else None


def earliest_of(instants: list[pd.Timestamp | None]) -> pd.Timestamp | None:
    """The earliest of some instants, ignoring missing ones (None when all are missing)."""
    known = [t for t in instants if t is not None]
    return min(known) if known else None


@dataclass(frozen=True)
class MetricInputs:
    """What each partition needs besides its messages: the small tables and the settings."""

    holiday_mode: pd.DataFrame
    bounds: pd.DataFrame
    rated: pd.DataFrame
    cutoff: pd.Timestamp | None
    response_limit: pd.Timedelta
    auto_reply_counts: bool
    satisfied_min_rating: int


def metric_inputs(
    dataset: Dataset, bounds: pd.DataFrame, cutoff: pd.Timestamp | None, policy: Policy
) -> MetricInputs:
    """The window bounds, counted ratings and settings every partition's metrics need."""
    return MetricInputs(
        dataset.holiday_mode,
        bounds,
        counted_ratings(dataset.ratings, dataset.holiday_mode, bounds, cutoff),
        cutoff,
        policy.response_limit,
        policy.auto_reply_counts_as_response,
        policy.satisfied_min_rating,
    )


def shops_metrics(messages: pd.DataFrame, shop_ids: pd.Index, inputs: MetricInputs) -> pd.DataFrame:
    """SPEC 5 fields of `shop_ids` from all their messages, as `pipeline.evaluate` computes them."""
    holiday_mode = inputs.holiday_mode.loc[inputs.holiday_mode["shop_id"].isin(shop_ids).to_numpy()]
    chats = build_chats(
        messages,
        holiday_mode,
        inputs.cutoff,
        inputs.response_limit,
        inputs.auto_reply_counts,
        detail=False,
    )
    window_chats = in_window(chats, "received_at", inputs.bounds)
    rated = inputs.rated.loc[inputs.rated["shop_id"].isin(shop_ids).to_numpy()]
    return shop_metrics(window_chats, rated, shop_ids, inputs.satisfied_min_rating)


def partition_metrics(part: pd.DataFrame, inputs: MetricInputs) -> pd.DataFrame:
    """SPEC 5 fields of the reported shops whose messages are in this partition."""
    messages = part.loc[~part[DUPLICATE].to_numpy()].drop(columns=DUPLICATE)
    messages = messages.loc[messages["shop_id"].isin(inputs.bounds["shop_id"]).to_numpy()]
    shop_ids = pd.Index(messages["shop_id"].unique(), dtype="string").sort_values()
    return shops_metrics(messages, shop_ids, inputs)


def evaluation_of(
    found: list[pd.DataFrame],
    inputs: MetricInputs,
    no_messages: pd.DataFrame,
    start: dt.date,
    end: dt.date,
) -> Evaluation:
    """The Evaluation of every reported shop from the metrics found per partition.

    Reported shops found in no partition (ratings only, or seen only in bad rows) get their
    metrics from `no_messages`, an empty messages frame. The chats are not kept (none listed).
    """
    bounds = inputs.bounds
    found_ids = pd.Index(pd.concat([f["shop_id"] for f in found])) if found else pd.Index([])
    rest = pd.Index(bounds["shop_id"]).difference(found_ids)
    metrics = concat_or_first([*found, shops_metrics(no_messages, rest, inputs)])
    metrics = metrics.set_index("shop_id").reindex(pd.Index(bounds["shop_id"])).reset_index()
    return Evaluation(
        metrics=bounds.merge(metrics, on="shop_id", how="left"),
        chats=in_window(
            build_chats(no_messages, inputs.holiday_mode, inputs.cutoff, inputs.response_limit),
            "received_at",
            bounds,
        ),
        cutoff=inputs.cutoff,
        start=start,
        end=end,
        ratings=inputs.rated.reset_index(drop=True),
    )


# Counts and warnings of the whole messages table ------------------------------------------


def collapsed_warnings(rows: list[pd.DataFrame]) -> list[str]:
    """The collapsed-id warning over every duplicate row of the table, in file order."""
    frames = [r for r in rows if len(r)]
    if not frames:
        return []
    ids = pd.concat(frames, ignore_index=True).sort_values(ROW, kind="stable")["message_id"]
    ids = ids.reset_index(drop=True)
    return validate.collapsed_id_warnings(ids, pd.Series(True, index=ids.index), "messages")


def concat_or_first(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames stacked, skipping empty ones (the first frame when all are empty)."""
    filled = [f for f in frames if len(f)]
    return pd.concat(filled, ignore_index=True) if filled else frames[0]


def detached(frame: pd.DataFrame, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The rows at positions `rows` (default: all) of `frame`, copied out of its buffers.

    A slice of Arrow-backed columns, even an empty one, keeps every buffer of `frame` alive.
    """
    if rows is None:
        rows = np.arange(len(frame))
    if len(rows):
        return frame.take(rows)
    return pd.DataFrame({c: pd.Series([], dtype=frame[c].dtype) for c in frame.columns})


def without_rows(rows: MessageRows) -> MessageRows:
    """A checked block without its good rows (kept elsewhere): quarantine, count, findings."""
    return MessageRows(
        detached(rows.good, np.zeros(0, dtype="int64")),
        detached(rows.quarantine),
        rows.rows_read,
        rows.findings,
    )


def checked_messages(
    blocks: list[MessageRows], duplicates: int, collapsed: list[pd.DataFrame]
) -> Checked:
    """The messages table as `validate.merged_messages` gives it, from per-block summaries.

    `duplicates` good rows repeat an earlier message of their shop; `collapsed` holds those
    duplicates whose id is in scientific notation. The table's good rows are not included.
    """
    read = sum(b.rows_read for b in blocks)
    quarantine = concat_or_first([b.quarantine for b in blocks])
    return Checked(
        good=blocks[0].good.iloc[:0],
        quarantine=quarantine,
        counts=InputCounts(read, read - len(quarantine) - duplicates, len(quarantine), duplicates),
        warnings=[
            *validate.id_warnings([f for b in blocks for f in b.findings], "messages"),
            *collapsed_warnings(collapsed),
        ],
    )
