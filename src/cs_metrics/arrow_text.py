"""Text columns through Arrow: trimming, codes for distinct values, ids as numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def clean_text(values: pd.Series) -> pd.Series:
    """Text with surrounding white space removed and empty values as missing (categories: each
    distinct value cleaned once, values that become equal merged)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _clean_categories(values)
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    text = pa.chunked_array(arrow_strings(values))
    looks = [(chunk, *_edges(chunk)) for chunk in text.chunks]
    empty = any(e for *_, e in looks)
    maybe = [chunk.take(pa.array(rows)) for chunk, rows, _ in looks if len(rows)]
    # Only values whose edges are not visible ASCII are trimmed first: most values are not.
    if maybe and _trimmed(pa.chunked_array(maybe)):
        text = pc.utf8_trim_whitespace(text)
        empty = bool(pc.any(pc.equal(pc.binary_length(text), 0)).as_py())
    if empty:
        text = pc.if_else(pc.equal(pc.binary_length(text), 0), pa.scalar(None, text.type), text)
    return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, name=values.name)


def _clean_categories(values: pd.Series) -> pd.Series:
    """`clean_text` of categories, by their distinct values."""
    cleaned = clean_text(pd.Series(values.cat.categories, dtype="string"))
    kept = pd.Index(cleaned.dropna().unique(), dtype="string")
    lookup = np.append(kept.get_indexer(cleaned), -1)  # code -1 (missing) stays missing
    codes = lookup[values.cat.codes.to_numpy()]
    categories = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(kept))
    return pd.Series(categories, index=values.index, name=values.name)


def _trimmed(text: pa.ChunkedArray) -> bool:
    """Whether trimming white space changes some value."""
    stripped = pc.utf8_trim_whitespace(text)
    return bool(pc.any(pc.not_equal(pc.binary_length(stripped), pc.binary_length(text))).as_py())


def _edges(text: pa.Array) -> tuple[np.ndarray, bool]:
    """The values that may begin or end with white space, and whether some value is empty: read
    off the offsets and the values' first and last bytes, without looking at the rest.

    A value may be padded when its first or last byte is not a visible ASCII character. An empty
    or missing value's "edges" are bytes of the values beside it (also looked at anyway), or of
    the buffer's ends: at worst a value is trimmed needlessly.
    """
    starts, stops, data = value_bytes(text)
    blank = stops == starts
    empty = bool(blank.any()) and bool(_present(text, np.flatnonzero(blank)).any())
    if not (len(data) and len(starts)):
        return np.zeros(0, dtype="int64"), empty
    edges = _invisible(_bytes_at(data, starts))
    edges |= _invisible(data[stops - 1])  # -1 (leading empty values): the buffer's last byte
    return (np.flatnonzero(edges) if edges.any() else np.zeros(0, dtype="int64")), empty


def _bytes_at(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The byte at each of the values' `starts` (rising offsets into `data`, not empty): only
    trailing empty values start at the end of the bytes, and read the last byte instead."""
    return data[starts] if starts[-1] < len(data) else data[np.minimum(starts, len(data) - 1)]


def _present(text: pa.Array, rows: np.ndarray) -> np.ndarray:
    """Whether the values at `rows` are present (not missing), read from the validity bits."""
    validity = text.buffers()[0]
    if validity is None or not text.null_count:
        return np.ones(len(rows), dtype=bool)
    bits = np.frombuffer(validity, dtype="uint8")
    at = rows + text.offset
    return ((bits[at >> 3] >> (at & 7).astype("uint8")) & 1).astype(bool)


def _invisible(edges: np.ndarray) -> np.ndarray:
    """Which bytes are outside visible ASCII (0x21-0x7E): one wrapped subtraction, one compare."""
    return (edges - np.uint8(0x21)) >= np.uint8(0x7E - 0x21 + 1)


def value_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each value of a text array (one of OFFSET_TYPES' types) starts and stops in its
    data bytes, and those."""
    _, offsets, data = text.buffers()
    ends = np.frombuffer(offsets, dtype=OFFSET_TYPES[text.type])
    ends = ends[text.offset : text.offset + len(text) + 1]
    raw = np.zeros(0, "uint8") if data is None else np.frombuffer(data, dtype="uint8")
    return ends[:-1], ends[1:], raw


OFFSET_TYPES: dict[pa.DataType, type[np.integer]] = {
    pa.large_string(): np.int64,
    pa.large_binary(): np.int64,
    pa.string(): np.int32,
    pa.binary(): np.int32,
}
"""The text types whose bytes `value_bytes` reads, and the type of their offsets."""


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


def small_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(values, return_inverse=True)` of integers in a small range (role codes, UTC
    offsets in seconds), by counting instead of sorting: the distinct values in order, and
    each value's place among them."""
    if not len(values):
        return values[:0], np.zeros(0, dtype=np.int64)
    low = int(values.min())
    present = np.bincount(values - low) > 0
    return np.flatnonzero(present) + low, (np.cumsum(present) - 1)[values - low]


def text_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """One int64 code per distinct text value (-1 for missing), and the number of values."""
    arrow = arrow_chunks(values)
    numbers = whole_numbers(arrow)
    codes, distinct = dictionary_codes(arrow if numbers is None else numbers)
    return codes, len(distinct)


HASH_ROWS = 2**17
"""Values hashed at a time: the per-value work arrays stay small whatever the column's size."""
_WORD_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)


def text_hashes(text: pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash of each value of large_string text (a missing value hashes as an empty one).

    Equal texts have equal hashes; unequal texts almost never do, so callers compare the texts
    of rows whose hashes repeat (a hash alone decides nothing). Hashing 8 bytes at a time is
    several times faster than Arrow's dictionary of every distinct value, which for ten million
    distinct ids spends most of its time missing the CPU's caches.
    """
    pieces = [
        _hashes(chunk.slice(start, HASH_ROWS))
        for chunk in text.chunks
        for start in range(0, len(chunk), HASH_ROWS)
    ]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint64)


def _hashes(text: pa.Array) -> np.ndarray:
    """`text_hashes` of one large_string array: its bytes read as little-endian 64-bit words,
    each word mixed into the value's hash, then the bits spread (splitmix64's finaliser)."""
    starts, stops, data = value_bytes(text)
    lengths = stops - starts
    if text.null_count:
        lengths = np.where(text.is_valid().to_numpy(zero_copy_only=False), lengths, 0)
    hashes = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    longest = int(lengths.max()) if len(lengths) else 0
    if longest:
        first, last = int(starts[0]), int(stops[-1])
        padded = np.zeros(last - first + 8, dtype=np.uint8)
        padded[: last - first] = data[first:last]
        # Every byte offset seen as the start of a 64-bit word (unaligned reads of `padded`).
        words = np.ndarray((last - first + 1,), dtype="<u8", buffer=padded, strides=(1,))
        at = starts - first
        for offset in range(0, longest, 8):
            # Only values with bytes left take a round: a value's hash is the same in any array.
            left = np.clip(lengths - offset, 0, 8)
            mixed = hashes ^ (words[np.minimum(at + offset, last - first)] & _WORD_MASKS[left])
            mixed *= np.uint64(0x100000001B3)
            mixed ^= mixed >> np.uint64(29)
            hashes = np.where(left > 0, mixed, hashes)
    hashes ^= hashes >> np.uint64(30)
    hashes *= np.uint64(0xBF58476D1CE4E5B9)
    hashes ^= hashes >> np.uint64(27)
    hashes *= np.uint64(0x94D049BB133111EB)
    hashes ^= hashes >> np.uint64(31)
    return hashes


WIDEST_NUMBER = 19
"""Digits of the widest id read as a number: every 19-digit number fits in 64 bits unsigned."""


def whole_numbers(text: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Ids of digits only (as the marketplace's are) as unsigned 64-bit numbers, else None.

    Only when no id has a leading zero, so distinct texts stay distinct numbers: hashing
    numbers is several times faster than hashing their text.
    """
    if not len(text) or text.null_count == len(text):
        return None
    # A look at the first values answers for most text ids, before every value is read.
    if not all_digits(text.slice(0, FIRST_LOOK)) or not all_digits(text):
        return None
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    if not all(map(_short_without_leading_zero, chunks)):
        return None
    return pc.cast(text, pa.uint64())


FIRST_LOOK = 64


def all_digits(text: pa.ChunkedArray | pa.Array) -> bool:
    """Whether every present value of text is ASCII digits (an empty value is not)."""
    if text.type != pa.large_string():
        text = text.cast(pa.large_string())  # the bytes are read by 64-bit offsets
    return all(map(_digits_only, text.chunks if isinstance(text, pa.ChunkedArray) else [text]))


def _digits_only(text: pa.Array) -> bool:
    """`all_digits` of one chunk. Without a missing value, the values' bytes are one run of the
    data buffer: its smallest and largest byte answer, with no per-value work."""
    if text.null_count:
        return bool(pc.all(pc.ascii_is_decimal(text), min_count=0).as_py())
    starts, stops, data = value_bytes(text)
    if not len(starts):
        return True
    if (stops == starts).any():
        return False
    used = data[starts[0] : stops[-1]]
    return int(used.min()) >= ord("0") and int(used.max()) <= ord("9")


def _short_without_leading_zero(digits: pa.Array) -> bool:
    """Whether no value of digits (none empty) is longer than WIDEST_NUMBER or begins with 0."""
    starts, stops, _ = value_bytes(digits)
    if len(starts) and int((stops - starts).max()) > WIDEST_NUMBER:
        return False
    return not bool((_first_bytes(digits) == ord("0")).any())


def missing_text(index: pd.Index) -> pd.Series:
    """A text column of missing values, built without a Python object per row.

    Its chunks are slices of one shared array of nulls (Arrow arrays never change): a column
    missing from every block of a large file then costs no memory, and no fresh zeroed pages
    per block.
    """
    whole, rest = divmod(len(index), NULL_TEXT_ROWS)
    chunks = [_NULL_TEXT] * whole + ([_NULL_TEXT.slice(0, rest)] if rest or not whole else [])
    return pd.Series(
        pd.arrays.ArrowStringArray(pa.chunked_array(chunks, pa.large_string())), index=index
    )


NULL_TEXT_ROWS = 2**20
"""Rows of the shared array of missing text (a block of a Parquet file's rows)."""
_NULL_TEXT = pa.nulls(NULL_TEXT_ROWS, pa.large_string())


def first_bytes(text: pa.ChunkedArray) -> np.ndarray:
    """The first byte of each value of large_string chunks (0 for an empty or missing one)."""
    return np.concatenate([np.zeros(0, "uint8"), *map(_first_bytes, text.chunks)])


def _first_bytes(text: pa.Array) -> np.ndarray:
    starts, stops, data = value_bytes(text)
    if not (len(data) and len(starts)):
        return np.zeros(len(text), dtype="uint8")
    first = _bytes_at(data, starts)
    blank = stops == starts
    if blank.any():
        first[blank] = 0
    if text.null_count:
        first[~text.is_valid().to_numpy(zero_copy_only=False)] = 0
    return first


def id_numbers(values: pd.Series) -> np.ndarray:
    """One integer per distinct id: the id itself when every one is a whole number, or its number
    when every one is the same prefix then a whole number (`prefixed_numbers`), else a code.

    Marketplace ids are numbers: used as they are, they need no hashing.
    """
    arrow = arrow_chunks(values)
    numbers = whole_numbers(arrow)
    if numbers is None or numbers.null_count:
        numbers = prefixed_numbers(arrow)
    if numbers is not None and not numbers.null_count:
        return numbers.to_numpy()
    return dictionary_codes(arrow)[0]


def prefixed_numbers(text: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Ids that are one prefix then a whole number (`C2213`, `CONV-88`, as other tools export
    them) as that number, else None.

    With the prefix the same in every id and the number's digits as `whole_numbers` takes them
    (no leading zero), distinct ids stay distinct numbers: a dictionary of millions of
    distinct texts costs several times more than reading their digits.
    """
    if not len(text) or text.null_count:
        return None
    first = text[0].as_py()
    prefix = first.rstrip("0123456789")
    if not prefix or prefix == first:
        return None
    head = text.slice(0, FIRST_LOOK)
    if not pc.all(pc.starts_with(head, prefix)).as_py():
        return None
    if not pc.all(pc.starts_with(text, prefix)).as_py():
        return None
    width = len(prefix.encode())
    numbers = [_numbers_after(chunk, width) for chunk in text.chunks]
    if any(n is None for n in numbers):
        return None
    return pa.chunked_array(numbers, pa.uint64())


def _numbers_after(text: pa.Array, width: int) -> pa.Array | None:
    """The whole number (as `whole_numbers` takes one) after the first `width` bytes of each
    value of text, None unless every value has one. No value is missing.

    The prefix bytes of a copy of the values' bytes become zeros, which Arrow's parse skips:
    cutting the prefix off each value instead (a new text array) took as long as the parse.
    """
    starts, stops, data = value_bytes(text)
    if not len(starts):
        return pa.array([], pa.uint64())
    digits = stops - starts - width
    if int(digits.min()) < 1 or int(digits.max()) > WIDEST_NUMBER:
        return None
    if (data[starts + width] == ord("0")).any():
        return None
    first, last = int(starts[0]), int(stops[-1])
    padded = data[first:last].copy()
    within = starts - first
    for byte in range(width):  # the prefix's few bytes, each at every value at once
        padded[within + byte] = ord("0")
    if int(padded.min()) < ord("0") or int(padded.max()) > ord("9"):
        return None
    offsets = np.append(within, last - first).astype(np.int64)
    zeros_then_digits = pa.LargeStringArray.from_buffers(
        len(starts), pa.py_buffer(offsets), pa.py_buffer(padded)
    )
    return pc.cast(zeros_then_digits, pa.uint64())


def _arrow_backed(array: object) -> bool:
    return isinstance(array, pd.arrays.ArrowExtensionArray)


def _like(
    array: pd.arrays.ArrowExtensionArray, values: pa.ChunkedArray
) -> pd.api.extensions.ExtensionArray:
    """Arrow `values` as an array of the same pandas type as `array` (text keeps its NA kind)."""
    if isinstance(array, pd.arrays.ArrowStringArray):
        return pd.arrays.ArrowStringArray(values, dtype=array.dtype)
    return pd.arrays.ArrowExtensionArray(values)


def column_taken(
    column: pd.Series, rows: np.ndarray, fill: bool = False
) -> pd.api.extensions.ExtensionArray:
    """`column.array.take(rows, allow_fill=fill)` (with `fill`, -1 takes a missing value).

    An Arrow-backed column is taken by Arrow directly: pandas' take of a column of many chunks
    (one per block read) costs several times Arrow's own (1.1 s against 0.3 s for 5M of 10M
    generated conversation ids).
    """
    array = column.array
    if not _arrow_backed(array):
        return array.take(rows, allow_fill=fill)
    return _like(array, chunks_taken(array._pa_array, rows, fill))


MOST_ROWS = 4
"""`chunks_taken` joins the chunks first when it takes at least 1/MOST_ROWS of the values."""


def chunks_taken(values: pa.ChunkedArray, rows: np.ndarray, fill: bool = False) -> pa.ChunkedArray:
    """`values.take(rows)` chunk by chunk (with `fill`, -1 takes a missing value).

    Arrow's own take of a chunked array joins every chunk into one first: for 1.6M rows of a
    10M text column read in ten blocks, 0.8 s where taking from each chunk its own rows costs
    0.2 s. For many of the rows (a reordering of them all, say), joining first is the cheaper.
    """
    rows = np.asarray(rows, dtype="int64")
    missing = rows < 0 if fill else np.zeros(len(rows), dtype=bool)
    if values.num_chunks <= 1 or MOST_ROWS * len(rows) >= len(values):
        return values.take(pa.array(rows, mask=missing) if fill else pa.array(rows))
    wanted = rows[~missing]
    starts = np.cumsum([0] + [len(c) for c in values.chunks])
    chunk = np.searchsorted(starts, wanted, side="right") - 1
    order = np.argsort(chunk, kind="stable")
    ordered, bounds = wanted[order], np.searchsorted(chunk[order], np.arange(len(starts)))
    parts = [
        values.chunk(k).take(pa.array(ordered[bounds[k] : bounds[k + 1]] - starts[k]))
        for k in range(values.num_chunks)
        if bounds[k + 1] > bounds[k]
    ]
    gathered = pa.concat_arrays(parts) if parts else pa.array([], values.type)
    # Each row's place in `gathered` (chunk order), then the rows put back in their own order.
    place = np.empty(len(wanted), dtype="int64")
    place[order] = np.arange(len(wanted))
    if not missing.any():
        in_order = bool((chunk[1:] >= chunk[:-1]).all())  # rows mostly ascend: nothing to move
        return pa.chunked_array(
            [gathered if in_order else gathered.take(pa.array(place))], values.type
        )
    full = np.zeros(len(rows), dtype="int64")
    full[~missing] = place
    return pa.chunked_array([gathered.take(pa.array(full, mask=missing))], values.type)


def rows_kept(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """`frame.loc[keep]` for a boolean mask `keep`: the same frame, index and types; its
    Arrow-backed columns filtered by Arrow (see `column_taken`)."""
    keep = np.asarray(keep, dtype=bool)
    mask = pa.array(keep)
    rows = np.flatnonzero(keep)
    columns = {
        name: _like(column.array, pc.filter(column.array._pa_array, mask))
        if _arrow_backed(column.array)
        else column.array.take(rows)
        for name, column in frame.items()
    }
    return pd.DataFrame(columns, index=frame.index[rows], columns=frame.columns, copy=False)
