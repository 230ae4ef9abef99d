"""Quarantined rows set aside on disk as they are found: memory holds only their counts.

(With them, the summaries of duplicates an engine dropped early: see `engines.without_repeats`.)

A messages file of bad rows (every timestamp unreadable, or text that is not CSV at all) would
otherwise be held whole until its quarantine CSV is written: 1 GB of bad rows took 8 GB. Each
checked block's bad rows are appended to an unnamed temporary Arrow IPC file (`QuarantineSpill`);
only the rows per reason and per shop stay in memory. The quarantine CSV is then written by
reading the spill back one block at a time, in row order (`Quarantine.batches`).

The spill files have no name: the operating system removes them when they are closed or when the
process ends, however it ends (a killed run leaves nothing behind in the temporary folder).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias

import pandas as pd
import pyarrow as pa

from cs_metrics.duplicates import GroupSummary
from cs_metrics.readers import ROW

SHOP = "shop_id"
REASON = "reason"


@dataclass
class _Segment:
    """One spill file: the bad rows of every block whose columns were the same."""

    handle: IO[bytes]
    writer: pa.ipc.RecordBatchFileWriter | None
    schema: pa.Schema
    batches: int = 0


def _text_as_string(kind: pa.DataType) -> Any:
    """Arrow text read back as the quarantine had it: pandas' string dtype."""
    return pd.StringDtype() if kind in (pa.string(), pa.large_string()) else None


def shop_counts(quarantine: pd.DataFrame) -> pd.Series:
    """Quarantined rows per (trimmed, non-empty) shop_id: a row with no shop_id counts for none."""
    if SHOP not in quarantine.columns or not len(quarantine):
        return pd.Series(dtype="int64")
    ids = quarantine[SHOP].astype("string").str.strip()
    return ids.loc[ids.notna() & (ids != "")].value_counts()


def reason_counts(quarantine: pd.DataFrame) -> pd.Series:
    """Quarantined rows per reason code."""
    if not len(quarantine):
        return pd.Series(dtype="int64")
    return quarantine[REASON].value_counts()


def _added(total: pd.Series, more: pd.Series) -> pd.Series:
    """Two counts per key summed (keys of either)."""
    if not len(more):
        return total
    if not len(total):
        return more.astype("int64")
    return total.add(more, fill_value=0).astype("int64")


class QuarantineSpill:
    """The quarantined rows of one table in temporary Arrow IPC files, their counts in memory.

    Blocks may arrive out of order (the in-memory engine checks two at a time): each is kept
    under the number of its first bad row and read back in row order. A block starting at row 1
    when one already did is the reader starting the table over: what was spilled is dropped.
    Safe to call from several threads.
    """

    def __init__(self, table: str, folder: Path | None = None) -> None:
        """An empty spill of `table`'s bad rows, its files under `folder` (default: TMPDIR)."""
        self.table = table
        self.folder = folder
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._order: list[tuple[int, int, int]] = []
        """(first bad row, segment, batch) of every batch written."""
        self._started = False
        self._finished = False
        self.rows = 0
        self.reasons = pd.Series(dtype="int64")
        """Rows per reason code."""
        self.by_shop = pd.Series(dtype="int64")
        """Rows per trimmed, non-empty shop_id."""
        self.early_duplicates: list[GroupSummary] = []
        """Duplicates an engine found within one block and dropped before grouping the rows."""

    def add_duplicates(self, summary: GroupSummary) -> None:
        """Duplicates dropped from one block (counted with the rest; restarted with the spill)."""
        with self._lock:
            self.early_duplicates.append(summary)

    def add(self, quarantine: pd.DataFrame, first_row: int | None = None) -> None:
        """One block's bad rows set aside (`first_row`: the block's first row, bad or not)."""
        table = None
        if len(quarantine):
            # Converted outside the lock: the other thread keeps checking meanwhile.
            table = pa.Table.from_pandas(quarantine, preserve_index=False)
            reasons, shops = reason_counts(quarantine), shop_counts(quarantine)
        with self._lock:
            if first_row == 1:
                if self._started:
                    self._restart()
                self._started = True
            if table is None:
                return
            self._write(table, int(quarantine[ROW].iloc[0]))
            self.rows += len(quarantine)
            self.reasons = _added(self.reasons, reasons)
            self.by_shop = _added(self.by_shop, shops)

    def _write(self, table: pa.Table, first_bad: int) -> None:
        if self._finished:
            raise RuntimeError("quarantine spill already read back")
        number = next(
            (n for n, s in enumerate(self._segments) if s.schema.equals(table.schema)), None
        )
        if number is None:
            handle = tempfile.TemporaryFile(  # noqa: SIM115 -- open for the spill's life
                prefix=f"cs-metrics-quarantine-{self.table}-", dir=self.folder
            )
            writer = pa.ipc.new_file(handle, table.schema)
            self._segments.append(_Segment(handle, writer, table.schema))
            number = len(self._segments) - 1
        segment = self._segments[number]
        assert segment.writer is not None
        for batch in table.to_batches():
            segment.writer.write_batch(batch)
            self._order.append((first_bad, number, segment.batches))
            segment.batches += 1

    def _restart(self) -> None:
        self._close_files()
        self._order = []
        self.early_duplicates = []
        self.rows = 0
        self.reasons = pd.Series(dtype="int64")
        self.by_shop = pd.Series(dtype="int64")

    def _finish(self) -> list[pa.RecordBatchFileReader]:
        """The spill files complete, each opened for reading."""
        with self._lock:
            self._finished = True
            for segment in self._segments:
                if segment.writer is not None:
                    segment.writer.close()
                    segment.writer = None
            readers = []
            for segment in self._segments:
                segment.handle.seek(0)
                readers.append(pa.ipc.open_file(segment.handle))
            return readers

    def columns(self) -> list[str]:
        """The columns of the rows stacked in row order (those of every block, as they came)."""
        names: dict[str, None] = {}
        for _, number, _ in sorted(self._order):
            for name in self._segments[number].schema.names:
                names.setdefault(name, None)
        return list(names)

    def batches(self) -> Iterator[pd.DataFrame]:
        """The bad rows in row order, one block at a time, each with every column."""
        readers = self._finish()
        columns = self.columns()
        for _, number, batch in sorted(self._order):
            frame = readers[number].get_batch(batch).to_pandas(types_mapper=_text_as_string)
            yield frame if list(frame.columns) == columns else frame.reindex(columns=columns)

    def frame(self) -> pd.DataFrame:
        """Every bad row as one frame (held in memory: for small tables and library users)."""
        frames = list(self.batches())
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def _close_files(self) -> None:
        for segment in self._segments:
            if segment.writer is not None:
                # The file goes anyway; its content is no longer wanted.
                with contextlib.suppress(OSError, pa.ArrowException):
                    segment.writer.close()
            segment.handle.close()
        self._segments = []

    def close(self) -> None:
        """The spill files closed, which removes them."""
        with self._lock:
            self._close_files()
            self._order = []


QuarantinedRows: TypeAlias = pd.DataFrame | QuarantineSpill


class Quarantine(Mapping[str, pd.DataFrame]):
    """The quarantined rows of each table with some: held frames, or spills on disk.

    Indexing gives a table's rows as one frame (read back whole from a spill); `batches`,
    `reasons` and `by_shop` serve the run itself without holding the rows.
    """

    def __init__(self, tables: Mapping[str, QuarantinedRows] | None = None) -> None:
        """The tables' bad rows; tables without any are left out."""
        self.tables = {name: rows for name, rows in (tables or {}).items() if _row_count(rows)}

    def __getitem__(self, name: str) -> pd.DataFrame:
        """One table's bad rows as one frame."""
        rows = self.tables[name]
        return rows.frame() if isinstance(rows, QuarantineSpill) else rows

    def __iter__(self) -> Iterator[str]:
        """The names of the tables with bad rows."""
        return iter(self.tables)

    def __len__(self) -> int:
        """Tables with bad rows."""
        return len(self.tables)

    def batches(self, name: str) -> Iterator[pd.DataFrame]:
        """One table's bad rows a block at a time, in row order, each with every column."""
        rows = self.tables[name]
        if isinstance(rows, QuarantineSpill):
            yield from rows.batches()
        else:
            yield rows

    def reasons(self, name: str) -> pd.Series:
        """One table's bad rows per reason code (empty when it has none)."""
        rows = self.tables.get(name)
        if rows is None:
            return pd.Series(dtype="int64")
        return rows.reasons if isinstance(rows, QuarantineSpill) else reason_counts(rows)

    def by_shop(self, name: str) -> pd.Series:
        """One table's bad rows per trimmed, non-empty shop_id (empty when it has none)."""
        rows = self.tables.get(name)
        if rows is None:
            return pd.Series(dtype="int64")
        return rows.by_shop if isinstance(rows, QuarantineSpill) else shop_counts(rows)

    def first_rows(self, name: str, reason: str, limit: int) -> pd.DataFrame:
        """The first `limit` bad rows of one reason, in row order (read until found)."""
        found, count = [], 0
        for batch in self.batches(name) if name in self.tables else iter(()):
            rows = batch.loc[batch[REASON] == reason].head(limit - count)
            found.append(rows)
            count += len(rows)
            if count >= limit:
                break
        return pd.concat(found, ignore_index=True) if found else pd.DataFrame()

    def close(self) -> None:
        """Every spill file removed (the spilled rows can no longer be read)."""
        for rows in self.tables.values():
            if isinstance(rows, QuarantineSpill):
                rows.close()


def _row_count(rows: QuarantinedRows) -> int:
    return rows.rows if isinstance(rows, QuarantineSpill) else len(rows)
