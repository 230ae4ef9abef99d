"""Writing files: one atomic writer, CSV bytes, and ISO-8601 text of instants."""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import io
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import arrow_chunks, dictionary_codes, first_bytes, small_codes
from cs_metrics.errors import LockHeldError, UsageError
from cs_metrics.threads import in_order

Writer = Callable[[BinaryIO], object]
"""Something that writes a file's bytes to an open binary stream."""

PRIVATE_MODE = 0o600
"""The mode of files holding raw buyer data (chats.csv, findings.csv, quarantine CSVs)."""


def write_atomic(path: Path, data: str | bytes | Writer, mode: int | None = None) -> None:
    """Write a file so that readers see either the old or the complete new content.

    `data` is the text (UTF-8), the bytes, or a function that writes them to a stream (for files
    too large to hold). The temporary file is synced before it takes the name, so a crash leaves
    the old file or the whole new one. `mode` is the file's permission bits (None: 0666 less the
    umask, as any new file); the file never has wider bits than `mode`, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask() if mode is None else mode)
            with os.fdopen(fd, "wb") as handle:
                if callable(data):
                    data(handle)
                else:
                    handle.write(data.encode("utf-8") if isinstance(data, str) else data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(path)
        except OSError as exc:  # name the file the user asked for, not the temporary one
            if exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def csv_text(frame: pd.DataFrame, *, raw: bool = False) -> str:
    """A frame as CSV text: header, no index, `\n` line ends (spreadsheet-safe unless `raw`)."""
    return csv_bytes(frame, raw=raw).decode("utf-8")


FORMULA_STARTS = "=+-@\t\r"
"""First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)."""
_FORMULA = f"^'*[{re.escape(FORMULA_STARTS)}]"
"""A text a spreadsheet would evaluate, or one that only looks neutralised (quotes before the
formula): both get one more quote, so taking one off again gives back the original exactly."""
_NEUTRALISED = f"^'+[{re.escape(FORMULA_STARTS)}]"
_FIRST_BYTES = np.frombuffer(("'" + FORMULA_STARTS).encode("ascii"), dtype="uint8")
"""The first bytes a cell matching either pattern can have."""


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a `'` before each text cell a spreadsheet would evaluate as a formula.

    Only text columns change (object, string and text-category columns); a negative number in a
    numeric column is a number, not a formula. `spreadsheet_original` undoes it exactly.
    """
    return _requoted(frame, _FORMULA, add=True)


def spreadsheet_original(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame read back from a `spreadsheet_safe` CSV: each added `'` taken off again."""
    return _requoted(frame, _NEUTRALISED, add=False)


def _requoted(frame: pd.DataFrame, pattern: str, add: bool) -> pd.DataFrame:
    """The frame with one quote added to (or taken from) the text cells matching `pattern`."""
    changed: dict[int, pd.Series] = {}
    for position, (_, column) in enumerate(frame.items()):
        new = _requoted_column(column, pattern, add)
        if new is not None:
            changed[position] = new
    if not changed:
        return frame  # the common case: nothing copied
    out = frame.copy(deep=False)
    for position, column in changed.items():
        out.isetitem(position, column)
    return out


def _requoted_column(column: pd.Series, pattern: str, add: bool) -> pd.Series | None:
    """A text column with the quote added or taken off where it matches (None: unchanged)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        if not len(categories) or pd.api.types.infer_dtype(categories) != "string":
            return None
        renamed = _requoted_column(pd.Series(categories, dtype=object), pattern, add)
        return None if renamed is None else column.cat.rename_categories(list(renamed))
    if not (isinstance(dtype, pd.StringDtype) or dtype == np.object_):
        return None
    # Both patterns need a quote or a formula character first: a look at each first byte spares
    # the regular expression for the columns (dates, ids, words) that have none.
    arrow_text = isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    if arrow_text and not np.isin(first_bytes(arrow_chunks(column)), _FIRST_BYTES).any():
        return None
    hit = (
        column.str.match(pattern)
        if isinstance(dtype, pd.StringDtype)
        else _object_match(column, pattern)
    )
    hit = hit.fillna(False).to_numpy(dtype=bool)
    if not hit.any():
        return None
    out = column.copy()
    out[hit] = ("'" + column[hit]) if add else column[hit].str.slice(1)
    return out


def _object_match(column: pd.Series, pattern: str) -> pd.Series:
    """Which cells of an object column are text matching `pattern` (numbers, None: False)."""
    if not len(column):
        return pd.Series(False, index=column.index)
    is_text = column.map(type).eq(str)  # one type check per cell; .str on mixed cells is NaN
    return column.where(is_text, "").astype(str).str.match(pattern)


CSV_BLOCK_ROWS = 2**17
"""Rows per block when Arrow writes a CSV (memory holds a block's text, not the file's twice)."""


def csv_bytes(frame: pd.DataFrame, *, raw: bool = False) -> bytes:
    """A frame as UTF-8 CSV: pandas' `to_csv` text (header, no index, `\n` line ends, quotes only
    where needed), built by Arrow for text and number columns; pandas writes any other frame.

    Text cells a spreadsheet would run as a formula are neutralised (`spreadsheet_safe`), since
    people open these files in one; `raw` writes them unchanged for machine consumers.
    Arrow also quotes a value holding a bare CR, which pandas leaves bare (readers end a row there).
    """
    return b"".join(csv_pieces(frame, raw=raw))


def csv_writer(frame: pd.DataFrame, *, raw: bool = False) -> Writer:
    """`csv_bytes` as a `Writer` for `write_atomic`: the text of one block of rows at a time is
    held, never the whole file's."""

    def write(handle: BinaryIO) -> None:
        for piece in csv_pieces(frame, raw=raw):
            handle.write(piece)

    return write


def csv_pieces(frame: pd.DataFrame, *, raw: bool = False) -> Iterator[bytes]:
    """`csv_bytes` in pieces: the header, then each block of CSV_BLOCK_ROWS rows (by Arrow), or
    the whole text at once when pandas writes it."""
    if not (frame.shape[1] and _arrow_writes(frame)):
        text = spreadsheet_safe(frame) if not raw else frame
        buffer = io.StringIO()
        text.to_csv(buffer, index=False, lineterminator="\n")
        yield buffer.getvalue().encode("utf-8")
        return
    header = ",".join(_csv_quoted(pa.array([str(n) for n in frame.columns])).to_pylist())
    yield (header + "\n").encode("utf-8")
    starts = range(0, len(frame), CSV_BLOCK_ROWS)
    # Blocks are formatted on two threads (Arrow's string kernels release the GIL).
    yield from in_order(lambda start: _csv_block(frame, start, raw), starts)


def _csv_block(frame: pd.DataFrame, start: int, raw: bool) -> bytes:
    """The CSV lines of the block of rows from `start` (spreadsheet-safe unless `raw`)."""
    block = frame.iloc[start : start + CSV_BLOCK_ROWS]
    return _arrow_csv_rows(block if raw else spreadsheet_safe(block))


def _arrow_writes(frame: pd.DataFrame) -> bool:
    """Whether Arrow writes this frame as to_csv would: text column names, each once, and every
    column of a type `_csv_fields` handles (decided on the whole column, so every block agrees)."""
    names = list(frame.columns)
    if len(set(names)) < len(names) or not all(isinstance(n, str) and n for n in names):
        return False  # repeated, empty or non-text column names: pandas' header
    return all(_csv_fields(frame[c].iloc[:0], whole=frame[c]) is not None for c in names)


def _arrow_csv_rows(block: pd.DataFrame) -> bytes:
    """The CSV lines of a block of rows (no header), by Arrow (`_arrow_writes` holds)."""
    fields = [_csv_fields(block[n]) for n in block.columns]
    assert all(f is not None for f in fields), "a column _arrow_writes leaves to pandas"
    text = [f.cast(pa.large_string()) for f in fields if f is not None]
    comma, newline = pa.scalar(",", pa.large_string()), pa.scalar("\n", pa.large_string())
    lines = pc.binary_join_element_wise(*text, comma)
    if len(text) == 1:  # an empty line would be no row: a lone empty value is written ""
        lines = pc.if_else(pc.equal(lines, ""), pa.scalar('""', pa.large_string()), lines)
    return _text_bytes(
        pc.binary_join_element_wise(lines, pa.scalar("", pa.large_string()), newline)
    )


def _csv_fields(column: pd.Series, whole: pd.Series | None = None) -> pa.Array | None:
    """A column's CSV fields as to_csv writes them (None: a dtype left to pandas; an object
    column's cells are looked at in `whole`, when given)."""
    dtype = column.dtype
    if dtype == np.float64:
        numbers = column.to_numpy()
        # repr of each distinct value (by its bits, so -0.0 stays -0.0), as to_csv writes floats.
        bits, codes = np.unique(numbers.view(np.int64), return_inverse=True)
        texts = [repr(float(x)) for x in bits.view(np.float64)]
        values = pa.array(texts, pa.string()).take(pa.array(codes.ravel()))
        return pc.if_else(pa.array(np.isnan(numbers)), "", values)
    if dtype == np.bool_ or isinstance(dtype, pd.BooleanDtype):
        truth = pa.array(column, type=pa.bool_(), from_pandas=True)
        return pc.fill_null(pc.if_else(truth, "True", "False"), "")
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return pc.fill_null(pa.array(column, from_pandas=True).cast(pa.string()), "")
    if isinstance(dtype, pd.CategoricalDtype):
        if not len(dtype.categories):
            values = pa.nulls(len(column), pa.string())  # every value missing
        elif pd.api.types.infer_dtype(dtype.categories) != "string":
            return None  # pandas writes numbers, dates, booleans its own way
        else:
            values = pa.array(column).cast(pa.string())
    elif isinstance(dtype, pd.StringDtype) or (
        dtype == np.object_
        and pd.api.types.infer_dtype(column if whole is None else whole, skipna=True)
        in ("string", "empty")
    ):
        values = pa.array(column, type=pa.large_string(), from_pandas=True)
    else:
        return None
    return _csv_quoted(pc.fill_null(values, ""))


def _csv_quoted(text: pa.Array) -> pa.Array:
    """Texts in double quotes (inner quotes doubled) where they hold `,` `"` CR or LF."""
    needs = pc.match_substring_regex(text, '[,"\r\n]')
    if not pc.any(needs).as_py():
        return text  # ids, instants and codes mostly: nothing to quote, nothing copied
    mark, empty = pa.scalar('"', text.type), pa.scalar("", text.type)
    quoted = pc.binary_join_element_wise(mark, pc.replace_substring(text, '"', '""'), mark, empty)
    return pc.if_else(needs, quoted, text)


def _text_bytes(text: pa.Array) -> bytes:
    """The concatenated bytes of a text array with no nulls."""
    text = text.cast(pa.large_string())
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    _, offsets, data = text.buffers()
    first, last = np.frombuffer(offsets, np.int64)[[text.offset, text.offset + len(text)]]
    return b"" if data is None else data.slice(int(first), int(last - first)).to_pybytes()


def _umask() -> int:
    """The process's file-creation mask (mkstemp's files are private; outputs should not be)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def iso_utc(instant: pd.Timestamp | None, zulu: bool = False) -> str | None:
    """An instant as ISO-8601 in UTC (`+00:00`, or `Z` with `zulu`), or None."""
    if instant is None or pd.isna(instant):
        return None
    text = pd.Timestamp(instant).tz_convert("UTC").isoformat()
    return text.replace("+00:00", "Z") if zulu else text


def iso_local(instants: pd.Series, zones: pd.Series) -> pd.Series:
    """Instants as ISO-8601 text with each row's local offset (missing stays missing, as does
    an instant without a zone, or with no zone given at all)."""
    if not zones.index.equals(instants.index):
        zones = zones.reindex(instants.index)  # each instant's zone is the one of its label
    codes, names = dictionary_codes(arrow_chunks(zones))
    distinct = names.to_pylist()
    utc = _naive_utc(instants)
    missing = instants.isna().to_numpy() | (codes < 0)
    wall = utc.copy()
    # Each zone's rows converted together; the text is then made once for every row. Codes of
    # 16 bits are sorted by radix, in one pass.
    order = np.argsort(codes.astype(np.int16) if len(distinct) < 2**15 else codes, kind="stable")
    # Where each code's rows start in `order`: code -1 (no zone) first, then each zone's.
    starts = np.searchsorted(codes[order], np.arange(-1, len(distinct) + 1))
    for number, zone in enumerate(distinct):
        rows = order[starts[number + 1] : starts[number + 2]]
        local = instants.iloc[rows].dt.tz_convert(str(zone))
        wall[rows] = local.dt.tz_localize(None).to_numpy("datetime64[us]")
    return _iso_series(wall, utc, missing, instants.index)


def iso_text(instants: pd.Series) -> pd.Series:
    """Aware instants as `YYYY-MM-DDThh:mm:ss[.ffffff]+hh:mm` text, vectorised."""
    wall = instants.dt.tz_localize(None).to_numpy("datetime64[us]")
    return _iso_series(wall, _naive_utc(instants), instants.isna().to_numpy(), instants.index)


def _naive_utc(instants: pd.Series) -> np.ndarray:
    return instants.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")


def _iso_series(
    wall: np.ndarray, utc: np.ndarray, missing: np.ndarray, index: pd.Index
) -> pd.Series:
    """ISO-8601 text of the instants `utc` shown at the wall-clock times `wall` (both naive
    datetime64[us]), the offset being their difference; missing where `missing`."""
    seconds = wall.astype("datetime64[s]")
    micros = np.where(missing, 0, (wall - seconds).astype("int64"))
    offset = np.where(missing, 0, (wall - utc).astype("timedelta64[s]").astype("int64"))
    distinct, codes = small_codes(offset)
    zones = [offset_text(int(o)) for o in distinct]
    # Exports mostly hold whole seconds: then every value usually has one width.
    fixed = None if (micros > 0).any() else _fixed_width_iso(seconds, missing, codes, zones)
    if fixed is not None:
        return pd.Series(pd.arrays.ArrowStringArray(fixed), index=index)
    # Arrow's cast writes `YYYY-MM-DD hh:mm:ss` ten times as fast as its strftime.
    whole = pc.utf8_replace_slice(pa.array(seconds, mask=missing).cast(pa.string()), 10, 11, "T")
    digits = pc.utf8_lpad(pa.array(micros).cast(pa.string()), width=6, padding="0")
    fraction = pc.if_else(pa.array(micros > 0), pc.binary_join_element_wise(".", digits, ""), "")
    zone = pa.array(zones, pa.string()).take(pa.array(codes))
    text = pc.binary_join_element_wise(whole, fraction, zone, "")
    return pd.Series(pd.arrays.ArrowStringArray(text.cast(pa.large_string())), index=index)


ISO_SECONDS = len("2026-11-16 01:02:03")
ISO_OFFSET = len("+08:00")


def _fixed_width_iso(
    seconds: np.ndarray, missing: np.ndarray, codes: np.ndarray, zones: list[str]
) -> pa.Array | None:
    """`iso_text` of whole seconds, its bytes laid out in numpy where every value has the width
    of `YYYY-MM-DDThh:mm:ss+hh:mm` (None where one does not: an offset in seconds).

    Arrow's cast writes the `YYYY-MM-DD hh:mm:ss` part; the `T` and each row's offset (`codes`
    into `zones`) go into the bytes in place, without a text kernel's copy of every value.
    A missing value keeps bytes of its own under its validity bit, as Arrow allows.
    """
    if not zones or any(len(zone) != ISO_OFFSET for zone in zones):
        return None
    text = pa.array(np.where(missing, np.datetime64(0, "s"), seconds)).cast(pa.string())
    _, offsets, data = text.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32)[: len(text) + 1]
    if data is None or ends[0] != 0 or not (np.diff(ends) == ISO_SECONDS).all():
        return None
    rows, width = len(text), ISO_SECONDS + ISO_OFFSET
    # One record of fixed-width byte strings per row: each part copied whole, not byte by byte.
    records = np.empty(rows, dtype=[("seconds", f"S{ISO_SECONDS}"), ("offset", f"S{ISO_OFFSET}")])
    records["seconds"] = np.frombuffer(data, f"S{ISO_SECONDS}", count=rows)
    records["offset"] = np.frombuffer("".join(zones).encode("ascii"), f"S{ISO_OFFSET}")[codes]
    chars = records.view(np.uint8)
    chars[10::width] = ord("T")
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None
    ends64 = np.arange(0, width * (rows + 1), width, dtype=np.int64)
    buffers = [validity, pa.py_buffer(ends64), pa.py_buffer(chars)]
    return pa.Array.from_buffers(pa.large_string(), rows, buffers, int(missing.sum()))


def offset_text(seconds: int) -> str:
    """A UTC offset as `+hh:mm` (`+hh:mm:ss` for an old local mean time), as isoformat writes it."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


@contextmanager
def exclusive_lock(path: Path, what: str, holder: str, wait: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if needed) for the block.

    Another holder is waited for up to `wait` seconds; then LockHeldError names it (`holder` is
    what this process writes into the file for the next one to read, `what` names the thing
    locked). A symbolic link at `path` is refused, never followed: a planted link must not make
    the lock truncate another file.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UsageError(
            f"{path} is a symbolic link; cs-metrics never follows one for its lock: remove it"
        ) from exc
    with os.fdopen(descriptor, "r+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                found = handle.read().strip() or "unknown process"
                waited = f" (waited {wait:.0f} s)" if wait else ""
                raise LockHeldError(f"another run holds {what}: {found}{waited}") from exc
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        handle.write(f"{holder}, pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
        handle.flush()
        yield
