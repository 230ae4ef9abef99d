"""Text columns through Arrow: trimming, codes of distinct values, ids as numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_metrics import arrow_text


def test_text_codes_of_numbers_equal_text_codes_of_text():
    numbers = pd.Series(["30", "7", None, "30", "9999999999999999999"], dtype="string")
    codes, distinct = arrow_text.text_codes(numbers)
    assert codes.tolist() == [0, 1, -1, 0, 2] and distinct == 3
    assert arrow_text.whole_numbers(pa.array(["30", "7"], pa.large_string())) is not None
    # Not read as numbers: a leading zero (would equal "7"), letters, more than 19 digits.
    for texts in (["07", "7"], ["7", "x"], ["12345678901234567890"]):
        assert arrow_text.whole_numbers(pa.array(texts, pa.large_string())) is None
    assert arrow_text.text_codes(pd.Series(["07", "7"], dtype="string"))[0].tolist() == [0, 1]


def test_id_numbers_are_the_ids_themselves_when_all_are_numbers():
    ids = pd.Series(["7438000000000000398", "5", "7438000000000000398"], dtype="string")
    assert arrow_text.id_numbers(ids).tolist() == [7438000000000000398, 5, 7438000000000000398]
    # Otherwise codes in order of first appearance ("07" and "7" stay apart).
    assert arrow_text.id_numbers(pd.Series(["07", "7", "07"], dtype="string")).tolist() == [0, 1, 0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["1", "2", "10", "010", "x", "18446744073709551615"]), max_size=12))
def test_id_numbers_are_equal_exactly_when_the_ids_are(ids):
    numbers = arrow_text.id_numbers(pd.Series(ids, dtype="string")).tolist()
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            assert (numbers[i] == numbers[j]) == (a == b)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["C", "é-", "C1x", "", "C "]),
    st.lists(st.sampled_from(["1", "2", "10", "18446744073709551615"]), min_size=1, max_size=12),
    st.sampled_from([None, "010", "0", "", "x", "2 "]),
    st.sampled_from([None, "c", "é-", "C1x", "", "CC", "é"]),
    st.integers(0, 13),
    st.booleans(),
    st.data(),
)
def test_prefixed_ids_are_equal_numbers_exactly_when_the_ids_are(
    prefix, tails, odd_tail, other_prefix, cut, past_first_look, data
):
    """One prefix then digits (`C2213`), perhaps one id with an odd tail (a leading zero, no
    digit) and one with another prefix (or none), an empty or non-ASCII prefix, in two chunks,
    the odd ones within or past the first look: as numbers only when every id is the prefix
    then a whole number, and equal exactly when the ids are."""
    ids = [prefix + t for t in tails]
    for odd in (odd_tail, other_prefix):
        if odd is not None:
            at = data.draw(st.integers(1, len(ids)))
            ids.insert(at, prefix + odd if odd is odd_tail else odd + tails[0])
    ids = [ids[0]] * (arrow_text.FIRST_LOOK if past_first_look else 0) + ids
    arrow = pa.array(ids, pa.large_string())
    at = min(cut, len(ids))
    chunked = pa.chunked_array([arrow.slice(0, at), arrow.slice(at)], pa.large_string())
    numbers = arrow_text.prefixed_numbers(chunked)
    stem = ids[0].rstrip("0123456789")
    readable = bool(stem) and stem != ids[0]
    expected = [
        _whole_numbers_reference([i[len(stem) :] if i.startswith(stem) else "x"]) for i in ids
    ]
    if not readable or any(e is None for e in expected):
        assert numbers is None
        return
    assert numbers is not None
    assert numbers.to_pylist() == [e[0] for e in expected if e is not None]
    values = arrow_text.id_numbers(pd.Series(ids, dtype="string")).tolist()
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            assert (values[i] == values[j]) == (a == b)


def _trimmed(values: list[str | None]) -> list[str | None]:
    """Reference: Arrow's Unicode trim on every value, empty values missing."""
    trimmed = pc.utf8_trim_whitespace(pa.array(values, pa.large_string())).to_pylist()
    return [None if v is None or v == "" else v for v in trimmed]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none()
        | st.text(alphabet=st.sampled_from(["a", "7", " ", "\t", "\u00a0", "\u3000", "é", "\n"])),
        max_size=12,
    ),
    st.integers(0, 3),
)
def test_clean_text_trims_like_arrow_on_every_value(values, skip):
    """The quick look at first and last bytes never skips a value that needs trimming."""
    series = pd.Series(values, dtype="string").iloc[min(skip, len(values)) :]
    cleaned = arrow_text.clean_text(series).astype(object).where(lambda s: s.notna(), None)
    assert cleaned.tolist() == _trimmed(values[min(skip, len(values)) :])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none()
        | st.text(alphabet=st.sampled_from(["a", "B", " ", "\t", "\u00a0", "é"]), max_size=3),
        max_size=12,
    )
)
def test_clean_text_of_categories_is_clean_text_of_their_values(values):
    """Categories (as a Parquet dictionary is read) are cleaned by their distinct values: each
    row's value is that of the same text cleaned, values that become equal are one category."""
    categories = pd.Series(pd.Categorical(values))
    cleaned = arrow_text.clean_text(categories)
    assert isinstance(cleaned.dtype, pd.CategoricalDtype)
    assert cleaned.cat.categories.is_unique
    expected = arrow_text.clean_text(pd.Series(values, dtype="string"))
    assert cleaned.astype("string").tolist() == expected.tolist()


HIDDEN_BYTES = (
    st.lists(
        st.tuples(
            st.booleans(),
            st.text(alphabet=st.sampled_from(["a", "7", " ", "\t", "\u00a0", "é", "\n"])),
        ),
        max_size=12,
    ),
    st.lists(st.integers(0, 12), max_size=3),
    st.integers(0, 2),
)


@settings(max_examples=300, deadline=None)
@given(*HIDDEN_BYTES)
def test_clean_text_of_chunks_with_hidden_bytes_trims_like_arrow(rows, cuts, skip):
    """Several chunks, each a slice of its buffers, whose missing values may still hold bytes
    (Arrow allows it): the offsets and edge bytes read never decide wrongly."""
    array, chunked = _chunks_with_hidden_bytes(rows, cuts, skip)
    series = pd.Series(pd.arrays.ArrowStringArray(chunked))
    cleaned = arrow_text.clean_text(series).astype(object).where(lambda s: s.notna(), None)
    assert cleaned.tolist() == _trimmed(array.to_pylist())


def _chunks_with_hidden_bytes(
    rows: list[tuple[bool, str]], cuts: list[int], skip: int
) -> tuple[pa.Array, pa.ChunkedArray]:
    """Texts (present or not: a missing one keeps its bytes) as one array sliced at `skip`, and
    the same values as chunks cut at `cuts`, each a slice of the array's buffers."""
    present = [p for p, _ in rows]
    full = pa.array([t for _, t in rows], pa.large_string())
    validity = pa.py_buffer(np.packbits(np.array(present, dtype=bool), bitorder="little"))
    _, offsets, data = full.buffers()
    array = pa.Array.from_buffers(pa.large_string(), len(full), [validity, offsets, data])
    array = array.slice(min(skip, len(array)))
    bounds = sorted({0, len(array), *(min(c, len(array)) for c in cuts)})
    chunked = pa.chunked_array(
        [array.slice(a, b - a) for a, b in itertools.pairwise(bounds)], pa.large_string()
    )
    return array, chunked


@settings(max_examples=300, deadline=None)
@given(*HIDDEN_BYTES)
def test_first_bytes_are_each_present_values_first_byte(rows, cuts, skip):
    """The first byte of each value (0 for an empty or missing one) against Python's encoding."""
    array, chunked = _chunks_with_hidden_bytes(rows, cuts, skip)
    expected = [v.encode()[0] if v else 0 for v in array.to_pylist()]
    assert arrow_text.first_bytes(chunked).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans() | st.just(True),
            st.text(alphabet=st.sampled_from(["0", "7", "9", "/", ":", "a", "٣"]), max_size=4),
        ),
        max_size=12,
    ),
    st.lists(st.integers(0, 12), max_size=3),
    st.integers(0, 2),
)
def test_all_digits_is_arrows_ascii_is_decimal_of_every_present_value(rows, cuts, skip):
    """The bytes-only answer for chunks without a missing value (bytes just below and above the
    digits, empty values, slices of one buffer), and Arrow's own where some value is missing
    (its hidden bytes not looked at)."""
    array, chunked = _chunks_with_hidden_bytes(rows, cuts, skip)
    expected = bool(pc.all(pc.ascii_is_decimal(array), min_count=0).as_py())
    assert arrow_text.all_digits(chunked) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.none() | st.text(st.sampled_from(["a", "b", "\x00", "é", "7"]), max_size=20)),
    st.integers(0, 12),
)
def test_text_hashes_depend_on_the_value_alone(values, cut):
    """A value hashes alike wherever it is (any chunk, offset or neighbours); missing as empty."""
    whole = pa.chunked_array([pa.array(values, pa.large_string())], pa.large_string())
    split = pa.chunked_array(
        [pa.array(values[:cut], pa.large_string()), pa.array(values[cut:], pa.large_string())]
    )
    expected = arrow_text.text_hashes(whole).tolist()
    assert arrow_text.text_hashes(split).tolist() == expected
    assert arrow_text.text_hashes(whole.slice(1)).tolist() == expected[1:]
    alone = [
        arrow_text.text_hashes(pa.chunked_array([pa.array([v or ""], pa.large_string())]))[0]
        for v in values
    ]
    assert alone == expected


def test_text_hashes_tell_apart_values_that_differ_in_a_byte_or_a_length():
    values = [
        "",
        "\x00",
        "\x00\x00",
        "a",
        "a\x00",
        "abcdefgh",
        "abcdefgh\x00",
        "abcdefghi",
        "b" * 40,
    ]
    hashes = arrow_text.text_hashes(pa.chunked_array([pa.array(values, pa.large_string())]))
    assert len(set(hashes.tolist())) == len(values)


def _mixed_frame(values: list[str | None]) -> pd.DataFrame:
    """One column of each kind the pipeline's frames hold; text in two Arrow chunks, as blocks
    read one after another give it."""
    n = len(values)
    half = n // 2
    chunked = pa.chunked_array(
        [pa.array(values[:half], pa.large_string()), pa.array(values[half:], pa.large_string())]
    )
    return pd.DataFrame(
        {
            "text": pd.Series(pd.arrays.ArrowStringArray(chunked)),
            "str": pd.Series(values, dtype="str"),
            "at": pd.Series(pd.date_range("2026-11-16", periods=n, freq="h", tz="UTC")),
            "number": pd.Series(range(n), dtype="int64"),
            "code": pd.Series(range(n), dtype="uint64"),
            "flag": pd.Series([i % 2 == 0 for i in range(n)], dtype=bool),
            "role": pd.Series(
                ["buyer", "seller"] * (n // 2) + ["buyer"] * (n % 2), dtype="category"
            ),
            "arrow_int": pd.Series(range(n), dtype=pd.ArrowDtype(pa.int64())),
        },
        index=pd.RangeIndex(10, 10 + n),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.sampled_from(["a", "", "é", "bb"]), max_size=12), st.data())
def test_rows_kept_and_column_taken_equal_pandas_own(values, data):
    """The Arrow-direct selections against pandas' `.loc[mask]` and `.array.take`."""
    frame = _mixed_frame(values)
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))))
    pd.testing.assert_frame_equal(arrow_text.rows_kept(frame, keep), frame.loc[keep])
    rows = np.array(
        data.draw(st.lists(st.integers(-1, max(len(values) - 1, -1)), max_size=8)), dtype="int64"
    )
    for name in frame:
        fill = bool((rows < 0).any())
        expected = (
            frame[name].array.take(rows, allow_fill=True) if fill else frame[name].array.take(rows)
        )
        taken = arrow_text.column_taken(frame[name], rows, fill=fill)
        pd.testing.assert_extension_array_equal(pd.array(taken), pd.array(expected))
        assert taken.dtype == expected.dtype


def _whole_numbers_reference(values: list[str | None]) -> list[int | None] | None:
    """Reference: every value ASCII digits, none with a leading zero, at most 19 of them."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    ok = all(v.isascii() and v.isdecimal() and not v.startswith("0") for v in present)
    if not ok or max(map(len, present)) > arrow_text.WIDEST_NUMBER:
        return None
    return [None if v is None else int(v) for v in values]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.none()
        | st.text(
            alphabet=st.sampled_from(["0", "1", "9", "x", "+", "-", " ", ".", "e", "٣", "５"]),
            max_size=21,
        ),
        max_size=8,
    )
)
def test_whole_numbers_are_exactly_the_ids_of_ascii_digits(values):
    """A column is read as numbers exactly when every id is digits."""
    numbers = arrow_text.whole_numbers(pa.chunked_array([pa.array(values, pa.large_string())]))
    assert (None if numbers is None else numbers.to_pylist()) == _whole_numbers_reference(values)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, arrow_text.FIRST_LOOK + 3),
    st.lists(
        st.none() | st.text(alphabet=st.sampled_from(["0", "1", "9", "x", " "]), max_size=21),
        max_size=4,
    ),
    st.lists(st.integers(0, arrow_text.FIRST_LOOK + 8), max_size=3),
    st.integers(0, 2),
)
def test_whole_numbers_look_past_the_first_values_and_across_chunks(digits, tail, cuts, skip):
    """Digits first (as many as the first look, or more), then anything, in chunks that are
    slices of one buffer: the quick look at the first values and the per-chunk reads of lengths
    and first bytes decide as the reference does."""
    values = [str(7 * n + 1) for n in range(digits)] + tail
    array = pa.array(values, pa.large_string()).slice(min(skip, len(values)))
    bounds = sorted({0, len(array), *(min(c, len(array)) for c in cuts)})
    chunked = pa.chunked_array(
        [array.slice(a, b - a) for a, b in itertools.pairwise(bounds)], pa.large_string()
    )
    numbers = arrow_text.whole_numbers(chunked)
    expected = _whole_numbers_reference(array.to_pylist())
    assert (None if numbers is None else numbers.to_pylist()) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.none() | st.sampled_from(["a", "", "é", "bb"]), max_size=14),
    st.lists(st.integers(0, 14), max_size=4),
    st.data(),
)
def test_chunks_taken_is_arrows_take_of_the_joined_chunks(values, cuts, data):
    """Taking from each chunk its own rows, against Arrow's take of the whole column (chunks
    of any size, empty ones too; rows in any order, repeated, missing with `fill`)."""
    edges = sorted({0, len(values), *(min(c, len(values)) for c in cuts)})
    pieces = [values[a:b] for a, b in itertools.pairwise(edges)] + [[]]
    column = pa.chunked_array([pa.array(p, pa.large_string()) for p in pieces], pa.large_string())
    fill = data.draw(st.booleans())
    low = -1 if fill else 0
    rows = np.array(
        data.draw(
            st.lists(st.integers(low, len(values) - 1), max_size=10) if values else st.just([])
        ),
        dtype="int64",
    )
    indices = pa.array(rows, mask=rows < 0) if fill else pa.array(rows, pa.int64())
    expected = column.combine_chunks().take(indices).to_pylist()
    assert arrow_text.chunks_taken(column, rows, fill).to_pylist() == expected
    # Chunk by chunk whatever share of the rows is taken (it joins the chunks for a large one).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(arrow_text, "MOST_ROWS", 0)
        assert arrow_text.chunks_taken(column, rows, fill).to_pylist() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-50_400, 50_400) | st.integers(0, 9), max_size=30))
def test_small_codes_are_numpys_unique_with_inverse(values):
    """Counting in place of sorting (UTC offsets, role codes): the same distinct values and
    places as `np.unique`."""
    array = np.array(values, dtype="int64")
    distinct, place = arrow_text.small_codes(array)
    expected, inverse = np.unique(array, return_inverse=True)
    assert distinct.tolist() == expected.tolist()
    assert place.tolist() == inverse.ravel().tolist()
