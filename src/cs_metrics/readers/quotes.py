"""A CSV quote that never closes, or that holds whole rows: found cheaply, then located exactly.

Every CSV reader (Arrow's, pandas', the tolerant one) takes an opening quote as the start of one
value that runs to the next quote, across line breaks: a stray `"oops` at the start of a field
makes the rest of the file (or everything up to the next quote) one value, and the rows in it
vanish while the counts still add up. A spreadsheet's quoted line breaks must still read, so a
value with line breaks is refused only when a line inside it looks like a whole row (at least as
many separators as the header has), or when the file ends inside the quote.

Finding it costs a search of each column's bytes for line breaks (in C and numpy); only a file
already refused is read again, by Python's `csv`, to name the line where the quote opens. Lines
count from the file's first line: the header is line 1, so data row 1 is usually line 2.
"""

from __future__ import annotations

import collections
import csv
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import OFFSET_TYPES, value_bytes
from cs_metrics.errors import InputError

END_OF_FILE = "cs-metrics: end of file 5c0e9a41"
"""The value of a row the tolerant reader reads after a CSV's last line: when it does not come
back as its own row, the file ended inside a quote (the row became part of the quoted value)."""

LINE_BREAK = r"\r\n|\r|\n"


def end_row(separator: str, width: int) -> str:
    """The line read after a file's last line (after a line break: the last line may lack one)."""
    return separator.join([END_OF_FILE] * width) + "\n"


def ends_inside_quote(path: Path, last: bytes, separator: str) -> bool:
    """Whether a CSV ends inside a quote, given the value its reader read last (the last row's
    last field): Arrow's reader takes the rest of the file as that value.

    The file then ends with a quote after a separator or a line break, and the value exactly as
    written (quotes doubled); a closed quote, or a value not quoted, cannot end the file so.
    """
    written = b'"' + last.replace(b'"', b'""')
    with path.open("rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - len(written) - 1))
        tail = file.read()
    if not tail.endswith(written):
        return False
    before = tail[: -len(written)]
    return before in (b"", b"\n", b"\r", separator.encode())


def swallowing_row(
    columns: Iterable[pa.Array | pa.ChunkedArray], separator: str, width: int
) -> int:
    """The first row (position) with a value holding a line that looks like a whole row (at least
    `width - 1` separators after a line break); -1 when there is none."""
    if width < 2:
        return -1
    first = -1
    for column in columns:
        where = _rows_with_line_breaks(column)
        if not len(where):
            continue
        # Only the few values with line breaks are split: the lines after each break. Bytes, not
        # text: a column not read is not checked to be UTF-8 (see `_arrow_csv_blocks`).
        values = column.take(pa.array(where)).cast(pa.large_binary())
        lines = pc.list_slice(pc.split_pattern_regex(values, LINE_BREAK), 1)
        owners = pc.list_parent_indices(lines).to_numpy()
        flat = pc.list_flatten(lines)
        looks_like_rows = pc.and_(
            pc.greater_equal(pc.count_substring(flat, separator), width - 1),
            pc.invert(pc.starts_with(flat, END_OF_FILE)),  # the end row: a quote never closed
        )
        hits = owners[looks_like_rows.to_numpy(zero_copy_only=False)]
        if len(hits):
            row = int(where[hits.min()])
            first = row if first < 0 else min(first, row)
    return first


def _rows_with_line_breaks(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The positions of the present values holding a line break, in order.

    Text is read as its data bytes: one pass finds the line breaks (most values hold none) and
    the offsets say whose they are. Values of other types are searched one by one.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    found = [np.zeros(0, dtype=np.int64)]
    first = 0
    for chunk in chunks:
        if chunk.type in OFFSET_TYPES:
            rows = _breaks_in_bytes(chunk)
        else:
            values = chunk.cast(pa.large_binary())
            broken = pc.or_(pc.match_substring(values, "\n"), pc.match_substring(values, "\r"))
            rows = np.flatnonzero(broken.fill_null(False).to_numpy(zero_copy_only=False))
        found.append(rows.astype(np.int64) + first)
        first += len(chunk)
    return np.concatenate(found)


def _breaks_in_bytes(chunk: pa.Array) -> np.ndarray:
    """`_rows_with_line_breaks` of one chunk of text, from its offsets and data bytes."""
    starts, stops, data = value_bytes(chunk)
    if not len(starts):
        return np.zeros(0, dtype=np.int64)
    low = int(starts[0])
    raw = data[low : int(stops[-1])].tobytes()
    # Two memchr-like searches answer for most columns (no line break) before numpy looks.
    if b"\n" not in raw and b"\r" not in raw:
        return np.zeros(0, dtype=np.int64)
    used = np.frombuffer(raw, dtype=np.uint8)
    at = np.flatnonzero((used == ord("\n")) | (used == ord("\r"))) + low
    # A break belongs to the last value that starts at or before it (empty values start there
    # too, and hold nothing).
    rows = np.unique(np.searchsorted(starts, at, side="right") - 1)
    if chunk.null_count:
        rows = rows[chunk.is_valid().to_numpy(zero_copy_only=False)[rows]]
    return rows


def frame_columns(block: pd.DataFrame) -> list[pa.Array]:
    """The text columns of a frame as Arrow arrays (for `swallowing_row`)."""
    return [pa.array(block[name], type=pa.large_string(), from_pandas=True) for name in block]


def quote_error(path: Path, separator: str, width: int, row: int | None) -> InputError:
    """The one-line error for the quote of data row `row` (0-based; None: the quote left open
    at the end of the file), naming the line where it opens (Python's `csv` reads the file)."""
    csv.field_size_limit(2**31 - 1)
    with path.open(encoding="utf-8-sig", newline="", errors="replace") as file:
        reader = csv.reader(file, delimiter=separator)
        numbered = _numbered(reader)
        next(numbered, None)  # the header
        records = enumerate(numbered, start=1)  # data rows counted from 1, as people count
        if row is not None:
            collections.deque(itertools.islice(records, row), maxlen=0)
        last = collections.deque(itertools.islice(records, None if row is None else 1), maxlen=1)
        data_row, (before, record) = last[0] if last else (0, (reader.line_num, []))
        after = reader.line_num
        at_end = next(records, None) is None
    breaks = [len(re.findall(LINE_BREAK, field)) for field in record]
    # The row starts on the line after the previous row, unless blank lines come between.
    start = max(before + 1, after - sum(breaks))
    opened = len(record) - 1 if row is None else _swallowing_field(record, separator, width)
    line = start + sum(breaks[: max(opened, 0)])
    if row is None or (at_end and opened == len(record) - 1 and record[-1][-1:] in ("\n", "\r")):
        return InputError(
            f"{path} line {line} (data row {data_row}): a quote opens here and never closes, "
            "so every line after it "
            "would be one value; close the quote (or remove it) and export again"
        )
    return InputError(
        f"{path} line {line} (data row {data_row}): a quote opens here and its value runs over "
        "whole rows "
        f"(through line {start + sum(breaks[: opened + 1])}); close the quote where the value "
        "ends (or remove it) and export again"
    )


def _numbered(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Records as the readers count rows (blank lines and lines of spaces and tabs are none),
    each with the number of the line before it."""
    previous = reader.line_num  # type: ignore[attr-defined]
    for record in reader:
        if len(record) > 1 or (record and (record[0] == "" or record[0].strip(" \t"))):
            yield previous, record
        previous = reader.line_num  # type: ignore[attr-defined]


def _swallowing_field(record: list[str], separator: str, width: int) -> int:
    """The first field of a record holding a line that looks like a whole row."""
    for index, field in enumerate(record):
        lines = re.split(LINE_BREAK, field)[1:]
        if any(line.count(separator) >= width - 1 for line in lines):
            return index
    return len(record) - 1
