"""Text columns through Arrow: trimming, codes for distinct values, ids as numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def clean_text(values: pd.Series) -> pd.Series:
    """Text with surrounding white space removed and empty values as missing."""
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    text = pa.chunked_array(arrow_strings(values))
    if any(_maybe_padded(chunk) for chunk in text.chunks):
        stripped = pc.utf8_trim_whitespace(text)
        # Keep the original column (not a second copy) when nothing was stripped.
        if pc.any(pc.not_equal(pc.binary_length(stripped), pc.binary_length(text))).as_py():
            text = stripped
    empty = pc.equal(pc.binary_length(text), 0)
    if pc.any(empty).as_py():
        text = pc.if_else(empty, pa.scalar(None, text.type), text)
    return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, name=values.name)


def _maybe_padded(text: pa.Array) -> bool:
    """Whether a value may begin or end with white space (a quick look before trimming).

    True when some value's first or last byte is not a visible ASCII character.
    """
    starts, stops, data = value_bytes(text)
    filled = stops > starts  # empty values have no bytes (they become missing)
    edges = np.concatenate([data[starts[filled]], data[stops[filled] - 1]])
    return bool(((edges <= 0x20) | (edges >= 0x7F)).any())


def value_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each value of a large_string array starts and stops in its data bytes, and those."""
    _, offsets, data = text.buffers()
    ends = np.frombuffer(offsets, dtype="int64")[text.offset : text.offset + len(text) + 1]
    raw = np.zeros(0, "uint8") if data is None else np.frombuffer(data, dtype="uint8")
    return ends[:-1], ends[1:], raw


def arrow_strings(values: pd.Series) -> pa.ChunkedArray | pa.Array:
    """Text values as an Arrow large_string array (without a detour through Python objects)."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        values = values.astype("string[pyarrow]")
    array = values.array
    arrow = array._pa_array if hasattr(array, "_pa_array") else array.__arrow_array__()
    return arrow.cast(pa.large_string()) if arrow.type != pa.large_string() else arrow


def arrow_chunks(values: pd.Series) -> pa.ChunkedArray:
    """Text values as Arrow large_string chunks, sharing the column's buffers."""
    return pa.chunked_array(arrow_strings(values))


def dictionary_codes(values: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """One int64 code per value in order of first appearance (-1: missing), and the values.

    The chunks are hashed one by one into one dictionary: no combined copy of the column.
    """
    encoded = pc.dictionary_encode(values)
    if not encoded.num_chunks:
        return np.zeros(0, dtype="int64"), pa.array([], values.type)
    codes = [chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False) for chunk in encoded.chunks]
    return np.concatenate(codes).astype("int64"), encoded.chunk(0).dictionary


def text_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """One int64 code per distinct text value (-1 for missing), and the number of values."""
    arrow = arrow_chunks(values)
    numbers = whole_numbers(arrow)
    codes, distinct = dictionary_codes(arrow if numbers is None else numbers)
    return codes, len(distinct)


WIDEST_NUMBER = 19
"""Digits of the widest id read as a number: every 19-digit number fits in 64 bits unsigned."""


def whole_numbers(text: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Ids of digits only (as the marketplace's are) as unsigned 64-bit numbers, else None.

    Only when no id has a leading zero, so distinct texts stay distinct numbers: hashing
    numbers is several times faster than hashing their text.
    """
    if not len(text) or text.null_count == len(text):
        return None
    if not pc.all(pc.ascii_is_decimal(text)).as_py() or pc.any(pc.starts_with(text, "0")).as_py():
        return None
    if pc.max(pc.binary_length(text)).as_py() > WIDEST_NUMBER:
        return None
    return pc.cast(text, pa.uint64())


def missing_text(index: pd.Index) -> pd.Series:
    """A text column of missing values, built without a Python object per row."""
    nulls = pa.chunked_array([pa.nulls(len(index), pa.large_string())])
    return pd.Series(pd.arrays.ArrowStringArray(nulls), index=index)


def first_bytes(text: pa.Array) -> np.ndarray:
    """The first byte of each value (0 for an empty or missing one)."""
    starts, stops, data = value_bytes(text)
    first = np.zeros(len(text), dtype="uint8")
    filled = stops > starts
    if text.null_count:
        filled &= text.is_valid().to_numpy(zero_copy_only=False)
    first[filled] = data[starts[filled]]
    return first


def id_numbers(values: pd.Series) -> np.ndarray:
    """One integer per distinct id: the id itself when every one is a whole number, else a code.

    Marketplace ids are numbers: used as they are, they need no hashing.
    """
    arrow = arrow_chunks(values)
    numbers = whole_numbers(arrow)
    if numbers is not None and not numbers.null_count:
        return numbers.to_numpy()
    return dictionary_codes(arrow)[0]
