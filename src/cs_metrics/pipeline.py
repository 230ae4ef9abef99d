"""One load and one evaluate for every engine: read a data folder, then evaluate a window.

`load` reads the small tables here and asks an engine (`engines`) for the messages: checked
block by block and grouped by shop, wherever the engine keeps them. The strict rule, the
duplicate rule (`duplicates`), the default cut-off, the warnings and the evaluation of each
group are then the same whatever the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cs_metrics import duplicates, validate
from cs_metrics.arrow_text import rows_kept
from cs_metrics.chats import (
    CHAT_SOURCE_COLUMNS,
    build_chats,
    positions,
    roles_in,
    with_detail,
)
from cs_metrics.duplicates import GroupSummary, is_keyed, keyed_shops
from cs_metrics.engines import Engine, MessageGroups, MessageSource, choose, empty_like
from cs_metrics.engines.memory import FrameGroups, MemoryEngine
from cs_metrics.engines.quarantine import Quarantine, QuarantineSpill
from cs_metrics.errors import StrictModeError, UsageError
from cs_metrics.metrics import (
    counted_ratings,
    shop_metrics,
    window_bounds,
    window_mask,
)
from cs_metrics.policy import Policy
from cs_metrics.readers import RawTable, RowGroups, read_table, row_groups_up_to, table_paths
from cs_metrics.reasons import InputCounts, InputWarning, Warn
from cs_metrics.threads import in_order, started
from cs_metrics.timestamps import INSTANT, checked_date_format
from cs_metrics.unusable import SAMPLE_ROWS, check_usable
from cs_metrics.validate import BlockCheck, Checked, MessageCheck

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
    quarantine: Quarantine
    """Each table's bad rows: the messages' set aside on disk as they were found, the others
    held (`Quarantine`); a plain dict of frames is taken as held rows."""
    counts: dict[str, InputCounts]
    shop_ids: pd.Index
    """Every non-empty shop_id in any row of any table, sorted."""
    default_timezone: str = "UTC"
    warnings: list[str] = field(default_factory=list)
    groups: MessageGroups | None = None
    """The used messages, grouped by shop where the engine keeps them (None: `messages`)."""
    summary: MessagesSummary | None = None
    """The used messages' time range and shops (None: from `messages`)."""

    def __post_init__(self) -> None:
        """A dict of quarantined frames (a Dataset built by hand) taken as held rows."""
        if not isinstance(self.quarantine, Quarantine):
            self.quarantine = Quarantine(self.quarantine)

    @property
    def message_groups(self) -> MessageGroups:
        """The used messages, grouped by shop (one group when this process holds them all)."""
        return self.groups if self.groups is not None else FrameGroups(self.messages)

    def check_usable(self, folder: Path) -> None:
        """InputError when the folder's messages table has rows but none usable (SPEC 6a)."""
        counts = self.counts["messages"]
        if counts.rows_read == 0 or counts.rows_used or counts.rows_duplicate:
            return
        reasons = self.quarantine.reasons("messages")
        if reasons.empty:
            return
        # The first rows of the most common reason are enough for its sentence and the
        # --date-format hint; all of them may be more than memory holds.
        top = str(reasons.sort_values(ascending=False, kind="stable").index[0])
        check_usable(
            table_paths(folder)["messages"],
            counts,
            self.quarantine.first_rows("messages", top, SAMPLE_ROWS),
            reasons,
        )

    @property
    def quarantined_by_shop(self) -> pd.Series:
        """Quarantined message rows per trimmed, non-empty shop_id (without reading the rows)."""
        return self.quarantine.by_shop("messages")

    @property
    def duplicates_by_shop(self) -> pd.Series:
        """Message rows counted as duplicates, per shop_id."""
        if self.summary is None:
            return pd.Series(dtype="int64")
        return self.summary.duplicates_by_shop

    @property
    def latest_message(self) -> pd.Timestamp | None:
        """The default cut-off: the latest sent_at of the good, non-duplicate messages."""
        if self.summary is not None:
            return self.summary.latest
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


def load(
    folder: Path,
    policy: Policy,
    strict: bool = False,
    message_columns: tuple[str, ...] | None = None,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
    skip_after: pd.Timestamp | None = None,
    engine: Engine | None = None,
) -> Dataset:
    """Read and validate every table of a data folder (the shops table first, for time zones).

    The `engine` (default: in memory) reads and checks the messages and keeps their good rows
    grouped by shop; the rest is the same for every engine. With `skip_after` (the run's
    cut-off), Parquet row groups at the end of the messages table whose statistics prove every
    message was sent after it are not read (`skipped_rows`).
    """
    paths = table_paths(folder)
    if date_format is not None:
        checked_date_format(date_format)
    raw = {name: read_table(name, path) for name, path in paths.items() if name != "messages"}
    shops_table = checked_shops(raw, policy, reject_mangled_ids)
    check = MessageCheck(
        known_zones(shops_table), policy.default_timezone, date_format, reject_mangled_ids
    )
    groups = None if skip_after is None else skipped_groups(paths["messages"], skip_after)
    spill = QuarantineSpill("messages")
    source = MessageSource(paths["messages"], check, message_columns, groups, spill)
    try:
        checked = (engine or MemoryEngine()).checked_messages(source)
        blocks, messages = checked.blocks, checked.groups
        del checked
        small = small_tables(
            raw,
            shops_table,
            [block.shop_ids for block in blocks],
            policy,
            date_format=date_format,
            reject_mangled_ids=reject_mangled_ids,
        )
        if strict:
            raise_on_bad_rows(spill.rows, small, paths)
        # The duplicate rule (SPEC 8), settled in each group: each shop's rows are in one.
        messages = messages.transform(duplicates.flagged, needs=duplicates.FLAGGED_READS)
        messages = messages.settled()
        found = messages.map(duplicates.group_summary, columns=duplicates.SUMMARY_COLUMNS)
        summaries = [*found, *spill.early_duplicates]
        messages = messages.transform(duplicates.without_duplicates, needs=(duplicates.DUPLICATE,))
        dataset = dataset_of(messages_table(blocks, summaries, messages, spill), small, policy)
    except BaseException:
        spill.close()  # the bad rows will not be written: their files go now
        raise
    dataset.quarantine = Quarantine({"messages": spill, **dataset.quarantine.tables})
    # Messages held here are `dataset.messages` itself; others stay where the engine keeps them.
    dataset.groups = None if messages.held() is not None else messages
    dataset.summary = MessagesSummary.of(summaries)
    dataset.warnings += skipped_warnings(groups)
    return dataset


def raise_on_bad_rows(bad_messages: int, small: SmallTables, paths: dict[str, Path]) -> None:
    """--strict (SPEC 8): any bad row in any table is a StrictModeError naming each file."""
    bad = {"messages": bad_messages}
    bad.update({name: t.counts.rows_quarantined for name, t in small.checked.items()})
    parts = [
        f"{paths[name]}: {bad[name]} bad row(s)"
        for name in ("messages", "ratings", "holiday_mode", "shops")
        if bad.get(name)
    ]
    if parts:
        raise StrictModeError("--strict: " + "; ".join(parts))


def messages_table(
    blocks: list[BlockCheck],
    summaries: list[GroupSummary],
    used: MessageGroups,
    spill: QuarantineSpill,
) -> Checked:
    """The messages table checked, from its blocks, the summaries of its settled groups and the
    spill of its bad rows (which keeps them: `quarantine` here has none)."""
    read = sum(b.rows.rows_read for b in blocks)
    duplicates_found = sum(s.duplicates for s in summaries)
    bad = spill.rows
    held = used.held()
    return Checked(
        good=held if held is not None else used.empty(),
        quarantine=blocks[0].rows.quarantine.iloc[:0],
        counts=InputCounts(read, read - bad - duplicates_found, bad, duplicates_found),
        warnings=[
            *validate.id_warnings([f for b in blocks for f in b.rows.findings], "messages"),
            *duplicates.collapsed_warnings([s.collapsed for s in summaries]),
        ],
    )


@dataclass(frozen=True)
class MessagesSummary:
    """The used messages in brief: their time range and shops (whatever engine holds them)."""

    earliest: pd.Timestamp | None
    latest: pd.Timestamp | None
    shop_ids: pd.Index
    duplicates_by_shop: pd.Series
    """Rows counted as duplicates per shop_id (each shop's rows are in one group)."""

    @staticmethod
    def of(groups: list[GroupSummary]) -> MessagesSummary:
        """The summary of all groups."""
        earliest = [g.earliest for g in groups if g.earliest is not None]
        latest = [g.latest for g in groups if g.latest is not None]
        counts = [g.duplicates_by_shop for g in groups if len(g.duplicates_by_shop)]
        return MessagesSummary(
            min(earliest) if earliest else None,
            max(latest) if latest else None,
            pd.Index([], dtype="string").append([g.shop_ids for g in groups]).unique(),
            # A shop may have duplicates found early by the engine and in its group.
            pd.concat(counts).groupby(level=0).sum() if counts else pd.Series(dtype="int64"),
        )


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
        quarantine=Quarantine({k: checked[k].quarantine for k in order if k in checked}),
        counts={k: checked[k].counts for k in order if k in checked},
        shop_ids=small.shop_ids,
        default_timezone=policy.default_timezone,
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


def _good_or_empty(checked: dict[str, Checked], name: str) -> pd.DataFrame:
    if name in checked:
        return checked[name].good
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in EMPTY[name]})
    for column in ("rated_at", "start", "end"):
        if column in frame:
            frame[column] = pd.Series(dtype=INSTANT)
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


def resolve_cutoff(dataset: Dataset, cutoff: pd.Timestamp | None) -> pd.Timestamp | None:
    """The run's cut-off: as given, else the latest good message."""
    return cutoff if cutoff is not None else dataset.latest_message


def shop_zones(dataset: Dataset, shop_ids: list[str] | None) -> pd.DataFrame:
    """The shops to report on (all seen, or exactly those named) with their time zones."""
    ids = dataset.shop_ids if not shop_ids else pd.Index(sorted(set(shop_ids)), dtype="string")
    zones = dataset.zones.reindex(ids).fillna(dataset.default_timezone)
    return pd.DataFrame({"shop_id": ids, "timezone": zones.to_numpy()})


@dataclass(frozen=True)
class MetricInputs:
    """What each group of messages needs besides its rows: the small tables and the settings."""

    holiday_mode: pd.DataFrame
    bounds: pd.DataFrame
    """The window of each reported shop (shop_id, timezone, window_start, window_end)."""
    counted_ratings: Future[pd.DataFrame] | pd.DataFrame
    """The counted ratings of the window, worked out on a thread of their own while the chats
    are built (`rated` waits for them); a frame once sent to another process."""
    cutoff: pd.Timestamp | None
    response_limit: pd.Timedelta
    auto_reply_counts: bool
    satisfied_min_rating: int
    chat_detail: bool
    keep_chats: bool
    halves: bool
    """Whether a large group may be evaluated as two halves at once (see `group_evaluation`)."""

    @property
    def rated(self) -> pd.DataFrame:
        """The counted ratings of the window (SPEC 5)."""
        found = self.counted_ratings
        return found if isinstance(found, pd.DataFrame) else found.result()

    def __getstate__(self) -> dict[str, object]:
        """Sent to another process (a Dask worker): the ratings go worked out, not their thread."""
        return {**self.__dict__, "counted_ratings": self.rated}


def shops_evaluation(
    messages: pd.DataFrame,
    shop_ids: pd.Index,
    inputs: MetricInputs,
    among: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SPEC 5 fields of `shop_ids` from all their messages (the rows `among` marks, when given),
    and their chats of the window."""
    holiday_mode = inputs.holiday_mode.loc[inputs.holiday_mode["shop_id"].isin(shop_ids).to_numpy()]
    # Only the window's chats are clocked and, once known, given the drill-down's columns.
    window_chats = build_chats(
        messages,
        holiday_mode,
        inputs.cutoff,
        inputs.response_limit,
        inputs.auto_reply_counts,
        detail=False,
        among=among,
        rows=inputs.chat_detail,
        bounds=inputs.bounds,
    )
    if inputs.chat_detail:
        window_chats = with_detail(messages, window_chats)
    rated = inputs.rated.loc[inputs.rated["shop_id"].isin(shop_ids).to_numpy()]
    metrics = shop_metrics(window_chats, rated, shop_ids, inputs.satisfied_min_rating)
    # Without chats kept, none of the group's buffers outlive the group (two at a time on disk).
    return metrics, window_chats if inputs.keep_chats else empty_like(window_chats)


def group_evaluation(
    group: pd.DataFrame, inputs: MetricInputs
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metrics and window chats of the reported shops whose messages are in this group."""
    keyed = is_keyed(group)
    if keyed:
        # A settled group's shops by their keys: a lookup per shop, not per row's text.
        key, ids = keyed_shops(group)
        wanted = ids.isin(inputs.bounds["shop_id"]) & ids.notna()
        reported = wanted[key]
        shop_ids = pd.Index(ids[wanted], dtype="string").sort_values()
    else:
        reported = group["shop_id"].isin(inputs.bounds["shop_id"]).to_numpy()
        shop_ids = pd.Index(group["shop_id"][reported].unique(), dtype="string").sort_values()
    messages = group if reported.all() else rows_kept(group, reported)
    halves = keyed and len(messages) >= HALVES_FROM_ROWS and len(shop_ids) > 1
    if halves and inputs.halves:
        return by_halves(messages, shop_ids, inputs)
    return shops_evaluation(messages, shop_ids, inputs)


HALVES_FROM_ROWS = 2**20
"""A group of this many messages is evaluated as two halves of its shops, one per core: the
chats' sort and clock run in Arrow and numpy, outside the GIL (10M messages: 4.3 s in one
thread, 2.5 s in two)."""


def by_halves(
    messages: pd.DataFrame, shop_ids: pd.Index, inputs: MetricInputs
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`shops_evaluation` of every other shop on each of two threads, the frame shared (no copy);
    the chats put back in the order one evaluation of all the shops gives (by `shop_key`)."""
    key, ids = keyed_shops(messages)
    shop = shop_ids.get_indexer(ids)[key]
    keys = np.zeros(len(shop_ids), dtype="int64")
    keys[shop] = key  # one key per shop: any of its rows gives it
    halves = list(
        in_order(
            lambda h: shops_evaluation(messages, shop_ids[h::2], inputs, shop % 2 == h), (0, 1)
        )
    )
    metrics = pd.concat([m for m, _ in halves], ignore_index=True)
    chats = pd.concat([c for _, c in halves], ignore_index=True)
    order = np.argsort(keys[positions(shop_ids, chats["shop_id"])], kind="stable")
    return metrics, chats.take(order).reset_index(drop=True)


def metric_inputs(
    dataset: Dataset,
    shops: pd.DataFrame,
    start: dt.date,
    end: dt.date,
    policy: Policy,
    cutoff: pd.Timestamp | None,
    chat_detail: bool,
    keep_chats: bool,
) -> MetricInputs:
    """What every group's evaluation needs for the local days start..end of `shops` (shop_id,
    timezone), as known at the cut-off (default: the latest message)."""
    cut = resolve_cutoff(dataset, cutoff)
    bounds = window_bounds(shops, start, end)
    return MetricInputs(
        holiday_mode=dataset.holiday_mode,
        bounds=bounds,
        # Needed only once a group's chats are built: 0.3 s of one core before them at 10M.
        counted_ratings=started(
            partial(counted_ratings, dataset.ratings, dataset.holiday_mode, bounds, cut)
        ),
        cutoff=cut,
        response_limit=policy.response_limit,
        auto_reply_counts=policy.auto_reply_counts_as_response,
        satisfied_min_rating=policy.satisfied_min_rating,
        chat_detail=chat_detail,
        keep_chats=keep_chats,
        # With chats kept, two halves at once hold two halves' chats: only where this process
        # holds the one group (the disk engine already works on two buckets at once). At 10M
        # messages on the in-memory engine that is 3.5 GB at the weekly job's peak.
        halves=not keep_chats or dataset.message_groups.held() is not None,
    )


def evaluate(
    dataset: Dataset,
    start: dt.date,
    end: dt.date,
    policy: Policy,
    cutoff: pd.Timestamp | None = None,
    shop_ids: list[str] | None = None,
    chat_detail: bool = True,
    *,
    keep_chats: bool = True,
) -> Evaluation:
    """SPEC 5 metrics for the local days start..end of each shop, as known at the cut-off.

    Each group of messages is evaluated where its engine keeps it. Without `chat_detail` the
    chats carry only shop, instants and status (no ids or time zone): enough for the metrics,
    and faster; without `keep_chats` no chat comes back at all (only the metrics).
    """
    shops = shop_zones(dataset, shop_ids)
    inputs = metric_inputs(dataset, shops, start, end, policy, cutoff, chat_detail, keep_chats)
    cut, bounds = inputs.cutoff, inputs.bounds
    groups = dataset.message_groups
    found = groups.map(partial(group_evaluation, inputs=inputs), columns=CHAT_SOURCE_COLUMNS)
    # Reported shops with no message (ratings only, or seen only in bad rows) get their metrics
    # from no messages.
    seen = pd.Index([], dtype="string").append([pd.Index(m["shop_id"]) for m, _ in found])
    rest = pd.Index(bounds["shop_id"]).difference(seen)
    found.append(shops_evaluation(groups.empty(), rest, inputs))
    metrics = stacked([metrics for metrics, _ in found])
    metrics = metrics.set_index("shop_id").reindex(pd.Index(bounds["shop_id"])).reset_index()
    window_chats = stacked([chats for _, chats in found])
    if chat_detail:
        zones = shops.set_index("shop_id")["timezone"]
        window_chats = window_chats.assign(timezone=window_chats["shop_id"].map(zones))
    return Evaluation(
        metrics=bounds.merge(metrics, on="shop_id", how="left"),
        chats=window_chats.reset_index(drop=True),
        cutoff=cut,
        start=start,
        end=end,
        ratings=inputs.rated.reset_index(drop=True),
    )


def stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames stacked, skipping empty ones (the first frame when all are empty)."""
    filled = [f for f in frames if len(f)]
    if len(filled) == 1:
        return filled[0]
    return pd.concat(filled, ignore_index=True) if filled else frames[0]


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
    return window_rows(dataset.messages, dataset, start, end, shop_ids, columns, roles)


def window_rows(
    messages: pd.DataFrame,
    dataset: Dataset,
    start: dt.date | None,
    end: dt.date | None,
    shop_ids: list[str] | None = None,
    columns: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
) -> pd.DataFrame:
    """`messages_in_window` of some of the dataset's messages (a group of its engine)."""
    keep = np.ones(len(messages), dtype=bool)
    if shop_ids:
        keep &= messages["shop_id"].isin(shop_ids).to_numpy(dtype=bool, na_value=False)
    if roles is not None:
        keep &= roles_in(messages["sender_role"], list(roles))
    if start is not None and end is not None:
        bounds = window_bounds(shop_zones(dataset, shop_ids), start, end)
        keep &= window_mask(messages, "sent_at", bounds)
    if columns is not None:
        messages = messages[[c for c in columns if c in messages.columns]]
    return messages if keep.all() else rows_kept(messages, keep)


def evaluated(
    folder: Path,
    start: dt.date,
    end: dt.date,
    policy: Policy,
    cutoff: pd.Timestamp | None = None,
    shop_ids: list[str] | None = None,
    *,
    strict: bool = False,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
    engine: str = "auto",
    scheduler: str | None = None,
    partitions: int | None = None,
    skip_after_cutoff: bool = False,
) -> tuple[Dataset, Evaluation]:
    """`load` then `evaluate` (metrics only) on the engine named (`engines.choose`).

    With `skip_after_cutoff`, Parquet row groups that hold only messages sent after `cutoff`
    are not read (see `load`).
    """
    if skip_after_cutoff and cutoff is None:
        raise UsageError(
            "--skip-after-cutoff needs --cutoff (the default cut-off is the latest message)"
        )
    if skip_after_cutoff and not is_parquet(table_paths(folder)["messages"]):
        raise UsageError("--skip-after-cutoff needs Parquet messages (a file or dataset folder)")
    with choose(engine, folder, scheduler=scheduler, partitions=partitions) as chosen:
        dataset = load(
            folder,
            policy,
            strict,
            METRICS_ONLY,
            date_format=date_format,
            reject_mangled_ids=reject_mangled_ids,
            skip_after=cutoff if skip_after_cutoff else None,
            engine=chosen,
        )
        evaluation = evaluate(
            dataset, start, end, policy, cutoff, shop_ids, chat_detail=False, keep_chats=False
        )
    dataset.groups = None  # the engine is closed: its groups are gone
    return dataset, evaluation
