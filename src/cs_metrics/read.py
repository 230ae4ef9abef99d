"""Read the input tables of a data folder as raw text columns, one row per input row."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from cs_metrics.errors import InputError

TABLES: dict[str, tuple[str, ...]] = {
    "messages": ("shop_id", "conversation_id", "message_id", "sender_role", "sent_at"),
    "ratings": ("shop_id", "conversation_id", "rating", "rated_at"),
    "holiday_mode": ("shop_id", "start", "end"),
    "shops": ("shop_id",),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "messages": ("sender_id", "message_type", "content"),
    "ratings": (),
    "holiday_mode": (),
    "shops": ("name", "market", "timezone"),
}
REQUIRED_SOMEWHERE = frozenset(c for columns in TABLES.values() for c in columns)
"""Columns some table requires (a JSON Lines block with one of them all null is read line by
line, which tells a key never written from a key written as null)."""
TIMESTAMP_COLUMNS = frozenset({"sent_at", "rated_at", "start", "end"})
FORMATS = ("csv", "parquet", "jsonl")
ROW = "row_number"
"""Column holding each row's 1-based position among the file's data rows (header excluded)."""
PARSE_ERROR = "_parse_error"
"""Column set on rows the reader could not split into fields (e.g. a JSON line, no object)."""


@dataclass(frozen=True)
class RawTable:
    """One input table as read: text columns (typed for Parquet timestamps), plus its origin."""

    name: str
    path: Path
    frame: pd.DataFrame


def table_paths(folder: Path) -> dict[str, Path]:
    """The file of each table present in `folder`; two formats of one table is an error."""
    if not folder.is_dir():
        raise InputError(f"{folder}: data folder not found")
    found: dict[str, Path] = {}
    for name in TABLES:
        files = [folder / f"{name}.{ext}" for ext in FORMATS]
        # A file named just `messages` is no table (found in audit: it was read as CSV).
        present = [p for p in files if p.is_file()]
        if is_parquet_dataset(folder / name):
            present.append(folder / name)
        if len(present) > 1:
            names = ", ".join(p.name for p in present)
            raise InputError(f"{folder}: table {name} is given in two formats ({names}); keep one")
        if present:
            found[name] = present[0]
    if "messages" not in found:
        raise InputError(
            f"{folder}: messages table not found "
            "(messages.csv, .parquet, .jsonl or a messages/ folder of Parquet files)"
        )
    return found


def is_parquet_dataset(path: Path) -> bool:
    """A folder of Parquet files, e.g. Hive partitions `messages/date=2026-11-16/part-0.parquet`."""
    return path.is_dir() and any(path.rglob("*.parquet"))


def read_table(name: str, path: Path, optional: tuple[str, ...] | None = None) -> RawTable:
    """Read one table file (required and wanted optional columns), check it, number its rows."""
    blocks = map_blocks(name, path, lambda block: block, optional)
    columns = list(blocks[0].columns) if blocks else [*TABLES[name], ROW]
    return RawTable(name, path, _concat_blocks(blocks, columns))


T = TypeVar("T")


def map_blocks(
    name: str,
    path: Path,
    func: Callable[[pd.DataFrame], T],
    optional: tuple[str, ...] | None = None,
    groups: RowGroups | None = None,
    threads: int = 0,
    csv_block_bytes: int | None = None,
) -> list[T]:
    """`func` of each block of rows of a table file, in file order, rows numbered from 1.

    Files are read in blocks (CSV_BLOCK_BYTES or `csv_block_bytes` of CSV, JSONL_BLOCK_BYTES of
    JSON Lines, PARQUET_BLOCK_ROWS of Parquet, CHUNK_ROWS rows for the fallback readers), so a
    caller that keeps only what it needs of each block never holds the whole file. A CSV is
    read by Arrow's reader; one it refuses is read again by pandas' (the reference: the same
    values where both read a file), and one whose rows that cannot split, by the tolerant reader
    (results of an earlier attempt are dropped; a `func` with side effects sees rows numbered
    from 1 again). With `groups`, a Parquet table is read only in the row groups it keeps. With
    `threads`, `func` runs on that many threads while the next blocks are read (only for a
    `func` without side effects: calls may overlap).
    """
    wanted = TABLES[name] + (OPTIONAL_COLUMNS[name] if optional is None else optional)
    for reader in CSV_READERS:
        # pandas' reader turns its warnings into errors while it reads: with `func` on other
        # threads, their own warning filters could undo that or leave it on (found in review).
        workers = threads if reader == CSV_READERS[0] else 0
        try:
            blocks = _blocks(path, wanted, reader, groups, csv_block_bytes)
            return _map_blocks(name, path, blocks, func, workers)
        except _NextReader:
            continue
    raise AssertionError("the tolerant CSV reader refuses no file")


EARLIEST_LOCAL = pd.Timedelta(hours=16)
"""More than any zone has ever been ahead of UTC (today UTC+14; America/Metlakatla's local mean
time before 1867, +15:13:42): a naive local time is an instant no earlier than the same wall time
read as UTC, minus this."""


@dataclass(frozen=True)
class RowGroups:
    """Row groups of a Parquet table to read (per file, in read order); the rest are left out."""

    keep: dict[Path, list[int]]
    skipped_groups: int
    skipped_rows: int


def row_groups_up_to(path: Path, cutoff: pd.Timestamp) -> RowGroups:
    """Row groups of a Parquet messages table up to the last that may hold a message by `cutoff`.

    Only groups at the end of the read order are left out, and only when the files' own sent_at
    statistics prove every message in them was sent after the cut-off (typed timestamps or
    dates; a naive one is taken at the earliest instant it can be in any zone). SPEC 4 ignores
    such messages, so the metrics do not change; only `input` and the shops seen cover fewer
    rows.
    """
    groups: list[tuple[Path, int, int, bool]] = []
    for file in parquet_files(path):
        metadata = pq.read_metadata(file)
        column = _column_index(metadata, "sent_at")
        for index in range(metadata.num_row_groups):
            group = metadata.row_group(index)
            earliest = None if column is None else _earliest_instant(group.column(column))
            after = earliest is not None and earliest > cutoff
            groups.append((file, index, group.num_rows, after))
    last = max((i for i, (*_, after) in enumerate(groups) if not after), default=-1)
    keep: dict[Path, list[int]] = {}
    for file, index, _, _ in groups[: last + 1]:
        keep.setdefault(file, []).append(index)
    skipped = groups[last + 1 :]
    return RowGroups(keep, len(skipped), sum(rows for _, _, rows, _ in skipped))


def parquet_files(path: Path) -> list[Path]:
    """The files of a Parquet table (one file, or a dataset folder's files in path order)."""
    return sorted(path.rglob("*.parquet")) if path.is_dir() else [path]


def _column_index(metadata: pq.FileMetaData, name: str) -> int | None:
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    return names.index(name) if name in names else None


def _earliest_instant(column: pq.ColumnChunkMetaData) -> pd.Timestamp | None:
    """The earliest instant a typed timestamp column chunk can hold, by its statistics."""
    stats = column.statistics
    if stats is None or not stats.has_min_max:
        return None
    low = stats.min
    if isinstance(low, dt.datetime) and low.tzinfo is not None:
        return pd.Timestamp(low)
    if isinstance(low, dt.date):  # naive date-time or date: local time in some zone
        return pd.Timestamp(low).tz_localize("UTC") - EARLIEST_LOCAL
    return None


CSV_READERS = ("arrow", "pandas", "tolerant")
"""The CSV readers, fastest first: each gives way to the next on a file it cannot read alike."""


class _NextReader(Exception):
    """This CSV reader cannot read the file as the next one would: try the next one."""


class _MalformedCsv(_NextReader):
    """pandas' CSV reader met a row it cannot split: read the file with the tolerant one."""


class _ArrowRefused(_NextReader):
    """Arrow's CSV reader refused the file (a short or long row, bad text...): use pandas'."""


def _blocks(
    path: Path,
    wanted: tuple[str, ...],
    reader: str,
    groups: RowGroups | None = None,
    csv_block_bytes: int | None = None,
) -> Iterator[pd.DataFrame | _Missing]:
    """The blocks of a table file (nothing is read before the first one is asked for)."""
    if path.is_dir():
        yield _read_parquet_dataset(path, wanted, groups)
    elif path.suffix == ".parquet" and groups is None:
        yield from _parquet_blocks(path, wanted)
    elif path.suffix == ".parquet":
        yield _read_parquet_dataset(path, wanted, groups)
    elif path.suffix == ".jsonl":
        yield from _jsonl_blocks(path, wanted)
    else:
        yield from _csv_blocks(path, wanted, reader, csv_block_bytes)


def _map_blocks(
    name: str,
    path: Path,
    blocks: Iterator[pd.DataFrame | _Missing],
    func: Callable[[pd.DataFrame], T],
    threads: int = 0,
) -> list[T]:
    results: list[T] = []
    running: deque[Future[T]] = deque()
    rows = 0
    first = True
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except (InputError, _NextReader):
                raise
            except (OSError, UnicodeDecodeError, ValueError, pa.ArrowException, csv.Error) as exc:
                raise InputError(f"{path}: unreadable file ({_first_line(exc)})") from exc
            if isinstance(block, _Missing):
                _check_columns(name, path, block.present)
                continue
            if first:
                _check_columns(name, path, block.columns)
                first = False
            block = block.reset_index(drop=True)
            block[ROW] = pd.RangeIndex(rows + 1, rows + len(block) + 1)
            rows += len(block)
            if not threads:
                results.append(func(block))
                continue
            running.append(pool.submit(func, block))
            # At most `threads` blocks wait, so memory holds a few blocks, not the file.
            if len(running) > threads:
                results.append(running.popleft().result())
        results.extend(future.result() for future in running)
    return results


@dataclass(frozen=True)
class _Missing:
    """Sent after the last block of a JSON Lines file: the columns some object had."""

    present: list[str]


def _check_columns(name: str, path: Path, columns: Iterable[str]) -> None:
    missing = [c for c in TABLES[name] if c not in set(columns)]
    if missing:
        raise InputError(f"{path}: required column missing: {', '.join(missing)}")


def read_folder(
    folder: Path, message_columns: tuple[str, ...] | None = None
) -> dict[str, RawTable]:
    """Read every table present in `folder` (messages: only the optional columns asked for)."""
    return {
        name: read_table(name, path, message_columns if name == "messages" else None)
        for name, path in table_paths(folder).items()
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


CHUNK_ROWS = 200_000
"""Rows per block of the fallback readers: pandas' CSV readers, and JSON Lines as text."""
SEPARATORS = (",", ";", "\t")
"""Field separators a CSV may use; its header line decides (many regions' spreadsheets use `;`)."""


def csv_separator(path: Path) -> str:
    """The separator of a CSV: whichever of `,` `;` tab occurs most in its header (`,` on ties)."""
    with path.open("rb") as file:
        head = file.read(1 << 16)
    lines = head.removeprefix(b"\xef\xbb\xbf").replace(b"\r", b"\n").split(b"\n")
    # The header is the first line that is not blank (pandas skips blank lines before it).
    line = next((x for x in lines if x.strip()), b"")
    line = re.sub(rb'"[^"]*"', b"", line)  # separators inside quoted names do not count
    counts = {sep: line.count(sep.encode()) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] > counts[","] else ","


def _csv_blocks(
    path: Path, wanted: tuple[str, ...], reader: str, block_bytes: int | None = None
) -> Iterator[pd.DataFrame]:
    """CSV as text in blocks; rows with too many fields are kept, flagged PARSE_ERROR."""
    options = {
        "sep": csv_separator(path),
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "encoding": "utf-8-sig",
        "skip_blank_lines": True,
    }
    try:
        header = pd.read_csv(path, nrows=0, **options).columns
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: file is empty (no header row)") from exc
    usecols = [c for c in header if c in wanted]
    if reader == "tolerant":
        yield from _csv_blocks_tolerant(path, usecols, options)
        return
    if reader == "arrow":
        size = block_bytes or CSV_BLOCK_BYTES
        yield from _arrow_csv_blocks(path, list(header), usecols, options["sep"], size)
        return
    if _blank_cr_line_before_separator(path, options["sep"]):
        raise _MalformedCsv
    try:
        # All columns are parsed (with usecols the parser would not notice rows with extra
        # fields); each block keeps only the wanted ones, so unwanted text is never all held.
        # index_col=False: a first row with one extra field must not become an index (which
        # would shift every row); pandas then warns that it cut the field, and so do we.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            with pd.read_csv(
                path, engine="c", chunksize=CHUNK_ROWS, index_col=False, **options
            ) as reader:
                empty = True
                for block in reader:
                    empty = False
                    yield _with_parse_error(block[usecols])
                if empty:
                    yield _with_parse_error(_concat_blocks([], usecols))
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        if "EOF inside string" in str(exc):
            # The lenient reader would silently drop everything after the open quote.
            raise InputError(
                f"{path}: unreadable file (a quoted field is never closed: {_first_line(exc)})"
            ) from exc
        raise _MalformedCsv from exc


SCAN_BYTES = 1 << 20
"""Bytes read at a time when a CSV is searched for what pandas' reader misreads."""


def _blank_cr_line_before_separator(path: Path, separator: str) -> bool:
    """Whether a blank line (or spaces and tabs) ended by a bare CR is followed by `separator`.

    pandas' C reader drops the empty first value of such a line (`\\r,x,y` gives `x,y,`; found by
    hypothesis in CI), where Arrow's, Python's `csv` and the tolerant reader give `,x,y`.
    """
    pattern = re.compile(b"[\r\n][ \t]*\r" + re.escape(separator.encode()))
    with path.open("rb") as file:
        tail = b"\n"  # the file's start counts as a line's end
        chunk = file.read(SCAN_BYTES).removeprefix(b"\xef\xbb\xbf")
        while chunk:
            buffer = tail + chunk
            if pattern.search(buffer):
                return True
            # What may begin a match that ends in the next chunk.
            start = re.search(b"[\r\n][ \t]*\r?\\Z", buffer)
            tail = start.group() if start else b""
            chunk = file.read(SCAN_BYTES)
    return False


CSV_BLOCK_BYTES = 2**25
"""Bytes per block of a CSV file read by Arrow."""


def _arrow_csv_blocks(
    path: Path, header: list[str], usecols: list[str], separator: str, block_bytes: int
) -> Iterator[pd.DataFrame]:
    """CSV read by Arrow, every value as written (text, empty as empty): pandas' values.

    Arrow refuses what pandas reads otherwise (a row with fewer or more fields than the header,
    text that is not UTF-8, a quote never closed): the file then goes to pandas' reader, which
    also takes a header with repeated or empty names (it renames those).
    """
    if len(set(header)) != len(header) or any(
        name == "" or name.startswith("Unnamed: ") for name in header
    ):
        raise _ArrowRefused
    if len(header) == 1:  # Arrow reads a line of spaces as a value; pandas as a blank line
        raise _ArrowRefused
    options = {
        "read_options": pa_csv.ReadOptions(block_size=block_bytes),
        "parse_options": pa_csv.ParseOptions(delimiter=separator, newlines_in_values=True),
        "convert_options": pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            include_columns=usecols,
        ),
    }
    empty = True
    try:
        with pa_csv.open_csv(path, **options) as batches:
            if batches.schema.names != usecols:
                raise _ArrowRefused
            for batch in batches:
                empty = False
                yield _arrow_to_frame(pa.Table.from_batches([batch]))
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise _ArrowRefused from exc
    if empty:
        yield _with_parse_error(_concat_blocks([], usecols))


def _with_parse_error(block: pd.DataFrame) -> pd.DataFrame:
    """A block of well-formed rows, with the (empty) PARSE_ERROR column."""
    block = block.copy()
    block[PARSE_ERROR] = pd.Series(pd.NA, index=block.index, dtype="string")
    return block


def _concat_blocks(blocks: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The blocks of one file as one frame numbered from 0 (an empty file keeps its columns)."""
    if not blocks:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    return (
        pd.concat(blocks, ignore_index=True)
        if len(blocks) > 1
        else blocks[0].reset_index(drop=True)
    )


def _csv_blocks_tolerant(path: Path, usecols: list[str], options: dict) -> Iterator[pd.DataFrame]:
    """Slow path for a CSV with malformed rows: keep them as rows flagged malformed.

    Python's `csv` reads every record (pandas' Python reader silently dropped a row with text
    after a closing quote, and stopped at a field over 128 kB: found in audit). Short rows get
    empty values; a row with more fields than the header is flagged, except for one empty
    extra field (a trailing separator, which pandas' reader also takes).
    """
    header = list(pd.read_csv(path, nrows=0, **options).columns)
    width, sep = len(header), options["sep"]
    csv.field_size_limit(2**31 - 1)
    empty = True
    with path.open(encoding="utf-8-sig", newline="") as file:
        # Blank lines are no rows, nor is a line of spaces and tabs (as in pandas' readers);
        # the fields after the header's are joined into one (a row of thousands of stray
        # separators stays one extra field: found in review).
        records = (
            r if len(r) <= width else [*r[:width], sep.join(r[width:])]
            for r in csv.reader(file, delimiter=sep)
            if len(r) > 1 or (r and (r[0] == "" or r[0].strip(" \t")))
        )
        next(records, None)  # the header
        while chunk := list(itertools.islice(records, CHUNK_ROWS)):
            empty = False
            fields = list(itertools.zip_longest(*chunk, fillvalue=""))  # short rows: empty
            fields += [("",) * len(chunk)] * (width + 1 - len(fields))
            block = pd.DataFrame(dict(zip([*header, "_extra"], fields, strict=True)), dtype=object)
            flagged = (block["_extra"] != "").to_numpy()
            block = block[usecols].astype("string")
            block[PARSE_ERROR] = pd.Series(pd.NA, index=block.index, dtype="string")
            block.loc[flagged, PARSE_ERROR] = "row has more fields than the header"
            yield block
    if empty:
        yield _concat_blocks([], [*usecols, PARSE_ERROR])


PARQUET_BLOCK_ROWS = 2**20
"""Rows per block of a Parquet file: a block is checked while the next one is read."""


def _parquet_blocks(path: Path, wanted: tuple[str, ...]) -> Iterator[pd.DataFrame]:
    """Parquet in blocks of rows: timestamp columns stay typed; everything else becomes text."""
    schema = pq.read_schema(path)
    columns = [c for c in schema.names if c in wanted]
    file = pq.ParquetFile(path, read_dictionary=_few_values(schema, columns))
    empty = True
    for batch in file.iter_batches(batch_size=PARQUET_BLOCK_ROWS, columns=columns):
        empty = False
        yield _arrow_to_frame(pa.Table.from_batches([batch]))
    if empty:
        yield _arrow_to_frame(file.schema_arrow.empty_table().select(columns))


FEW_VALUES = ("shop_id", "sender_role", "message_type", "timezone", "market")
"""Text columns with few distinct values: read from Parquet as dictionaries, several times faster
than decoding every row's text (they are expanded to text once read)."""


def _few_values(schema: pa.Schema, columns: list[str]) -> list[str]:
    """The FEW_VALUES columns among `columns` that Parquet stores as text."""
    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)
    return [
        c
        for c in columns
        if c in FEW_VALUES and any(is_text(schema.field(c).type) for is_text in text)
    ]


def _read_parquet_dataset(
    path: Path, wanted: tuple[str, ...], groups: RowGroups | None = None
) -> pd.DataFrame:
    """A Parquet dataset folder (Hive partitions allowed) or file, in path order, then row order.

    Every row group is read unless `groups` leaves some out (see `row_groups_up_to`).
    """
    files = parquet_files(path)
    hive = (
        {"partitioning": _hive_text(path, files), "partition_base_dir": str(path)}
        if path.is_dir()
        else {}
    )
    schema = ds.dataset(files, format="parquet", **hive).schema
    columns = [c for c in schema.names if c in wanted]
    options = ds.ParquetReadOptions(dictionary_columns=set(_few_values(schema, columns)))
    dataset = ds.dataset(files, format=ds.ParquetFileFormat(read_options=options), **hive)
    if groups is not None:
        fragments = [
            fragment.subset(row_group_ids=groups.keep[Path(fragment.path)])
            for fragment in dataset.get_fragments()
            if Path(fragment.path) in groups.keep
        ]
        dataset = ds.FileSystemDataset(fragments, dataset.schema, dataset.format)
    return _arrow_to_frame(dataset.to_table(columns=columns))


def _hive_text(folder: Path, files: list[Path]) -> ds.Partitioning:
    """Hive partitions of a dataset folder, every value as text (`shop_id=007` is not shop 7,
    which Arrow's own inference would make it: found in audit)."""
    keys = {
        part.split("=", 1)[0]: None
        for file in files
        for part in file.relative_to(folder).parts[:-1]
        if "=" in part
    }
    return ds.partitioning(pa.schema([(key, pa.string()) for key in keys]), flavor="hive")


def _arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table to a frame of text columns, keeping timestamp columns typed."""
    frame = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for name in table.column_names:
        frame[name] = _arrow_column(name, table.column(name))
    frame[PARSE_ERROR] = pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame


def _arrow_column(name: str, column: pa.ChunkedArray) -> pd.Series:
    """One Parquet column: timestamps and dates typed, integers as digits, the rest as text."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        # Typed instants are kept for timestamp columns (SPEC 1); an id column gets their text.
        if name in TIMESTAMP_COLUMNS:
            return column.to_pandas()
        return _arrow_text(column.cast(pa.string()))
    if pa.types.is_integer(kind):
        # Digits straight from the integers: through pandas, a column with a gap goes through
        # float and 19-digit ids lose their last digits (found in review).
        return _arrow_text(column.cast(pa.string()))
    if pa.types.is_floating(kind):
        # NaN is how a spreadsheet or pandas writes a missing number: a missing value. Other
        # floats read as Python writes them (`5.0`, `1794877200000.0`): whole values keep their
        # `.0`, so a float timestamp is treated alike whatever its size (docs/decisions.md).
        column = pa.chunked_array([pc.if_else(pc.is_nan(c), None, c) for c in column.chunks], kind)
        return column.to_pandas().astype("string")
    if pa.types.is_nested(kind):
        # Lists and structs become JSON text, as nested values do in JSON Lines.
        texts = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
        return pd.Series(texts, dtype="string")
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    ):
        try:
            return _arrow_text(column.cast(pa.binary()).cast(pa.string()))
        except pa.ArrowInvalid as exc:
            raise ValueError(f"column {name} holds bytes that are not UTF-8 text") from exc
    return _arrow_text(column.cast(pa.large_string()))


def _arrow_text(column: pa.ChunkedArray) -> pd.Series:
    """Arrow text as a pandas text column, sharing the Arrow buffers."""
    return pd.Series(pd.arrays.ArrowStringArray(column.cast(pa.large_string())))


def _jsonl_blocks(path: Path, wanted: tuple[str, ...]) -> Iterator[pd.DataFrame | _Missing]:
    """JSON Lines in blocks: one object per non-blank line; other lines are bad rows.

    A table's columns are the wanted keys of any object in the file, so every block carries all
    wanted columns (missing where absent) and a last `_Missing` item says which keys were seen.
    A block is parsed by Arrow when that provably gives what the line-by-line reader gives
    (`_arrow_objects`), else line by line.
    """
    present: set[str] = set()
    any_object = False
    empty = True
    for block in _jsonl_line_blocks(path):
        table = _arrow_objects(block, wanted) if isinstance(block, ByteLines) else None
        if table is not None:
            frame = _arrow_to_frame(table)
            keys = {c for c in wanted if table.column(c).null_count < table.num_rows}
        else:
            lines = block.text() if isinstance(block, ByteLines) else block
            if not lines:
                continue
            frame, keys = _json_frame(lines, wanted)
        any_object = any_object or frame[PARSE_ERROR].isna().any()
        present |= keys
        empty = False
        yield frame
    if empty:
        yield _concat_blocks([], [*wanted, PARSE_ERROR])
    # With no object at all there are no keys to judge columns by: every line is a bad row.
    yield _Missing(sorted(present) if any_object else list(wanted))


@dataclass(frozen=True)
class ByteLines:
    """A block of a JSON Lines file as read: whole lines (the last may lack its `\\n`)."""

    data: bytes

    def text(self) -> list[str]:
        """The non-blank lines as the text reader gives them (universal newlines)."""
        text = self.data.decode("utf-8")
        return [line for line in io.StringIO(text, newline=None) if line.strip()]


BARE_CR = re.compile(rb"\r(?!\n)")
JSONL_BLOCK_BYTES = 2**25
"""Bytes per block of a JSON Lines file (then up to the end of the line)."""


def _jsonl_line_blocks(path: Path) -> Iterator[ByteLines | list[str]]:
    """Blocks of whole lines, as bytes; text lines for a file ending lines in a bare `\\r`.

    A file whose lines end in a bare `\\r` (old Mac) has no `\\n` to cut blocks at, so it is
    read as text, CHUNK_ROWS lines at a time.
    """
    with path.open("rb") as file:
        head = file.read(2**16)
    if BARE_CR.search(head):
        with path.open(encoding="utf-8-sig", newline=None) as text:
            yield from _line_blocks(text)
        return
    with path.open("rb") as file:
        rest = file.read(max(JSONL_BLOCK_BYTES, len(codecs.BOM_UTF8)))
        rest = rest.removeprefix(codecs.BOM_UTF8)
        while more := file.read(JSONL_BLOCK_BYTES):
            data = rest + more
            cut = data.rfind(b"\n") + 1
            if cut:
                yield ByteLines(data[:cut])
            rest = data[cut:]
        if rest:
            yield ByteLines(rest)


JSON_WHITESPACE = b" \t\r\n"


def _arrow_objects(block: ByteLines, wanted: tuple[str, ...]) -> pa.Table | None:
    """The block's objects parsed by Arrow (many times faster), or None where Arrow could differ.

    Taken only when every non-blank line is one JSON object (Arrow would also take two objects on
    one line, or one over two lines: the row count and each line's first and last byte rule that
    out), every wanted value is a string or null (Arrow fails on a number, kept as written by
    the line reader), the text is UTF-8 (Arrow does not check), no `NaN` or `Infinity` is
    anywhere and no required column is all null (whether its key was there at all is then left
    to the line reader). tests/test_read.py compares both readers on the cases that differ.
    """
    objects = _object_lines(block.data)
    # Arrow reads NaN and Infinity as numbers, even where the key is ignored; they are not JSON.
    if not objects or b"NaN" in block.data or b"Infinity" in block.data:
        return None
    columns = list(wanted)
    schema = pa.schema([(c, pa.string()) for c in columns])
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        block.data.decode("utf-8")
        table = pa_json.read_json(io.BytesIO(block.data), parse_options=options)
    except (ValueError, pa.ArrowInvalid):
        return None
    required = [c for c in columns if c in REQUIRED_SOMEWHERE]
    if table.num_rows != objects or any(
        table.column(c).null_count == table.num_rows for c in required
    ):
        return None
    return table


def _object_lines(data: bytes) -> int | None:
    """How many non-blank lines, if each begins with `{` and ends with `}` (else None)."""
    edges = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(edges == ord("\n"))
    if len(edges) and edges[-1] == ord("\n"):  # usual case: each line `{...}\n` or `{...}\r\n`
        starts = np.concatenate([[0], ends[:-1] + 1])
        last = ends - 1 - (edges[np.maximum(ends - 1, 0)] == ord("\r"))
        whole = (ends > starts).all() and (last >= starts).all()
        if whole and (edges[starts] == ord("{")).all() and (edges[last] == ord("}")).all():
            return len(ends)
    # White space around objects, blank lines or no newline at the end: line by line.
    objects = [line.strip(JSON_WHITESPACE) for line in data.split(b"\n")]
    objects = [line for line in objects if line]
    if not all(line[:1] == b"{" and line[-1:] == b"}" for line in objects):
        return None
    return len(objects)


def _json_frame(lines: list[str], wanted: tuple[str, ...]) -> tuple[pd.DataFrame, set[str]]:
    """Non-blank text lines parsed one by one: the block, and the wanted keys its objects have."""
    records = [_json_object(line) for line in lines]
    objects = [r for r in records if isinstance(r, dict)]
    keys = set().union(*(r.keys() for r in objects)) & set(wanted)
    # Column by column as Python objects: a frame built from the records would infer
    # float for a column of ints with a gap, and `1794877200` would become `...200.0`.
    texts = {
        c: _json_values_as_text(
            pd.Series([r.get(c) if isinstance(r, dict) else None for r in records], dtype=object)
        )
        for c in keys
    }
    block = pd.DataFrame(
        {
            c: texts[c][0]
            if c in keys
            else pd.Series(pd.NA, index=pd.RangeIndex(len(records)), dtype="string")
            for c in wanted
        },
        index=pd.RangeIndex(len(records)),
    )
    errors = pd.Series([None if isinstance(r, dict) else r for r in records], dtype="string")
    # A nested value that json can read but not write back as text (found in review).
    too_deep = np.zeros(len(records), dtype=bool)
    for _, deep in texts.values():
        too_deep |= deep
    block.loc[too_deep] = pd.NA
    errors[too_deep] = _NESTED_TOO_DEEPLY
    block[PARSE_ERROR] = errors
    return block, keys


def _line_blocks(file: TextIO) -> Iterator[list[str]]:
    """The non-blank lines of a text file, in blocks of up to CHUNK_ROWS lines."""
    while chunk := list(itertools.islice(file, CHUNK_ROWS)):
        lines = [line for line in chunk if line.strip()]
        if lines:
            yield lines


def _not_json(constant: str) -> float:
    """NaN and Infinity are not JSON (Python's parser accepts them): the line is not JSON."""
    raise ValueError(f"{constant} is not a JSON value")


class _JsonFloat(float):
    """A JSON number with a fraction or exponent, and the text it was written as."""

    text: str


class _JsonInt(int):
    """A whole JSON number, and the text it was written as."""

    text: str


class _JsonDigits(str):
    """A whole JSON number too long for Python's int (over 4,300 digits): its text."""

    @property
    def text(self) -> str:
        return str(self)


def _json_float(text: str) -> _JsonFloat:
    number = _JsonFloat(text)
    number.text = text
    return number


def _json_int(text: str) -> _JsonInt | _JsonDigits:
    try:
        number = _JsonInt(text)
    except ValueError:
        return _JsonDigits(text)
    number.text = text
    return number


def _json_object(line: str) -> dict | str:
    """A parsed JSON object (numbers keep their text), or the reason the line is not one."""
    try:
        value = json.loads(
            line, parse_constant=_not_json, parse_float=_json_float, parse_int=_json_int
        )
    except ValueError:
        return "line is not valid JSON"
    except RecursionError:
        return _NESTED_TOO_DEEPLY
    if _SURROGATE_ESCAPE.search(line):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            return _NESTED_TOO_DEEPLY
        except UnicodeEncodeError:
            return "line is JSON with text that is not Unicode (an unpaired \\ud800-\\udfff escape)"
    return value if isinstance(value, dict) else "line is JSON but not an object"


_NESTED_TOO_DEEPLY = "line is JSON nested too deeply to read (about 1,000 levels)"
_TOO_DEEP = object()
"""Marks a value json could not write back as text."""


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _json_values_as_text(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """JSON scalars as text the way they were written (numbers stay whole, null is missing),
    and whether each is a nested value json could not write back as text (too deep)."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        # Only text and nulls (the usual case): no per-value conversion needed.
        return values.astype("string"), np.zeros(len(values), dtype=bool)

    def as_text(value: object) -> object:
        if value is None or (isinstance(value, float) and value != value):
            return pd.NA
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (_JsonFloat, _JsonInt, _JsonDigits)):
            return value.text  # as written: `5e0` and `4.9999999999999999999` are not `5.0`
        if isinstance(value, (dict, list)):
            try:
                return json.dumps(value, ensure_ascii=False)
            except RecursionError:
                return _TOO_DEEP
        return str(value)

    text = values.astype(object).map(as_text)
    deep = text.map(lambda value: value is _TOO_DEEP).to_numpy(dtype=bool)
    return text.mask(deep, pd.NA).astype("string"), deep
