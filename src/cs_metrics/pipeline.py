"""The stages wired together: load a data folder, then evaluate a window of days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cs_metrics import validate
from cs_metrics.chats import build_chats
from cs_metrics.errors import StrictModeError
from cs_metrics.metrics import (
    counted_ratings,
    in_window,
    shop_metrics,
    window_bounds,
    window_mask,
)
from cs_metrics.policy import Policy
from cs_metrics.read import (
    RawTable,
    RowGroups,
    map_blocks,
    read_table,
    row_groups_up_to,
    table_paths,
)
from cs_metrics.validate import Checked, InputCounts, InputWarning, Warn

EMPTY = {
    "ratings": ("shop_id", "conversation_id", "rating", "rated_at", "row_number"),
    "holiday_mode": ("shop_id", "start", "end"),
}


@dataclass
class Dataset:
    """A validated data folder: typed good rows, quarantined rows and counts per table."""

    messages: pd.DataFrame
    ratings: pd.DataFrame
    holiday_mode: pd.DataFrame
    zones: pd.Series
    """Each seen shop's effective timezone, indexed by shop_id."""
    shops: pd.DataFrame
    quarantine: dict[str, pd.DataFrame]
    counts: dict[str, InputCounts]
    shop_ids: pd.Index
    """Every non-empty shop_id in any row of any table, sorted."""
    default_timezone: str = "UTC"
    warnings: list[str] = field(default_factory=list)
    duplicates_by_shop: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    """Message rows counted as duplicates, per shop_id."""

    @property
    def latest_message(self) -> pd.Timestamp | None:
        """The default cut-off: the latest sent_at of the good, non-duplicate messages."""
        latest = self.messages["sent_at"].max()
        return None if pd.isna(latest) else pd.Timestamp(latest)

    @property
    def bad_rows(self) -> int:
        """Quarantined rows over all tables."""
        return sum(c.rows_quarantined for c in self.counts.values())


@dataclass
class Evaluation:
    """Metrics of one window: one row per shop, and the chats received in the window."""

    metrics: pd.DataFrame
    chats: pd.DataFrame
    cutoff: pd.Timestamp | None
    start: dt.date
    end: dt.date
    ratings: pd.DataFrame


METRICS_ONLY: tuple[str, ...] = ()
"""Optional message columns the metrics need: none (ids and content feed only drill-downs)."""


CHECK_THREADS = 2
"""Blocks of messages checked at once while the next is read (the checks' Arrow and numpy work
runs outside the GIL); more would hold more blocks in memory."""


def load(
    folder: Path,
    policy: Policy,
    strict: bool = False,
    message_columns: tuple[str, ...] | None = None,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
    skip_after: pd.Timestamp | None = None,
) -> Dataset:
    """Read and validate every table of a data folder (the shops table first, for time zones).

    With `skip_after` (the run's cut-off), Parquet row groups at the end of the messages table
    whose statistics prove every message was sent after it are not read (`skipped_rows`).
    """
    paths = table_paths(folder)
    raw = {name: read_table(name, path) for name, path in paths.items() if name != "messages"}
    shops_table = checked_shops(raw, policy, reject_mangled_ids)
    known = known_zones(shops_table)
    check_block = partial(
        checked_block,
        known=known,
        default_timezone=policy.default_timezone,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
    )
    # Messages are checked block by block as they are read: the raw text is never all held.
    groups = None if skip_after is None else skipped_groups(paths["messages"], skip_after)
    blocks = map_blocks(
        "messages", paths["messages"], check_block, message_columns, groups, CHECK_THREADS
    )
    small = small_tables(
        raw,
        shops_table,
        [shops for shops, _ in blocks],
        policy,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
    )
    dataset = dataset_of(validate.merged_messages([rows for _, rows in blocks]), small, policy)
    dataset.warnings += skipped_warnings(groups)
    if strict and dataset.bad_rows:
        raise StrictModeError(_strict_message(dataset, paths))
    return dataset


def is_parquet(path: Path) -> bool:
    """Whether a table's path is a Parquet file or a folder of Parquet files."""
    return path.is_dir() or path.suffix == ".parquet"


def skipped_groups(path: Path, cutoff: pd.Timestamp) -> RowGroups | None:
    """The Parquet row groups of the messages table to read up to the cut-off (None: all)."""
    return row_groups_up_to(path, cutoff) if is_parquet(path) else None


def skipped_warnings(groups: RowGroups | None) -> list[str]:
    """What --skip-after-cutoff left out, so the smaller `input` counts are not a surprise."""
    if groups is None or not groups.skipped_rows:
        return []
    text = (
        f"messages: {groups.skipped_rows} row(s) in {groups.skipped_groups} Parquet row group(s) "
        "not read: their statistics show every message in them was sent after the cut-off "
        "(--skip-after-cutoff); `input` counts and `shops` cover only the rows read"
    )
    code = Warn.ROWS_NOT_READ.value
    return [InputWarning(text, table="messages", code=code, rows=groups.skipped_rows)]


# The tables together -------------------------------------------------------------------------


@dataclass(frozen=True)
class SmallTables:
    """The shops, ratings and Holiday Mode tables checked, with every shop's zone."""

    checked: dict[str, Checked]
    shop_ids: pd.Index
    zones: pd.Series
    zone_warnings: list[str]


def small_tables(
    raw: dict[str, RawTable],
    shops: Checked | None,
    message_shop_ids: list[pd.Index],
    policy: Policy,
    *,
    date_format: str | None,
    reject_mangled_ids: bool,
) -> SmallTables:
    """The tables other than messages checked, every shop seen (`shops`: checked already)."""
    checked: dict[str, Checked] = {} if shops is None else {"shops": shops}
    found = [validate.seen_shop_ids(t.frame) for n, t in raw.items() if n != "messages"]
    seen = pd.Index(
        sorted(set().union(*(set(ids) for ids in [*message_shop_ids, *found]))), dtype="string"
    )
    known = known_zones(shops)
    zones = known.reindex(seen).fillna(policy.default_timezone).astype("string")
    checkers = {"ratings": validate.check_ratings, "holiday_mode": validate.check_holiday_mode}
    for name, check in checkers.items():
        if name in raw:
            checked[name] = check(
                raw[name], zones, date_format=date_format, reject_mangled_ids=reject_mangled_ids
            )
    warnings = _zone_warnings(seen, known, policy.default_timezone)
    return SmallTables(checked, seen, zones, warnings)


def dataset_of(messages: Checked, small: SmallTables, policy: Policy) -> Dataset:
    """The Dataset of the checked messages and small tables."""
    checked = {"messages": messages, **small.checked}
    order = ("messages", "ratings", "holiday_mode", "shops")
    return Dataset(
        messages=messages.good,
        ratings=_good_or_empty(checked, "ratings"),
        holiday_mode=_good_or_empty(checked, "holiday_mode"),
        zones=small.zones,
        shops=checked["shops"].good if "shops" in checked else pd.DataFrame(),
        quarantine={
            k: checked[k].quarantine for k in order if k in checked and len(checked[k].quarantine)
        },
        counts={k: checked[k].counts for k in order if k in checked},
        shop_ids=small.shop_ids,
        default_timezone=policy.default_timezone,
        duplicates_by_shop=messages.duplicates_by_shop,
        warnings=[
            *(w for k in order if k in checked for w in checked[k].warnings),
            *small.zone_warnings,
        ],
    )


def checked_shops(
    raw: dict[str, RawTable], policy: Policy, reject_mangled_ids: bool
) -> Checked | None:
    """The shops table checked (None when there is none): it gives the shops' time zones."""
    if "shops" not in raw:
        return None
    return validate.check_shops(
        raw["shops"],
        policy.market_timezones,
        policy.default_timezone,
        reject_mangled_ids=reject_mangled_ids,
    )


def known_zones(shops: Checked | None) -> pd.Series:
    """The time zone of each shop of the shops table, indexed by shop_id."""
    if shops is None:
        return pd.Series(dtype="string")
    return shops.good.set_index("shop_id")["timezone"]


def checked_block(
    block: pd.DataFrame,
    known: pd.Series,
    default_timezone: str,
    date_format: str | None,
    reject_mangled_ids: bool,
) -> tuple[pd.Index, validate.MessageRows]:
    """The shop_ids seen in a block of message rows, and the block after the row checks."""
    shops = validate.seen_shop_ids(block)
    block_zones = known.reindex(shops).fillna(default_timezone).astype("string")
    rows = validate.check_message_rows(
        block, block_zones, date_format=date_format, reject_mangled_ids=reject_mangled_ids
    )
    return shops, rows


def _good_or_empty(checked: dict[str, Checked], name: str) -> pd.DataFrame:
    if name in checked:
        return checked[name].good
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in EMPTY[name]})
    for column in ("rated_at", "start", "end"):
        if column in frame:
            frame[column] = pd.Series(dtype=validate.INSTANT)
    return frame


def _zone_warnings(seen: pd.Index, known: pd.Series, default_tz: str) -> list[str]:
    """One line naming the shops whose time zone falls back to the default."""
    missing = [s for s in seen if s not in known.index]
    if not missing:
        return []
    listed = ", ".join(missing[:10]) + (
        f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    )
    return [
        f"no timezone for shop(s) {listed} (no good row in the shops table); using {default_tz}"
    ]


def _strict_message(dataset: Dataset, paths: dict[str, Path]) -> str:
    parts = [
        f"{paths[name]}: {counts.rows_quarantined} bad row(s)"
        for name, counts in dataset.counts.items()
        if counts.rows_quarantined
    ]
    return "--strict: " + "; ".join(parts)


def resolve_cutoff(dataset: Dataset, cutoff: pd.Timestamp | None) -> pd.Timestamp | None:
    """The run's cut-off: as given, else the latest good message."""
    return cutoff if cutoff is not None else dataset.latest_message


def shop_zones(dataset: Dataset, shop_ids: list[str] | None) -> pd.DataFrame:
    """The shops to report on (all seen, or exactly those named) with their time zones."""
    ids = dataset.shop_ids if not shop_ids else pd.Index(sorted(set(shop_ids)), dtype="string")
    zones = dataset.zones.reindex(ids).fillna(dataset.default_timezone)
    return pd.DataFrame({"shop_id": ids, "timezone": zones.to_numpy()})


def evaluate(
    dataset: Dataset,
    start: dt.date,
    end: dt.date,
    policy: Policy,
    cutoff: pd.Timestamp | None = None,
    shop_ids: list[str] | None = None,
    chat_detail: bool = True,
) -> Evaluation:
    """SPEC 5 metrics for the local days start..end of each shop, as known at the cut-off.

    Without `chat_detail` the chats carry only shop, instants and status (no ids or time zone):
    enough for the metrics, and faster.
    """
    cut = resolve_cutoff(dataset, cutoff)
    shops = shop_zones(dataset, shop_ids)
    bounds = window_bounds(shops, start, end)
    messages = dataset.messages
    if shop_ids:
        messages = messages.loc[messages["shop_id"].isin(shops["shop_id"])]
    all_chats = build_chats(
        messages,
        dataset.holiday_mode,
        cut,
        policy.response_limit,
        policy.auto_reply_counts_as_response,
        chat_detail,
    )
    window_chats = in_window(all_chats, "received_at", bounds)
    if chat_detail:
        zones = shops.set_index("shop_id")["timezone"]
        window_chats = window_chats.assign(timezone=window_chats["shop_id"].map(zones))
    rated = counted_ratings(dataset.ratings, dataset.holiday_mode, bounds, cut)
    metrics = shop_metrics(
        window_chats, rated, pd.Index(shops["shop_id"]), policy.satisfied_min_rating
    )
    metrics = bounds.merge(metrics, on="shop_id", how="left")
    return Evaluation(
        metrics=metrics,
        chats=window_chats.reset_index(drop=True),
        cutoff=cut,
        start=start,
        end=end,
        ratings=rated.reset_index(drop=True),
    )


def messages_in_window(
    dataset: Dataset,
    start: dt.date | None,
    end: dt.date | None,
    shop_ids: list[str] | None = None,
    columns: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Good messages of the named shops (or all) sent in their local days start..end (or ever).

    Only the `columns` asked for that the table has, and the messages of the `roles` asked for.
    """
    messages = dataset.messages
    keep = np.ones(len(messages), dtype=bool)
    if shop_ids:
        keep &= messages["shop_id"].isin(shop_ids).to_numpy(dtype=bool, na_value=False)
    if roles is not None:
        keep &= messages["sender_role"].isin(list(roles)).to_numpy(dtype=bool, na_value=False)
    if start is not None and end is not None:
        bounds = window_bounds(shop_zones(dataset, shop_ids), start, end)
        keep &= window_mask(messages, "sent_at", bounds)
    if columns is not None:
        messages = messages[[c for c in columns if c in messages.columns]]
    return messages if keep.all() else messages.loc[keep]
