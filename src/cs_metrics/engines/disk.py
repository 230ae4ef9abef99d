"""The disk engine: messages spilled to per-shop bucket files, then evaluated bucket by bucket.

Peak memory stays nearly flat as the messages file grows (docs/large_files.md). Pass 1 reads the
messages in blocks (`read.map_blocks`), checks each block as `pipeline.load` does, and appends
its good rows to one of several Parquet bucket files in a temporary folder, chosen by a stable
hash of the shop_id: each shop's rows are all in one bucket, in file order. Only the quarantined
rows, counts, id findings and shop ids of each block stay in memory. Pass 2 takes one bucket at a
time, settles its duplicates (first in file order per shop) and computes its shops' metrics with
the stages of `partitions`, as the Dask engine does per partition. Without `--cutoff`, a first
sweep over the buckets (three columns) finds the default cut-off (SPEC 4) before any chat is
built. The temporary folder is removed when the run ends, also when it fails.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cs_metrics.engines.partitions import (
    DUPLICATE,
    checked_messages,
    detached,
    evaluation_of,
    flagged_duplicates,
    latest_of,
    metric_inputs,
    partition_collapsed,
    partition_earliest,
    partition_latest,
    partition_metrics,
    partition_shop_ids,
    without_rows,
)
from cs_metrics.errors import StrictModeError
from cs_metrics.metrics import window_bounds
from cs_metrics.pipeline import (
    METRICS_ONLY,
    Dataset,
    Evaluation,
    SmallTables,
    _strict_message,
    checked_block,
    checked_shops,
    dataset_of,
    known_zones,
    shop_zones,
    small_tables,
)
from cs_metrics.policy import Policy
from cs_metrics.read import ROW, map_blocks, read_table, table_paths
from cs_metrics.validate import MessageRows

DISK_FROM_BYTES = 256 * 2**20
"""`--engine auto` uses the disk engine for a CSV or JSON Lines messages file this large."""
STREAMED_SUFFIXES = (".csv", ".jsonl")
"""Messages files read in blocks (a Parquet file is read whole, so spilling it saves little)."""
BUCKET_BYTES = 32 * 2**20
"""Bytes of messages file per bucket: a bucket's rows take a few times this in memory."""
MAX_BUCKETS = 512
"""At most this many bucket files (each is an open file during pass 1)."""
SUMMARY_COLUMNS = ("shop_id", "message_id", "sent_at", ROW)
"""What the cut-off sweep reads of each bucket: enough to settle duplicates."""


FLAT_CSV_BLOCK_BYTES = 2**22
"""CSV blocks of 4 MB: with Arrow's default 32 MB ones the peak grew with file size (measured:
517, 633 and 839 MB at 1M, 2M and 4M rows; 332, 344 and 364 MB with 4 MB blocks)."""


def prefers_disk(folder: Path) -> bool:
    """Whether `--engine auto` picks the disk engine for this folder's messages table."""
    path = table_paths(folder)["messages"]
    return (
        path.is_file()
        and path.suffix in STREAMED_SUFFIXES
        and path.stat().st_size >= DISK_FROM_BYTES
    )


def bucket_count(path: Path) -> int:
    """Buckets for a messages file: one per BUCKET_BYTES of it, at least 1, at most MAX_BUCKETS."""
    size = path.stat().st_size if path.is_file() else 0
    return int(min(MAX_BUCKETS, max(1, -(-size // BUCKET_BYTES))))


def bucket_numbers(shop_ids: pd.Series, buckets: int) -> np.ndarray:
    """Each row's bucket: a stable hash of its shop_id, modulo `buckets`."""
    codes, distinct = pd.factorize(shop_ids)
    hashes = pd.util.hash_pandas_object(pd.Series(distinct, dtype=object), index=False)
    return (hashes.to_numpy() % np.uint64(buckets)).astype("int64")[codes]


class BucketFiles:
    """Append-only Parquet files in a folder, one per bucket (the disk engine's spill)."""

    def __init__(self, folder: Path, buckets: int) -> None:
        """Buckets 0..`buckets`-1 under `folder`, none written yet."""
        self.folder = folder
        self.buckets = buckets
        self.schema: pa.Schema | None = None
        self.writers: dict[int, pq.ParquetWriter] = {}

    def __enter__(self) -> BucketFiles:
        """The files, to append to."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Every file closed."""
        self.close()

    def path(self, bucket: int) -> Path:
        """The file of one bucket."""
        return self.folder / f"bucket-{bucket:04d}.parquet"

    def append(self, good: pd.DataFrame) -> None:
        """Rows appended to the files of their shops' buckets (in their order)."""
        if not len(good):
            return
        if self.schema is None:
            self.schema = pa.Schema.from_pandas(good, preserve_index=False)
        numbers = bucket_numbers(good["shop_id"], self.buckets)
        order = np.argsort(numbers, kind="stable")
        bounds = np.searchsorted(numbers[order], np.arange(self.buckets + 1))
        for bucket in np.flatnonzero(np.diff(bounds)).tolist():
            rows = good.iloc[order[bounds[bucket] : bounds[bucket + 1]]]
            table = pa.Table.from_pandas(rows, schema=self.schema, preserve_index=False)
            if bucket not in self.writers:
                self.writers[bucket] = pq.ParquetWriter(self.path(bucket), self.schema)
            self.writers[bucket].write_table(table)

    def close(self) -> None:
        """Every file closed (complete on disk)."""
        for writer in self.writers.values():
            writer.close()

    def restart(self) -> None:
        """Every file removed: the reader starts the table again from its first row."""
        self.close()
        for bucket in self.writers:
            self.path(bucket).unlink()
        self.writers = {}

    def filled(self) -> list[int]:
        """The buckets holding rows, in order."""
        return sorted(self.writers)

    def read(self, bucket: int, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        """One bucket's rows (all columns, or those named), in the order they were appended."""
        table = pq.read_table(self.path(bucket), columns=list(columns) if columns else None)
        return table.to_pandas(types_mapper=_text_as_string)


def _text_as_string(kind: pa.DataType) -> Any:
    """Arrow text read back as pandas' Arrow-backed strings (not Python objects)."""
    return pd.StringDtype("pyarrow") if kind in (pa.string(), pa.large_string()) else None


def block_pieces(block: pd.DataFrame, rows: int | None) -> list[pd.DataFrame]:
    """A block of rows cut into pieces of at most `rows` rows (the block itself when None)."""
    if rows is None or len(block) <= rows:
        return [block]
    return [block.iloc[a : a + rows].reset_index(drop=True) for a in range(0, len(block), rows)]


def spilled_block(
    block: pd.DataFrame,
    check: Callable[[pd.DataFrame], tuple[pd.Index, MessageRows]],
    store: BucketFiles,
    block_rows: int | None,
) -> list[tuple[pd.Index, MessageRows]]:
    """A block checked, its good rows appended to the buckets; its shop ids and the rest kept."""
    if len(block) and block[ROW].iloc[0] == 1:
        # The first block, or the CSV reader starting over with its tolerant parser.
        store.restart()
    kept = []
    for piece in block_pieces(block, block_rows):
        shops, rows = check(piece)
        store.append(rows.good)
        kept.append((shops, without_rows(rows)))
    return kept


@dataclass(frozen=True)
class BucketSummary:
    """What the whole table needs from one bucket: duplicates, time range, shops, odd ids."""

    duplicates: int
    latest: pd.Timestamp | None
    collapsed: pd.DataFrame
    earliest: pd.Timestamp | None
    shop_ids: pd.Index
    """The shops of the bucket's non-duplicate rows."""


def bucket_summary(part: pd.DataFrame) -> BucketSummary:
    """The duplicates, sent_at range, shops and collapsed-id rows of a flagged bucket."""
    collapsed = detached(partition_collapsed(part))
    return BucketSummary(
        int(part[DUPLICATE].sum()),
        partition_latest(part),
        collapsed,
        partition_earliest(part),
        partition_shop_ids(part),
    )


@dataclass(frozen=True)
class Spill:
    """Pass 1 done: the filled bucket files, and what stayed in memory of each checked block."""

    store: BucketFiles
    blocks: list[MessageRows]
    """Each checked piece of the messages without its good rows (they are in the buckets)."""
    small: SmallTables
    dtypes: dict[str, Any]
    """The good rows' column types, to read the buckets back as the blocks had them."""

    def summaries(self) -> list[BucketSummary]:
        """Each filled bucket's summary, from the few columns that settle duplicates."""
        return [
            bucket_summary(flagged_duplicates(self.store.read(b, SUMMARY_COLUMNS), self.dtypes))
            for b in self.store.filled()
        ]

    def flagged(self, bucket: int) -> pd.DataFrame:
        """One bucket's rows, all columns, duplicates flagged."""
        return flagged_duplicates(self.store.read(bucket), self.dtypes)


@contextmanager
def spilled(
    folder: Path,
    policy: Policy,
    *,
    date_format: str | None,
    reject_mangled_ids: bool,
    buckets: int | None,
    block_rows: int | None,
    workdir: Path | None,
) -> Iterator[Spill]:
    """Pass 1: every table checked, the good messages spilled to bucket files by shop.

    The bucket files live in a temporary folder under `workdir` (default: `TMPDIR`), removed
    when the block using them ends, also when it fails.
    """
    paths = table_paths(folder)
    raw = {name: read_table(name, path) for name, path in paths.items() if name != "messages"}
    shops_table = checked_shops(raw, policy, reject_mangled_ids)
    check = partial(
        checked_block,
        known=known_zones(shops_table),
        default_timezone=policy.default_timezone,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
    )
    count = buckets or bucket_count(paths["messages"])
    with (
        tempfile.TemporaryDirectory(prefix="cs-metrics-spill-", dir=workdir) as folder_name,
        BucketFiles(Path(folder_name), count) as store,
    ):
        spill_block = partial(spilled_block, check=check, store=store, block_rows=block_rows)
        spilled_blocks = map_blocks(
            "messages",
            paths["messages"],
            spill_block,
            METRICS_ONLY,
            csv_block_bytes=FLAT_CSV_BLOCK_BYTES,
        )
        blocks = [piece for block in spilled_blocks for piece in block]
        store.close()
        small = small_tables(
            raw,
            shops_table,
            [shops for shops, _ in blocks],
            policy,
            date_format=date_format,
            reject_mangled_ids=reject_mangled_ids,
        )
        rows = [rows for _, rows in blocks]
        dtypes = {str(c): d for c, d in rows[0].good.dtypes.items()}
        yield Spill(store, rows, small, dtypes)


def settled(spill: Spill, summaries: list[BucketSummary], policy: Policy) -> Dataset:
    """The Dataset `pipeline.load` gives, without the good messages (they are in the buckets)."""
    checked = checked_messages(
        spill.blocks, sum(s.duplicates for s in summaries), [s.collapsed for s in summaries]
    )
    return dataset_of(checked, spill.small, policy)


def load_on_disk(
    folder: Path,
    policy: Policy,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
    buckets: int | None = None,
    block_rows: int | None = None,
    workdir: Path | None = None,
) -> tuple[Dataset, list[BucketSummary]]:
    """`pipeline.load` with the messages spilled to disk, and each bucket's summary.

    The Dataset's counts, quarantine, warnings and shop ids are those `load` gives; its
    `messages` frame is empty (the summaries give the used messages' time range and shops).
    """
    with spilled(
        folder,
        policy,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
        buckets=buckets,
        block_rows=block_rows,
        workdir=workdir,
    ) as spill:
        summaries = spill.summaries()
    return settled(spill, summaries, policy), summaries


def evaluate_on_disk(
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
    buckets: int | None = None,
    block_rows: int | None = None,
    workdir: Path | None = None,
) -> tuple[Dataset, Evaluation]:
    """`pipeline.load` then `pipeline.evaluate` (metrics only), the messages spilled to disk.

    `buckets` (default: by file size) and `block_rows` (pieces of each read block checked and
    spilled apart; default: whole blocks) exist for tests; `workdir` holds the temporary folder
    (default: the system's, `TMPDIR`).
    """
    with spilled(
        folder,
        policy,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
        buckets=buckets,
        block_rows=block_rows,
        workdir=workdir,
    ) as spill:
        dataset = settled(spill, [], policy)
        if strict and dataset.bad_rows:
            raise StrictModeError(_strict_message(dataset, table_paths(folder)))

        meta = spill.blocks[0].good
        no_messages = flagged_duplicates(meta, spill.dtypes).drop(columns=DUPLICATE)
        summaries = spill.summaries() if cutoff is None else []
        cut = cutoff if cutoff is not None else latest_of([s.latest for s in summaries])
        shops = shop_zones(dataset, shop_ids)
        inputs = metric_inputs(dataset, window_bounds(shops, start, end), cut, policy)
        wanted = set(bucket_numbers(shops["shop_id"], spill.store.buckets).tolist())
        found = []
        for bucket in spill.store.filled():
            if cutoff is None and bucket not in wanted:
                continue
            part = spill.flagged(bucket)
            if cutoff is not None:
                summaries.append(bucket_summary(part))
            found.append(detached(partition_metrics(part, inputs)))
    return settled(spill, summaries, policy), evaluation_of(found, inputs, no_messages, start, end)
