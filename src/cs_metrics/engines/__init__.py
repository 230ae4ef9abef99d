"""Where the good messages live and how they are grouped: the engines behind `pipeline.load`.

An engine reads the messages table, checks each block with the one per-block check
(`validate.MessageCheck`) and hands back the good rows grouped so that each shop's rows are all
in one group (`MessageGroups`), with what it kept of each checked block (counts, shop ids); each
block's bad rows go to the source's quarantine spill as soon as it is checked (`set_aside`).
Everything else (small tables, strict mode, the default cut-off, the duplicate rule, warnings,
the evaluation) is done once, by `pipeline`, whatever the engine.

`memory` holds every message in this process (pandas); `disk` spills them to per-shop bucket
files and takes one bucket at a time (memory flat with file size); `dask` reads, settles and
evaluates them on the workers of a Dask cluster (docs/dask.md). `choose` picks one
(docs/large_files.md, "Which engine").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cs_metrics.arrow_text import text_codes
from cs_metrics.duplicates import (
    DUPLICATE,
    SHOP_CODE,
    GroupSummary,
    group_summary,
    shared_ids,
    with_id_values,
)
from cs_metrics.engines.quarantine import QuarantineSpill
from cs_metrics.errors import UsageError
from cs_metrics.readers import ROW, RowGroups, parquet_files, table_paths
from cs_metrics.validate import BlockCheck, MessageCheck, MessageRows

T = TypeVar("T")

ENGINES = ("auto", "pandas", "disk", "dask")
"""Engine names of `--engine`: auto picks pandas or disk (see `chosen_name`)."""
CHECK_THREADS = 2
"""Blocks of messages checked at once while the next is read, by the in-memory and the disk
engine (the checks' Arrow and numpy work runs outside the GIL); more would hold more blocks in
memory."""
MEMORY_PER_FILE_BYTE = {".parquet": 12, ".csv": 3, ".jsonl": 2}
"""Peak memory of the pandas engine per byte of messages file, by format (measured on generated
weeks, docs/large_files.md; a folder of Parquet files counts as Parquet)."""
MEMORY_PER_ROW = 300
"""Peak memory of the pandas engine per message row (3.0 GB at 10M rows, docs/performance.md):
a Parquet file's rows, not its bytes, say how much it unpacks to."""


class MessageGroups(Protocol):
    """The good message rows, in groups that each hold all the rows of some shops.

    Within a group, rows keep their `row_number` (their place in the file), not always their
    order: the duplicate rule sorts by it.
    """

    def map(
        self, func: Callable[[pd.DataFrame], T], columns: Sequence[str] | None = None
    ) -> list[T]:
        """`func` of each group, where the group lives; the results, here. With `columns`,
        `func` reads only those (where the groups have them): an engine may leave the others
        unread."""
        ...

    def transform(
        self, func: Callable[[pd.DataFrame], pd.DataFrame], needs: Sequence[str] | None = None
    ) -> MessageGroups:
        """The groups, each replaced by `func` of it, kept where they live; `func` reads the
        columns `needs` (None: any column) besides those a later `map` asks for."""
        ...

    def settled(self) -> MessageGroups:
        """The groups with every transform worked out once and kept: an engine that applies its
        transforms as each group is read does them now, not again at every `map`."""
        ...

    def held(self) -> pd.DataFrame | None:
        """Every row as one frame when this process holds them all (else None)."""
        ...

    def empty(self) -> pd.DataFrame:
        """A frame with the groups' columns and types, and no row."""
        ...


@dataclass(frozen=True)
class MessageSource:
    """The messages table to read and how to check each block of it."""

    path: Path
    check: MessageCheck
    columns: tuple[str, ...] | None = None
    """The optional columns wanted (None: all of them)."""
    row_groups: RowGroups | None = None
    """The Parquet row groups to read (None: all; see `readers.row_groups_up_to`)."""
    spill: QuarantineSpill = field(default_factory=lambda: QuarantineSpill("messages"))
    """Where each block's bad rows go as soon as it is checked (`set_aside`)."""


@dataclass(frozen=True)
class CheckedMessages:
    """The messages table checked: each block without its good rows, and the good rows grouped."""

    blocks: list[BlockCheck]
    groups: MessageGroups


class Engine(Protocol):
    """Reads and checks the messages table, and keeps its good rows grouped by shop."""

    @property
    def name(self) -> str:
        """The engine's `--engine` name."""
        ...

    def checked_messages(self, source: MessageSource) -> CheckedMessages:
        """Every block of `source` checked; the good rows grouped so each shop's are together."""
        ...


def empty_like(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame with the columns and types of `frame` and no row, sharing none of its memory.

    An empty slice of Arrow-backed columns would keep every buffer of `frame` alive.
    """
    return pd.DataFrame({c: pd.Series([], dtype=frame[c].dtype) for c in frame.columns})


def detached(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` copied out of its buffers (which may hold a whole block of text)."""
    return frame.take(np.arange(len(frame))) if len(frame) else empty_like(frame)


def without_good_rows(block: BlockCheck) -> BlockCheck:
    """A checked block without its good rows (kept in the groups): shops, quarantine, counts.

    What is kept shares no memory with the block: kept for every block of a large file, it
    would otherwise keep each block's text alive.
    """
    rows = block.rows
    quarantine = detached(rows.quarantine)
    kept = MessageRows(empty_like(rows.good), quarantine, rows.rows_read, rows.findings)
    return BlockCheck(block.shop_ids, kept)


def first_row(block: BlockCheck) -> int | None:
    """The number of a checked block's first row, good or bad (None: no row)."""
    firsts = [int(f[ROW].iloc[0]) for f in (block.rows.good, block.rows.quarantine) if len(f)]
    return min(firsts) if firsts else None


def set_aside(block: BlockCheck, spill: QuarantineSpill, shop_codes: bool = False) -> BlockCheck:
    """A checked block whose bad rows went to `spill`: held for every block, they would take
    more memory than the file (one Python string per value). With `shop_codes`, the good rows
    keep the block's SHOP_CODE (see `without_repeats`)."""
    rows = block.rows
    spill.add(rows.quarantine, first_row(block))
    good = without_repeats(rows.good, spill, shop_codes)
    # Good rows that are a small part of their block are copied out of it: a slice of Arrow-backed
    # columns (even an empty one) keeps the whole block's text alive, for every block.
    good = good if 2 * len(good) >= rows.rows_read else detached(good)
    kept = MessageRows(good, empty_like(rows.quarantine), rows.rows_read, rows.findings)
    return BlockCheck(block.shop_ids, kept)


def without_repeats(
    good: pd.DataFrame, spill: QuarantineSpill, shop_codes: bool = False
) -> pd.DataFrame:
    """A block's good rows (in file order) without those that repeat the message_id of an
    earlier row of their shop in the same block, counted in `spill`.

    Such a row is a duplicate (SPEC 8) whatever came before the block, so it need not be held or
    grouped: one message repeated 40M times would otherwise fill one shop's group. The rows keep
    the ids' values worked out for this (`duplicates.with_id_values`) for the whole table's rule,
    and with `shop_codes` the codes of their shops (SHOP_CODE), for an engine that renumbers them
    for the whole table (`duplicates.table_shop_codes`).
    """
    good, values = with_id_values(good)
    shop, _ = text_codes(good["shop_id"])
    if shop_codes:
        good[SHOP_CODE] = shop.astype("int32")
    if len(good) < 2:
        return good
    repeated = shared_ids(good["message_id"], known=values).repeated(shop)
    if not repeated.any():
        return good
    found = group_summary(good.assign(**{DUPLICATE: repeated}))
    # Only the counts: the time range and shops are those of the rows kept, summarised later.
    no_shops = pd.Index([], dtype="string")
    spill.add_duplicates(
        GroupSummary(
            found.duplicates, None, None, no_shops, found.collapsed, found.duplicates_by_shop
        )
    )
    return good.loc[~repeated]


def checked_set_aside(
    block: pd.DataFrame,
    check: Callable[[pd.DataFrame], BlockCheck],
    spill: QuarantineSpill,
    shop_codes: bool = False,
) -> BlockCheck:
    """One block checked, its bad rows set aside in `spill` (see `set_aside`)."""
    return set_aside(check(block), spill, shop_codes)


def available_memory() -> int | None:
    """Bytes of memory available to start new work now (None where the system does not say).

    Linux's MemAvailable counts the page cache it can drop (after reading a large file, free
    memory alone is low); elsewhere, the free pages.
    """
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def larger_than_memory(folder: Path) -> bool:
    """Whether the pandas engine would need more memory than is available for this folder."""
    available = available_memory()
    return available is not None and memory_needed(table_paths(folder)["messages"]) > available


def memory_needed(path: Path) -> int:
    """Bytes the pandas engine would need for a messages table, about: by its Parquet rows, which
    a small file may hold many of (40M repeated rows in 1.6 MB), else by its file size."""
    if path.is_dir() or path.suffix == ".parquet":
        size = sum(f.stat().st_size for f in parquet_files(path))
        return max(parquet_rows(path) * MEMORY_PER_ROW, size * MEMORY_PER_FILE_BYTE[".parquet"])
    return path.stat().st_size * MEMORY_PER_FILE_BYTE.get(path.suffix, 3)


def parquet_rows(path: Path) -> int:
    """The rows of a Parquet table by its files' metadata (0 for a file that has none: the
    reader then says what is wrong with it)."""
    try:
        return sum(pq.read_metadata(file).num_rows for file in parquet_files(path))
    except (OSError, pa.ArrowException):
        return 0


DISK_FROM_BYTES = 256 * 2**20
"""`--engine auto` uses the disk engine for a CSV or JSON Lines messages file this large."""
DISK_FROM_ROWS = 12_000_000
"""`--engine auto` uses the disk engine for a Parquet messages table of this many rows (by its
metadata): the pandas engine's peak was 3.0 GB at 10M rows (docs/performance.md)."""
STREAMED_SUFFIXES = (".csv", ".jsonl")
"""Messages files read in small blocks, whose raw text the pandas engine briefly holds."""


def prefers_disk(
    folder: Path, disk_from_bytes: int | None = None, disk_from_rows: int | None = None
) -> bool:
    """Whether `--engine auto` picks the disk engine for this folder's messages table.

    A large CSV or JSON Lines file (`disk_from_bytes`), a Parquet table of many rows
    (`disk_from_rows`, however small its files), or any table that would not fit in the memory
    available: the disk engine's peak stays near half a gigabyte at any size. The limits default
    to DISK_FROM_BYTES and DISK_FROM_ROWS.
    """
    path = table_paths(folder)["messages"]
    if path.is_file() and path.suffix in STREAMED_SUFFIXES:
        large = path.stat().st_size >= (disk_from_bytes or DISK_FROM_BYTES)
    else:
        large = parquet_rows(path) >= (disk_from_rows or DISK_FROM_ROWS)
    return large or larger_than_memory(folder)


def chosen_name(
    name: str,
    folder: Path,
    disk_from_bytes: int | None = None,
    disk_from_rows: int | None = None,
) -> str:
    """The engine `auto` stands for: disk for large inputs (`prefers_disk`), else pandas."""
    if name != "auto":
        return name
    return "disk" if prefers_disk(folder, disk_from_bytes, disk_from_rows) else "pandas"


@contextmanager
def choose(
    name: str,
    folder: Path,
    *,
    scheduler: str | None = None,
    partitions: int | None = None,
) -> Iterator[Engine]:
    """The engine `name` (auto, pandas, disk or dask) for a folder, open while the block runs.

    `scheduler` (a running Dask scheduler's address) and `partitions` are for the Dask engine.
    """
    if name not in ENGINES:
        raise UsageError(f"--engine {name}: unknown engine (choose one of {', '.join(ENGINES)})")
    if name != "dask" and (scheduler is not None or partitions is not None):
        raise UsageError("--scheduler and --partitions need --engine dask")
    chosen = chosen_name(name, folder)
    # Each engine module builds on the protocol above, so it is imported once chosen (and Dask,
    # an optional extra, only for a Dask run).
    if chosen == "pandas":
        from cs_metrics.engines.memory import MemoryEngine

        yield MemoryEngine()
        return
    if chosen == "disk":
        from cs_metrics.engines.disk import disk_engine

        with disk_engine() as on_disk:
            yield on_disk
        return
    from cs_metrics.engines.dask import dask_engine

    with dask_engine(scheduler, partitions) as engine:
        yield engine
