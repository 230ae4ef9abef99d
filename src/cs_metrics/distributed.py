"""The Dask engine: the pandas stages per partition, messages shuffled by shop (docs/dask.md).

The only module that imports Dask, and only once a Dask run starts (Dask is an optional extra).
The metric logic stays in validate, chats and metrics. This module splits the messages table
into contiguous row chunks and runs `validate.check_messages` on each (row numbers stay the
file's), shuffles the good rows so that each shop's rows share one partition, settles duplicates
there (SPEC 8), reduces the default cut-off over all shops (SPEC 4), then calls `build_chats`,
`in_window` and `shop_metrics` per partition. The small tables go through the pandas path.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cs_metrics import validate
from cs_metrics.chats import build_chats
from cs_metrics.errors import StrictModeError, UsageError
from cs_metrics.metrics import counted_ratings, in_window, shop_metrics, window_bounds
from cs_metrics.pipeline import (
    METRICS_ONLY,
    Dataset,
    Evaluation,
    _good_or_empty,
    _strict_message,
    _zone_warnings,
    shop_zones,
)
from cs_metrics.policy import Policy
from cs_metrics.read import ROW, RawTable, read_folder
from cs_metrics.validate import Checked, InputCounts, InputWarning

if TYPE_CHECKING:
    from distributed import Client

MISSING_DASK = "--engine dask needs Dask; install it with: pip install 'cs-metrics[dask]'"
DUPLICATE = "_duplicate"
"""Column set on message rows whose message_id repeats an earlier row of the same shop."""
LOCAL_WORKERS = 2
"""Worker processes of the default local cluster (one thread each)."""
PARTITIONS_PER_THREAD = 2
"""Default number of partitions: this many per worker thread of the cluster."""
CONNECT_TIMEOUT = "10s"
"""How long to try to reach a `--scheduler` before giving up."""


def dask_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """dask, dask.dataframe and distributed, or a UsageError naming the extra to install."""
    try:
        import dask
        import dask.dataframe as dd
        import distributed
    except ImportError as exc:
        raise UsageError(MISSING_DASK) from exc
    return dask, dd, distributed


@contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Client]:
    """A client of the scheduler at `scheduler`, else of a small local cluster (closed after)."""
    _, _, distributed = dask_modules()
    if scheduler is not None:
        with quiet_logger("distributed", logging.WARNING):
            try:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, ValueError) as exc:
                raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc})") from exc
            with client:
                yield client
        return
    with (
        quiet_logger("distributed", logging.WARNING),
        quiet_logger("distributed.shuffle", logging.ERROR),
        distributed.LocalCluster(
            n_workers=LOCAL_WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # No dashboard; its HTTP server (health checks) on any free port of this machine only.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@contextmanager
def quiet_logger(name: str, level: int) -> Iterator[None]:
    """The logger `name` at `level` for a while (Dask logs each start, stop and shuffle)."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


# Functions run on the workers -------------------------------------------------------------


WarningFields = tuple[str, str, str, int]
"""A warning's text, table, code and rows: InputWarning itself does not survive pickling."""


def warning_fields(line: str) -> WarningFields:
    """A warning line as plain values, to send between processes."""
    return (
        str(line),
        getattr(line, "table", ""),
        getattr(line, "code", ""),
        getattr(line, "rows", 0),
    )


def input_warning(fields: WarningFields) -> InputWarning:
    """The warning line back from its plain values."""
    text, table, code, rows = fields
    return InputWarning(text, table=table, code=code, rows=rows)


@dataclass(frozen=True)
class CheckedChunk:
    """One contiguous chunk of message rows after `validate.check_messages`."""

    checked: Checked
    """Its used rows, quarantine and counts (warnings are in `warnings`)."""
    warnings: list[WarningFields]
    collapsed: pd.DataFrame
    """Rows dropped as duplicates within the chunk whose message_id is in scientific notation."""


def chunk_bounds(rows: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges that split `rows` rows into at most `parts` chunks."""
    edges = np.linspace(0, rows, max(1, min(parts, rows)) + 1).astype("int64")
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def chunk_shop_ids(raw: RawTable) -> pd.Index:
    """The non-empty shop_ids of a chunk of rows."""
    return validate.seen_shop_ids(raw.frame)


def checked_chunk(
    raw: RawTable, zones: pd.Series, date_format: str | None, reject_mangled_ids: bool
) -> CheckedChunk:
    """`check_messages` on a chunk of rows (numbered as in the file), with its collapsed ids."""
    checked = validate.check_messages(
        raw, zones, date_format=date_format, reject_mangled_ids=reject_mangled_ids
    )
    rows = raw.frame[ROW]
    dropped = ~rows.isin(checked.good[ROW]) & ~rows.isin(checked.quarantine[ROW])
    return CheckedChunk(
        Checked(checked.good, checked.quarantine, checked.counts),
        [warning_fields(w) for w in checked.warnings],
        collapsed_rows(raw.frame.loc[dropped, [ROW, "message_id"]]),
    )


def collapsed_rows(duplicates: pd.DataFrame) -> pd.DataFrame:
    """Duplicate rows whose (cleaned) message_id is in scientific notation."""
    ids = validate.clean_text(duplicates["message_id"].astype("string"))
    scientific = ids.str.fullmatch(validate.SCIENTIFIC_ID).fillna(False).astype(bool)
    frame = pd.DataFrame({ROW: duplicates[ROW].astype("int64"), "message_id": ids})
    return frame.loc[scientific.to_numpy()].reset_index(drop=True)


def chunk_good(chunk: CheckedChunk) -> pd.DataFrame:
    """The used rows of a checked chunk."""
    return chunk.checked.good


def chunk_summary(chunk: CheckedChunk) -> CheckedChunk:
    """A checked chunk without its used rows (those stay on the cluster)."""
    c = chunk.checked
    return CheckedChunk(
        Checked(c.good.iloc[:0], c.quarantine, c.counts), chunk.warnings, chunk.collapsed
    )


def flagged_duplicates(part: pd.DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    """A partition's rows in file order, DUPLICATE set on repeats; conversation keys renewed."""
    part = part.astype(dtypes).sort_values(ROW, kind="stable").reset_index(drop=True)
    repeated = pd.Series(validate.pair_codes(part["shop_id"], part["message_id"])).duplicated()
    # Keys were made per chunk and do not match across chunks: make them for the partition.
    part["conversation_key"] = validate.pair_codes(part["shop_id"], part["conversation_id"])
    part[DUPLICATE] = repeated.to_numpy()
    return part


def partition_collapsed(part: pd.DataFrame) -> pd.DataFrame:
    """A partition's duplicate rows whose message_id is in scientific notation."""
    return collapsed_rows(part.loc[part[DUPLICATE].to_numpy(), [ROW, "message_id"]])


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


def shops_metrics(messages: pd.DataFrame, shop_ids: pd.Index, inputs: MetricInputs) -> pd.DataFrame:
    """SPEC 5 fields of `shop_ids` from all their messages, as `pipeline.evaluate` computes them."""
    holiday_mode = inputs.holiday_mode.loc[inputs.holiday_mode["shop_id"].isin(shop_ids).to_numpy()]
    chats = build_chats(
        messages, holiday_mode, inputs.cutoff, inputs.response_limit, inputs.auto_reply_counts
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


# Reductions on the client -----------------------------------------------------------------


def merged_warnings(chunks: list[list[str]]) -> list[str]:
    """Per-chunk mangled-id warnings as one line each, as one check of the whole table gives."""
    lines: list[str] = []
    for _pattern, _reason, code, text in validate.MANGLED_IDS:
        for column in validate.ID_COLUMNS:
            head = f"messages: {text.format(column=column)} (in "
            found = [w for chunk in chunks for w in chunk if w.startswith(head)]
            if not found:
                continue
            rows = sum(getattr(w, "rows", 0) for w in found)
            # The first chunk holds the table's first example; only the count changes.
            tail = re.sub(r"^[0-9]+ row\(s\)", f"{rows} row(s)", found[0][len(head) :], count=1)
            lines.append(InputWarning(head + tail, table="messages", code=code.value, rows=rows))
    merged = {
        validate.Warn.ID_COLLAPSED_DUPLICATES.value,
        *(m[2].value for m in validate.MANGLED_IDS),
    }
    others = [w for chunk in chunks for w in chunk if getattr(w, "code", None) not in merged]
    return lines + others


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


def summed_counts(counts: list[InputCounts], extra_duplicates: int = 0) -> InputCounts:
    """Counts of all chunks together, `extra_duplicates` used rows turned duplicates."""
    read, used, bad, duplicate = (sum(getattr(c, f) for c in counts) for f in COUNT_NAMES)
    return InputCounts(read, used - extra_duplicates, bad, duplicate + extra_duplicates)


COUNT_NAMES = ("rows_read", "rows_used", "rows_quarantined", "rows_duplicate")


@dataclass(frozen=True)
class SmallTables:
    """The shops, ratings and Holiday Mode tables checked on the client, with every shop's zone."""

    checked: dict[str, Checked]
    shop_ids: pd.Index
    zones: pd.Series
    zone_warnings: list[str]


def small_tables(
    raw: dict[str, RawTable],
    message_shop_ids: list[pd.Index],
    policy: Policy,
    date_format: str | None,
    reject_mangled_ids: bool,
) -> SmallTables:
    """The tables other than messages, checked as `pipeline.load` does (shops first, for zones)."""
    checked: dict[str, Checked] = {}
    if "shops" in raw:
        checked["shops"] = validate.check_shops(
            raw["shops"],
            policy.market_timezones,
            policy.default_timezone,
            reject_mangled_ids=reject_mangled_ids,
        )
    found = [validate.seen_shop_ids(t.frame) for n, t in raw.items() if n != "messages"]
    seen = pd.Index(
        sorted(set().union(*(set(ids) for ids in [*message_shop_ids, *found]))), dtype="string"
    )
    known = (
        checked["shops"].good.set_index("shop_id")["timezone"]
        if "shops" in checked
        else pd.Series(dtype="string")
    )
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
    """The Dataset `pipeline.load` gives (its `messages` hold no rows: those are on the cluster)."""
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
        warnings=[
            *(w for k in order if k in checked for w in checked[k].warnings),
            *small.zone_warnings,
        ],
    )


def default_partitions(client: Client) -> int:
    """PARTITIONS_PER_THREAD per worker thread of the cluster."""
    return PARTITIONS_PER_THREAD * max(1, sum(client.nthreads().values()))


def evaluate_on_dask(
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
    scheduler: str | None = None,
    partitions: int | None = None,
) -> tuple[Dataset, Evaluation]:
    """`pipeline.load` then `pipeline.evaluate` (metrics only), the messages table on Dask."""
    dask, dd, _ = dask_modules()
    if date_format is not None:
        validate.checked_date_format(date_format)
    raw = read_folder(folder, METRICS_ONLY)
    with dask_client(scheduler) as client:
        parts = partitions or default_partitions(client)
        table = raw["messages"]
        pieces = client.scatter(
            [
                RawTable(table.name, table.path, table.frame.iloc[a:b])
                for a, b in chunk_bounds(len(table.frame), parts)
            ]
        )
        # From here the client holds no message rows: its copy is dropped.
        raw["messages"] = RawTable(table.name, table.path, table.frame.iloc[:0])
        del table
        small = small_tables(
            raw,
            client.gather(client.map(chunk_shop_ids, pieces)),
            policy,
            date_format,
            reject_mangled_ids,
        )
        chunks = client.map(
            checked_chunk,
            pieces,
            zones=client.scatter(small.zones, broadcast=True),
            date_format=date_format,
            reject_mangled_ids=reject_mangled_ids,
        )
        del pieces
        summaries: list[CheckedChunk] = client.gather(client.map(chunk_summary, chunks))
        meta = validate.check_messages(raw["messages"], small.zones).good
        checked = Checked(
            meta,
            concat_or_first([s.checked.quarantine for s in summaries]),
            summed_counts([s.checked.counts for s in summaries]),
            merged_warnings([[input_warning(w) for w in s.warnings] for s in summaries]),
        )
        dataset = dataset_of(checked, small, policy)
        if strict and dataset.bad_rows:
            raise StrictModeError(_strict_message(dataset, {n: t.path for n, t in raw.items()}))

        good = dd.from_delayed(client.map(chunk_good, chunks), meta=meta, verify_meta=False)
        dtypes = {str(c): d for c, d in meta.dtypes.items()}
        flagged_meta = flagged_duplicates(meta, dtypes)
        flagged = (
            good.shuffle(on="shop_id", npartitions=parts)
            .map_partitions(flagged_duplicates, dtypes, meta=flagged_meta)
            .persist()
        )
        del chunks, good
        duplicates, latest, collapsed = dask.compute(
            flagged[DUPLICATE].sum(),
            flagged["sent_at"][~flagged[DUPLICATE]].max(),
            flagged.map_partitions(partition_collapsed, meta=collapsed_rows(meta)),
        )
        checked.counts = summed_counts([s.checked.counts for s in summaries], int(duplicates))
        checked.warnings += collapsed_warnings([*(s.collapsed for s in summaries), collapsed])
        dataset = dataset_of(checked, small, policy)

        cut = cutoff if cutoff is not None else (None if pd.isna(latest) else pd.Timestamp(latest))
        shops = shop_zones(dataset, shop_ids)
        bounds = window_bounds(shops, start, end)
        rated = counted_ratings(dataset.ratings, dataset.holiday_mode, bounds, cut)
        inputs = MetricInputs(
            dataset.holiday_mode,
            bounds,
            rated,
            cut,
            policy.response_limit,
            policy.auto_reply_counts_as_response,
            policy.satisfied_min_rating,
        )
        empty = flagged_meta.drop(columns=DUPLICATE)
        found = flagged.map_partitions(
            partition_metrics,
            dask.delayed(inputs, pure=True),
            meta=shops_metrics(empty, pd.Index([], dtype="string"), inputs),
        ).compute()
    rest = pd.Index(shops["shop_id"]).difference(pd.Index(found["shop_id"]))
    metrics = concat_or_first([found, shops_metrics(empty, rest, inputs)])
    metrics = metrics.set_index("shop_id").reindex(pd.Index(shops["shop_id"])).reset_index()
    evaluation = Evaluation(
        metrics=bounds.merge(metrics, on="shop_id", how="left"),
        chats=in_window(
            build_chats(empty, inputs.holiday_mode, cut, inputs.response_limit),
            "received_at",
            bounds,
        ),
        cutoff=cut,
        start=start,
        end=end,
        ratings=rated.reset_index(drop=True),
    )
    return dataset, evaluation
