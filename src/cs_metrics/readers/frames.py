"""Blocks of rows as every reader hands them over: text columns (Arrow-backed), typed times."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import missing_text
from cs_metrics.readers.folder import PARSE_ERROR, TIMESTAMP_COLUMNS


@dataclass(frozen=True)
class Missing:
    """Sent after the last block of a JSON Lines file: the columns some object had."""

    present: list[str]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def with_parse_error(block: pd.DataFrame) -> pd.DataFrame:
    """A block of well-formed rows, with the (empty) PARSE_ERROR column."""
    block = block.copy()
    block[PARSE_ERROR] = missing_text(block.index)
    return block


def concat_blocks(blocks: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The blocks of one file as one frame numbered from 0 (an empty file keeps its columns)."""
    if not blocks:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    return (
        pd.concat(blocks, ignore_index=True)
        if len(blocks) > 1
        else blocks[0].reset_index(drop=True)
    )


def arrow_to_frame(table: pa.Table, categories: tuple[str, ...] = ()) -> pd.DataFrame:
    """Arrow table to a frame of text columns, keeping timestamp columns typed; the dictionary
    columns named in `categories` become pandas categories (their values, not one per row)."""
    frame = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for name in table.column_names:
        column = table.column(name)
        if name in categories and _text_dictionary(column.type):
            frame[name] = pd.Series(pd.Categorical(column.to_pandas()), index=frame.index)
            continue
        frame[name] = _arrow_column(name, column)
    frame[PARSE_ERROR] = missing_text(frame.index)
    return frame


def _text_dictionary(kind: pa.DataType) -> bool:
    return pa.types.is_dictionary(kind) and (
        pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)
    )


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
        # float and 19-digit ids would lose their last digits.
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
