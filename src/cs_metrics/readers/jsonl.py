"""JSON Lines tables in blocks: Arrow's parser where it provably agrees, else line by line."""

from __future__ import annotations

import codecs
import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from cs_metrics.arrow_text import missing_text
from cs_metrics.errors import InputError
from cs_metrics.readers.folder import (
    LINE_BYTES_MAX,
    PARSE_ERROR,
    REQUIRED_SOMEWHERE,
    size_text,
)
from cs_metrics.readers.frames import Missing, arrow_to_frame, concat_blocks


def jsonl_blocks(path: Path, wanted: tuple[str, ...]) -> Iterator[pd.DataFrame | Missing]:
    """JSON Lines in blocks: one object per non-blank line; other lines are bad rows.

    A table's columns are the wanted keys of any object in the file, so every block carries all
    wanted columns (missing where absent) and a last `Missing` item says which keys were seen.
    A block is parsed by Arrow when that provably gives what the line-by-line reader gives
    (`_arrow_objects`), else line by line.
    """
    present: set[str] = set()
    any_object = False
    empty = True
    for block in _jsonl_line_blocks(path):
        table = _arrow_objects(block, wanted) if isinstance(block, ByteLines) else None
        if table is not None:
            frame = arrow_to_frame(table)
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
        yield concat_blocks([], [*wanted, PARSE_ERROR])
    # With no object at all there are no keys to judge columns by: every line is a bad row.
    yield Missing(sorted(present) if any_object else list(wanted))


@dataclass(frozen=True)
class ByteLines:
    """A block of a JSON Lines file as read: whole lines (the last may lack its `\\n`)."""

    data: bytes

    def text(self) -> list[str]:
        """The non-blank lines as the text reader gives them (universal newlines)."""
        text = self.data.decode("utf-8")
        return [line for line in io.StringIO(text, newline=None) if line.strip()]


CHUNK_ROWS = 200_000
"""Lines per block of a JSON Lines file read as text (lines ended by a bare CR)."""
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
            _check_first_line(path, data)
            cut = data.rfind(b"\n") + 1
            if cut:
                yield ByteLines(data[:cut])
            rest = data[cut:]
        if rest:
            yield ByteLines(rest)


def _check_first_line(path: Path, data: bytes) -> None:
    """Refuse a line over LINE_BYTES_MAX (only the first line of a block can be: it holds what
    earlier blocks left without a line break)."""
    end = data.find(b"\n")
    if (end if end >= 0 else len(data)) > LINE_BYTES_MAX:
        raise InputError(
            f"{path}: a line is over {size_text(LINE_BYTES_MAX)}; no message is that long "
            "(are line breaks missing from the export?)"
        )


JSON_WHITESPACE = b" \t\r\n"


def _arrow_objects(block: ByteLines, wanted: tuple[str, ...]) -> pa.Table | None:
    """The block's objects parsed by Arrow (many times faster), or None where Arrow could differ.

    Taken only when every non-blank line is one JSON object (Arrow would also take two objects on
    one line, or one over two lines: the row count and each line's first and last byte rule that
    out), every wanted value is a string or null (Arrow fails on a number, kept as written by
    the line reader), the text is UTF-8 (Arrow does not check), no `NaN` or `Infinity` is
    anywhere and no required column is all null (whether its key was there at all is then left
    to the line reader). tests/test_readers.py compares both readers on the cases that differ.
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
            c: texts[c][0] if c in keys else missing_text(pd.RangeIndex(len(records)))
            for c in wanted
        },
        index=pd.RangeIndex(len(records)),
    )
    errors = pd.Series([None if isinstance(r, dict) else r for r in records], dtype="string")
    # A nested value that json can read but not write back as text is a bad row, not a crash.
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
