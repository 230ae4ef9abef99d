"""CSV tables in blocks: Arrow's reader, else pandas', else a tolerant one (same values)."""

from __future__ import annotations

import csv
import itertools
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from cs_metrics.arrow_text import missing_text
from cs_metrics.errors import InputError
from cs_metrics.readers.folder import LINE_BYTES_MAX, PARSE_ERROR, size_text
from cs_metrics.readers.frames import arrow_to_frame, concat_blocks, with_parse_error
from cs_metrics.readers.quotes import (
    END_OF_FILE,
    end_row,
    ends_inside_quote,
    frame_columns,
    quote_error,
    swallowing_row,
)

CSV_READERS = ("arrow", "pandas", "tolerant")
"""The CSV readers, fastest first: each gives way to the next on a file it cannot read alike."""


class NextReader(Exception):
    """This CSV reader cannot read the file as the next one would: try the next one."""


class _MalformedCsv(NextReader):
    """pandas' CSV reader met a row it cannot split: read the file with the tolerant one."""


class _ArrowRefused(NextReader):
    """Arrow's CSV reader refused the file (a short or long row, bad text...): use pandas'."""


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


def csv_blocks(
    path: Path, wanted: tuple[str, ...], reader: str, block_bytes: int | None = None
) -> Iterator[pd.DataFrame]:
    """CSV as text in blocks; rows with too many fields are kept, flagged PARSE_ERROR."""
    options: dict[str, Any] = {
        "sep": csv_separator(path),
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "encoding": "utf-8-sig",
        "skip_blank_lines": True,
    }
    check_headersize_text(path, options["sep"])
    header = _header(path, options)
    usecols = [c for c in header if c in wanted]
    if reader == "tolerant":
        yield from _csv_blocks_tolerant(path, usecols, options)
    elif reader == "arrow":
        size = block_bytes or CSV_BLOCK_BYTES
        yield from _arrow_csv_blocks(path, list(header), usecols, options["sep"], size)
    else:
        yield from _pandas_csv_blocks(path, list(header), usecols, options)


def _header(path: Path, options: dict[str, Any]) -> list[str]:
    """The column names of a CSV's header line."""
    try:
        return list(pd.read_csv(path, nrows=0, **options).columns)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: file is empty (no header row)") from exc
    except pd.errors.ParserError as exc:
        # pandas reads ahead of the header: a quote opened in the first rows may never close.
        if "EOF inside string" in str(exc):
            raise quote_error(path, options["sep"], 0, None) from exc
        raise


class _Swallowed:
    """Checks each block's values, all columns (an unread one may hold the rows), for a quote
    that holds whole rows (see `quotes`), counting rows to name the one it is in."""

    def __init__(self, path: Path, separator: str, width: int) -> None:
        self.path, self.separator, self.width = path, separator, width
        self.rows = 0

    def check(self, columns: list[pa.Array] | list[pa.ChunkedArray], rows: int) -> None:
        row = swallowing_row(columns, self.separator, self.width)
        if row >= 0:
            raise quote_error(self.path, self.separator, self.width, self.rows + row)
        self.rows += rows


HEADER_BYTES_MAX = 1 << 20
"""The longest header line read (1 MiB): a longer one is no export of these tables."""

COLUMNS_MAX = 10_000
"""The most columns a CSV header may name: the tables have a handful; a file with a million
would take gigabytes and minutes to parse before any check could refuse it."""


def check_headersize_text(path: Path, separator: str) -> None:
    """Refuse a CSV whose header line is over HEADER_BYTES_MAX or names over COLUMNS_MAX columns,
    before any parser reads it."""
    with path.open("rb") as file:
        head = file.read(HEADER_BYTES_MAX + 1).removeprefix(b"\xef\xbb\xbf")
    # Blank lines before the header are skipped, as pandas' reader does.
    body = head.lstrip(b" \t\r\n")
    end = re.search(b"[\r\n]", body)
    if end is None and len(head) > HEADER_BYTES_MAX:
        raise InputError(
            f"{path}: the header line is over {size_text(HEADER_BYTES_MAX)}; "
            "this is not a table export (is it the right file?)"
        )
    line = body[: end.start()] if end else body
    columns = line.count(separator.encode()) + 1
    if columns > COLUMNS_MAX:
        raise InputError(
            f"{path}: the header names {columns:,} columns, more than the {COLUMNS_MAX:,} "
            "read; this is not a table export (is it the right file?)"
        )


def check_line_length(path: Path) -> None:
    """Refuse a CSV with a line over LINE_BYTES_MAX (a vectorised scan of its line breaks)."""
    carry = 0  # bytes of the line still open at the end of the chunks read so far
    with path.open("rb") as file:
        while chunk := file.read(SCAN_BYTES << 4):
            codes = np.frombuffer(chunk, np.uint8)
            breaks = np.flatnonzero((codes == ord("\n")) | (codes == ord("\r")))
            longest = carry + len(chunk)
            if len(breaks):
                lengths = np.diff(breaks, prepend=-1) - 1
                longest = max(carry + int(lengths[0]), int(lengths.max()))
                carry = len(chunk) - int(breaks[-1]) - 1
            else:
                carry = longest
            if max(longest, carry) > LINE_BYTES_MAX:
                raise InputError(
                    f"{path}: a line is over {size_text(LINE_BYTES_MAX)}; no message is that "
                    "long (are line breaks missing from the export?)"
                )


def _pandas_csv_blocks(
    path: Path, header: list[str], usecols: list[str], options: dict[str, Any]
) -> Iterator[pd.DataFrame]:
    """CSV read by pandas' C reader in CHUNK_ROWS blocks."""
    check_line_length(path)
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
                swallowed = _Swallowed(path, options["sep"], len(header))
                # With `chunksize`, the reader gives frames (its stubs do not say so).
                for block in cast("Iterator[pd.DataFrame]", reader):
                    empty = False
                    swallowed.check(frame_columns(block), len(block))
                    yield with_parse_error(block[usecols])
                if empty:
                    yield with_parse_error(concat_blocks([], usecols))
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        if "EOF inside string" in str(exc):
            # The lenient reader would silently drop everything after the open quote.
            raise quote_error(path, options["sep"], len(header), None) from exc
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
    text that is not UTF-8 in a wanted column): the file then goes to pandas' reader, which
    also takes a header with repeated or empty names (it renames those). A quote left open in
    the last column Arrow takes to the end of the file: that, and a value holding whole rows,
    is an InputError (see `quotes`).
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
            # Columns not wanted are only checked for quotes that hold rows (see `quotes`): as
            # bytes, which Arrow copies without checking they are UTF-8 (several times faster).
            column_types={name: pa.string() if name in usecols else pa.binary() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    }
    swallowed = _Swallowed(path, separator, len(header))
    empty = True
    last = b""
    try:
        with pa_csv.open_csv(path, **options) as batches:
            if batches.schema.names != header:
                raise _ArrowRefused
            for batch in batches:
                empty = False
                # Every column is checked; only the wanted ones are kept.
                swallowed.check(batch.columns, batch.num_rows)
                if batch.num_rows:
                    value = batch.column(len(header) - 1)[-1].as_py()
                    last = value if isinstance(value, bytes) else value.encode()
                yield arrow_to_frame(pa.Table.from_batches([batch]).select(usecols))
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise _ArrowRefused from exc
    if not empty and ends_inside_quote(path, last, separator):
        raise quote_error(path, separator, len(header), None)
    if empty:
        yield with_parse_error(concat_blocks([], usecols))


def _csv_blocks_tolerant(path: Path, usecols: list[str], options: dict) -> Iterator[pd.DataFrame]:
    """Slow path for a CSV with malformed rows: keep them as rows flagged malformed.

    Python's `csv` reads every record (pandas' Python reader silently dropped a row with text
    after a closing quote, and stops at a field over 128 kB). Short rows get
    empty values; a row with more fields than the header is flagged, except for one empty
    extra field (a trailing separator, which pandas' reader also takes).
    """
    check_line_length(path)
    header = _header(path, options)
    width, sep = len(header), options["sep"]
    csv.field_size_limit(2**31 - 1)
    ended, empty = False, True
    swallowed = _Swallowed(path, sep, width)
    with path.open(encoding="utf-8-sig", newline="") as file:
        # Blank lines are no rows, nor is a line of spaces and tabs (as in pandas' readers);
        # the fields after the header's are joined into one (a row of thousands of stray
        # separators stays one extra field, not thousands of columns).
        records = (
            r if len(r) <= width else [*r[:width], sep.join(r[width:])]
            # A row of END_OF_FILE after the last line: one the file ends inside a quote takes.
            for r in csv.reader(itertools.chain(file, ["\n", end_row(sep, width)]), delimiter=sep)
            if len(r) > 1 or (r and (r[0] == "" or r[0].strip(" \t")))
        )
        next(records, None)  # the header
        while chunk := list(itertools.islice(records, CHUNK_ROWS)):
            if chunk[-1][0] == END_OF_FILE:
                ended = True
                chunk.pop()
            if not chunk:
                break
            empty = False
            fields = list(itertools.zip_longest(*chunk, fillvalue=""))  # short rows: empty
            fields += [("",) * len(chunk)] * (width + 1 - len(fields))
            block = pd.DataFrame(dict(zip([*header, "_extra"], fields, strict=True)), dtype=object)
            swallowed.check(frame_columns(block[header]), len(block))
            flagged = (block["_extra"] != "").to_numpy()
            block = block[usecols].astype("string")
            block[PARSE_ERROR] = missing_text(block.index)
            block.loc[flagged, PARSE_ERROR] = "row has more fields than the header"
            yield block
    if not ended:
        raise quote_error(path, sep, width, None)
    if empty:
        yield concat_blocks([], [*usecols, PARSE_ERROR])
