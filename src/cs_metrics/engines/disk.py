"""The disk engine: messages spilled to per-shop bucket files, each bucket then one group.

Peak memory stays nearly flat as the messages file grows (docs/large_files.md). The messages are
read in blocks (`readers.map_blocks`), each block checked as by every engine (two at once, on
threads), and its good rows appended, block after block in file order, to one of several bucket
files (Arrow IPC) in a temporary folder, chosen by a stable hash of the shop_id: each shop's rows
are all in one bucket. Its bad rows go to the quarantine spill (`engines.quarantine`), and a
message repeating an earlier one of its shop in the same block is dropped there as a duplicate
(one shop's repeated rows would otherwise fill its bucket). Only the counts, id findings and shop
ids of each block stay in memory. `pipeline` then settles the remaining duplicates once
(writing the keys it adds beside each bucket) and evaluates bucket by bucket, two buckets in
memory at a time (one per core). A pass over the buckets reads only the columns it needs. The
temporary folder is removed when the run ends, also when it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from cs_metrics.engines import (
    CHECK_THREADS,
    CheckedMessages,
    MessageSource,
    set_aside,
    without_good_rows,
)
from cs_metrics.engines.quarantine import QuarantineSpill
from cs_metrics.readers import ROW, map_blocks
from cs_metrics.threads import in_order
from cs_metrics.validate import AS_CATEGORIES, BlockCheck

T = TypeVar("T")

BUCKET_BYTES = 32 * 2**20
"""Bytes of messages file per bucket: a bucket's rows take a few times this in memory."""
MAP_THREADS = 2
"""Buckets worked on at once: most of a bucket's work runs in Arrow and numpy, outside the GIL,
so two use both cores of a small machine; each holds its bucket in memory."""
MAX_BUCKETS = 512
"""At most this many bucket files (each is an open file during pass 1)."""


SPILL_FORMAT = pa.ipc.IpcWriteOptions(compression="lz4")
"""Bucket files are Arrow IPC files, LZ4-compressed: read back soon, so speed over size. On 1M
generated messages: written in 0.17 s and read in 0.12 s, 58 MB; as Parquet with its defaults
0.43 s and 0.53 s, 27 MB."""


FLAT_CSV_BLOCK_BYTES = 2**22
"""CSV blocks of 4 MB: with Arrow's default 32 MB ones the peak grew with file size (measured:
517, 633 and 839 MB at 1M, 2M and 4M rows; 332, 344 and 364 MB with 4 MB blocks)."""


def bucket_count(path: Path) -> int:
    """Buckets for a messages file: one per BUCKET_BYTES of it, at least 1, at most MAX_BUCKETS."""
    size = path.stat().st_size if path.is_file() else 0
    return int(min(MAX_BUCKETS, max(1, -(-size // BUCKET_BYTES))))


def bucket_numbers(shop_ids: pd.Series, buckets: int) -> np.ndarray:
    """Each row's bucket: a stable hash of its shop_id, modulo `buckets`."""
    codes, distinct = pd.factorize(shop_ids)
    hashes = pd.util.hash_pandas_object(pd.Series(distinct, dtype=object), index=False)
    return (hashes.to_numpy() % np.uint64(buckets)).astype("int64")[codes]


@dataclass(frozen=True)
class BucketRows:
    """A block's good rows in bucket order: each bucket's rows are one slice."""

    table: pa.Table
    bounds: np.ndarray
    """Where each bucket's rows start in `table` (and, last, its length)."""


class BucketFiles:
    """Append-only Arrow IPC files in a folder, one per bucket (the disk engine's spill)."""

    def __init__(self, folder: Path, buckets: int) -> None:
        """Buckets 0..`buckets`-1 under `folder`, none written yet."""
        self.folder = folder
        self.buckets = buckets
        self.schema: pa.Schema | None = None
        self.writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}

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
        return self.folder / f"bucket-{bucket:04d}.arrow"

    def append(self, good: pd.DataFrame) -> None:
        """Rows appended to the files of their shops' buckets (in their order)."""
        self.write(self.arranged(good))

    def arranged(self, good: pd.DataFrame) -> BucketRows | None:
        """Rows put in bucket order, to `write` (None for no row). Changes no file: blocks are
        arranged on several threads at once, then written one at a time."""
        if not len(good):
            return None
        numbers = bucket_numbers(good["shop_id"], self.buckets)
        order = np.argsort(numbers, kind="stable")
        bounds = np.searchsorted(numbers[order], np.arange(self.buckets + 1))
        # One Arrow take puts the block in bucket order; each bucket's rows are then a slice
        # (a pandas take per bucket copied every text column once per bucket, with overhead).
        table = pa.Table.from_pandas(good, preserve_index=False).take(pa.array(order))
        return BucketRows(table, bounds)

    def write(self, rows: BucketRows | None) -> None:
        """Arranged rows appended to the files of their buckets, with the column types of the
        first rows written."""
        if rows is None:
            return
        table = rows.table
        if self.schema is None:
            self.schema = table.schema
        elif not table.schema.equals(self.schema):
            table = table.cast(self.schema)
        bounds = rows.bounds
        for bucket in np.flatnonzero(np.diff(bounds)).tolist():
            part = table.slice(bounds[bucket], bounds[bucket + 1] - bounds[bucket])
            if bucket not in self.writers:
                self.writers[bucket] = self._writer(bucket, self.schema)
            self.writers[bucket].write_table(part)

    def put(self, bucket: int, rows: pd.DataFrame) -> None:
        """A bucket's rows written as its file, with their own column types (`append` gives
        every bucket the first block's)."""
        table = pa.Table.from_pandas(rows, preserve_index=False)
        self.writers[bucket] = self._writer(bucket, table.schema)
        self.writers[bucket].write_table(table)

    def _writer(self, bucket: int, schema: pa.Schema) -> pa.ipc.RecordBatchFileWriter:
        return pa.ipc.new_file(str(self.path(bucket)), schema, options=SPILL_FORMAT)

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

    def read(self, bucket: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One bucket's rows (all columns, or those named that it has), in the order they were
        appended. Columns not named are not read (nor decompressed)."""
        path = str(self.path(bucket))
        fields = None
        if columns is not None:
            with pa.ipc.open_file(path) as reader:
                names = reader.schema.names
            wanted = set(columns)
            fields = [i for i, name in enumerate(names) if name in wanted]
        # Arrow reads every field for an empty list: one is read for the count of rows.
        options = None if fields is None else pa.ipc.IpcReadOptions(included_fields=fields or [0])
        with pa.ipc.open_file(path, options=options) as reader:
            table = reader.read_all()
        if fields == []:
            table = table.drop_columns(table.column_names)
        return table.to_pandas(types_mapper=_text_as_string)


def _text_as_string(kind: pa.DataType) -> Any:
    """Arrow text read back as pandas' Arrow-backed strings (not Python objects)."""
    return pd.StringDtype("pyarrow") if kind in (pa.string(), pa.large_string()) else None


def block_pieces(block: pd.DataFrame, rows: int | None) -> list[pd.DataFrame]:
    """A block of rows cut into pieces of at most `rows` rows (the block itself when None)."""
    if rows is None or len(block) <= rows:
        return [block]
    return [block.iloc[a : a + rows].reset_index(drop=True) for a in range(0, len(block), rows)]


@dataclass(frozen=True)
class CheckedBlock:
    """A block checked (on a worker thread): what is kept of each of its pieces' checks, and
    their good rows arranged for the buckets, not written yet."""

    first: bool
    """Whether the block begins the table (row 1)."""
    pieces: list[BlockCheck]
    rows: list[BucketRows | None]


def checked_block(
    block: pd.DataFrame,
    check: Callable[[pd.DataFrame], BlockCheck],
    store: BucketFiles,
    block_rows: int | None,
    spill: QuarantineSpill,
) -> CheckedBlock:
    """A block checked, its bad rows set aside in `spill`, its good rows arranged for the
    buckets (`written` appends them)."""
    pieces, rows = [], []
    for piece in block_pieces(block, block_rows):
        checked = set_aside(check(piece), spill)
        rows.append(store.arranged(checked.rows.good))
        pieces.append(without_good_rows(checked))
    return CheckedBlock(bool(len(block)) and int(block[ROW].iloc[0]) == 1, pieces, rows)


def written(block: CheckedBlock, store: BucketFiles) -> CheckedBlock:
    """A checked block's good rows appended to the buckets (blocks come here in file order);
    the rest kept."""
    if block.first:
        # The first block, or the CSV reader starting over with its tolerant parser.
        store.restart()
    for rows in block.rows:
        store.write(rows)
    return replace(block, rows=[])


@dataclass(frozen=True)
class BucketGroups:
    """The messages in bucket files, one group per bucket, read back MAP_THREADS at a time."""

    store: BucketFiles
    dtypes: dict[str, Any]
    """The good rows' column types, to read the buckets back as the blocks had them."""
    meta: pd.DataFrame
    """No row, with the columns and types of a group after `steps`."""
    steps: tuple[Callable[[pd.DataFrame], pd.DataFrame], ...] = ()
    needs: tuple[str, ...] | None = ()
    """The columns the steps read (None: any of them)."""
    added: BucketFiles | None = None
    """Columns that settled steps added, in files of their own beside the buckets' (the same
    rows in the same order): the buckets' own files are never rewritten."""
    settled_columns: tuple[str, ...] = ()
    """With `added`: the columns of a settled bucket, in order (before the later steps)."""

    def group(self, bucket: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One bucket's rows as the blocks had them (all columns, or `columns` and those the
        steps need), through every step."""
        wanted = None if columns is None or self.needs is None else (*columns, *self.needs)
        return self._worked(self._read(bucket, wanted))

    def _worked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Columns read from a bucket as the blocks had them, through every step."""
        frame = frame.astype({c: d for c, d in self.dtypes.items() if c in frame.columns})
        for step in self.steps:
            frame = step(frame)
        return frame

    def _read(self, bucket: int, columns: Sequence[str] | None) -> pd.DataFrame:
        """A bucket's columns (all, or those named that it has), its added ones beside them."""
        if self.added is None:
            return self.store.read(bucket, columns)
        wanted = set(self.settled_columns if columns is None else columns)
        names = [c for c in self.settled_columns if c in wanted]
        extra = self.added.read(bucket, names)
        own = self.store.read(bucket, [c for c in names if c not in extra.columns])
        return pd.concat([own, extra], axis=1)[names]

    def map(
        self, func: Callable[[pd.DataFrame], T], columns: Sequence[str] | None = None
    ) -> list[T]:
        """`func` of each bucket (only `columns` read, when named), in bucket order; MAP_THREADS
        buckets in memory at a time."""
        return list(
            in_order(lambda b: func(self.group(b, columns)), self.store.filled(), MAP_THREADS)
        )

    def transform(
        self, func: Callable[[pd.DataFrame], pd.DataFrame], needs: Sequence[str] | None = None
    ) -> BucketGroups:
        """The buckets with `func` applied as each is read (the files stay as they are)."""
        steps = (*self.steps, func)
        reads = None if needs is None or self.needs is None else (*self.needs, *needs)
        return replace(self, steps=steps, needs=reads, meta=func(self.meta.copy()))

    def settled(self) -> BucketGroups:
        """The buckets with every step worked out once, so later maps only read them: each step
        would otherwise run at every map.

        The steps must keep each bucket's rows in place and only add columns (as the duplicate
        rule does): only the columns they read are read, and only those they add are written,
        beside each bucket's file. Rewriting every column (the texts most of all) took longer
        than the rule itself.
        """
        if not self.steps:
            return self
        added = BucketFiles(self.store.folder / "settled", self.store.buckets)
        added.folder.mkdir()

        def settle(bucket: int) -> None:
            before = self._read(bucket, self.needs)
            after = self._worked(before)
            if len(after) != len(before) or (
                ROW in after and not np.array_equal(after[ROW].to_numpy(), before[ROW].to_numpy())
            ):
                raise RuntimeError("a settled step moved the rows of its bucket")
            new = [c for c in after.columns if c in self.meta.columns and c not in before]
            added.put(bucket, after[new])

        with added:
            list(in_order(settle, self.store.filled(), MAP_THREADS))
        columns = tuple(self.meta.columns)
        return BucketGroups(
            self.store, self.dtypes, self.meta, added=added, settled_columns=columns
        )

    def held(self) -> None:
        """None: the messages are on disk."""
        return

    def empty(self) -> pd.DataFrame:
        """No message, with the columns and types of a group."""
        return self.meta


@dataclass(frozen=True)
class DiskEngine:
    """Spills the good messages to bucket files under `folder` (a temporary folder)."""

    folder: Path
    buckets: int | None = None
    """Bucket files (default: one per BUCKET_BYTES of messages file)."""
    block_rows: int | None = None
    """Rows checked and spilled at a time (default: whole read blocks); for tests."""
    name: str = "disk"

    def checked_messages(self, source: MessageSource) -> CheckedMessages:
        """Every block checked and its good rows spilled to the buckets of their shops."""
        store = BucketFiles(self.folder, self.buckets or bucket_count(source.path))
        check = partial(
            checked_block,
            check=source.check,
            store=store,
            block_rows=self.block_rows,
            spill=source.spill,
        )
        with store:
            spilled = map_blocks(
                "messages",
                source.path,
                check,
                source.columns,
                source.row_groups,
                CHECK_THREADS,
                csv_block_bytes=FLAT_CSV_BLOCK_BYTES,
                then=partial(written, store=store),
                categories=AS_CATEGORIES,
            )
        blocks = [piece for block in spilled for piece in block.pieces]
        meta = blocks[0].rows.good
        dtypes = {str(c): d for c, d in meta.dtypes.items()}
        return CheckedMessages(blocks, BucketGroups(store, dtypes, meta))


SPILL_PREFIX = "cs-metrics-spill-"
"""Spill folders are named `cs-metrics-spill-<pid>-<random>`: a later run can tell those of a
process that is gone (killed, so its own clean-up never ran) and remove them."""


@contextmanager
def disk_engine(
    workdir: Path | None = None, buckets: int | None = None, block_rows: int | None = None
) -> Iterator[DiskEngine]:
    """The disk engine, its bucket files in a temporary folder under `workdir` (default:
    `TMPDIR`), removed when the block ends, also when it fails; spill folders that killed runs
    left there are removed first."""
    base = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
    remove_dead_spills(base)
    prefix = f"{SPILL_PREFIX}{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as folder:
        yield DiskEngine(Path(folder), buckets, block_rows)


def remove_dead_spills(base: Path) -> list[Path]:
    """Remove the spill folders under `base` whose process no longer runs (ours only: the
    folder must be a real folder owned by this user; links are never followed)."""
    removed = []
    for path in base.glob(f"{SPILL_PREFIX}*-*"):
        pid = path.name[len(SPILL_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or path.is_symlink() or not path.is_dir():
            continue
        if path.stat().st_uid != os.getuid() or _running(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
