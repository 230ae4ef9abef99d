"""The duplicate rule (SPEC 8), settled per group of shops: duplicates.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_metrics import arrow_text, duplicates
from cs_metrics.duplicates import (
    DUPLICATE,
    collapsed_warnings,
    flagged,
    group_summary,
    without_duplicates,
)
from cs_metrics.readers import ROW


def group(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    """Good message rows (shop, conversation, message, sent_at, row number), as a block has them."""
    shops, conversations, messages, sent, numbers = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "shop_id": pd.Series(shops, dtype="string[pyarrow]"),
            "conversation_id": pd.Series(conversations, dtype="string[pyarrow]"),
            "message_id": pd.Series(messages, dtype="string[pyarrow]"),
            "sent_at": pd.to_datetime(list(sent), utc=True),
            ROW: pd.Series(numbers, dtype="int64"),
        }
    )


ROWS = [
    ("S1", "c1", "m1", "2026-11-17T10:00:00Z", 4),
    ("S2", "c2", "m1", "2026-11-17T11:00:00Z", 2),
    ("S1", "c1", "m1", "2026-11-01T00:00:00Z", 1),
    ("S1", "c1", "m2", "2026-11-17T12:00:00Z", 3),
    ("S2", "c2", "m1", "2026-12-01T00:00:00Z", 5),
]


def test_the_first_row_in_file_order_is_kept_per_shop() -> None:
    """Rows out of file order are put back in it; a repeated id of another shop is no repeat."""
    marked = flagged(group(ROWS))
    assert marked[ROW].tolist() == [1, 2, 3, 4, 5]
    assert marked[DUPLICATE].tolist() == [False, False, False, True, True]
    used = without_duplicates(marked)
    assert used[ROW].tolist() == [1, 2, 3]
    assert DUPLICATE not in used.columns
    assert used["shop_key"].iloc[0] == used["shop_key"].iloc[2] != used["shop_key"].iloc[1]


def test_the_summary_covers_used_rows_only() -> None:
    """Duplicates do not widen the time range: the earliest row is the first, kept one."""
    summary = group_summary(flagged(group(ROWS)))
    assert summary.duplicates == 2
    assert summary.earliest == pd.Timestamp("2026-11-01T00:00:00Z")
    assert summary.latest == pd.Timestamp("2026-11-17T12:00:00Z")
    assert sorted(summary.shop_ids) == ["S1", "S2"]
    assert summary.collapsed.empty


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["S1", "S2", " S3", "é"]), st.sampled_from(["m1", "m2", "m3"])),
        min_size=1,
        max_size=14,
    )
)
def test_the_used_shops_by_key_are_those_of_the_used_rows(rows):
    """A flagged group's shops named by key (one row per key) against the text of every used
    row, in order of first appearance, duplicates among the rows or not."""
    table = group([(s, "c", m, "2026-11-17T10:00:00Z", n) for n, (s, m) in enumerate(rows, 1)])
    marked = flagged(table)
    used = marked.loc[~marked[DUPLICATE], "shop_id"]
    expected = used.dropna().unique().tolist()
    assert list(group_summary(marked).shop_ids) == expected
    assert list(group_summary(marked.drop(columns="shop_key")).shop_ids) == expected


def test_keyed_shops_name_each_key_from_any_of_its_rows() -> None:
    group = pd.DataFrame(
        {
            "shop_id": pd.Series(["S2", "S1", "S2", "S4", "S1"], dtype="string"),
            "shop_key": np.array([0, 1, 0, 3, 1]),  # key 2: no row of this group
        }
    )
    key, ids = duplicates.keyed_shops(group)
    assert key.tolist() == [0, 1, 0, 3, 1]
    assert ids[0] == "S2" and ids[1] == "S1" and pd.isna(ids[2]) and ids[3] == "S4"


def test_an_empty_group_has_no_cutoff() -> None:
    summary = group_summary(flagged(group(ROWS).iloc[:0]))
    assert (summary.duplicates, summary.earliest, summary.latest) == (0, None, None)


def test_collapsed_ids_are_warned_about_once_over_all_groups() -> None:
    """Duplicates in scientific notation from two groups: one warning, first example by row."""
    first = group([("S1", "c", "1.2E+18", "2026-11-17T10:00:00Z", 7)] * 2)
    second = group([("S2", "c", "3.4E+18", "2026-11-17T10:00:00Z", 3)] * 2)
    collapsed = [group_summary(flagged(g)).collapsed for g in (first, second)]
    (line,) = collapsed_warnings(collapsed)
    assert line.startswith("messages: 2 row(s) counted as duplicates")
    assert "'3.4E+18'" in line
    assert collapsed_warnings([c.iloc[:0] for c in collapsed]) == []


def _reference_repeats(shops: list[str], ids: list[str]) -> list[bool]:
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in zip(shops, ids, strict=True):
        out.append(pair in seen)
        seen.add(pair)
    return out


@pytest.mark.parametrize(
    ("shops", "ids"),
    [
        # Numbers: same id in another shop is no repeat; a repeat far from its first row.
        (["a", "b", "a", "a", "b"], ["7438000000000000398", "7438000000000000398", "5", "9", "5"]),
        (["a", "a", "a", "a"], ["30", "20", "30", "30"]),
        # A leading zero: "012" and "12" are different ids (text path).
        (["a", "a", "a"], ["012", "12", "012"]),
        # Letters and 20 digits: text path.
        (["a", "a"], ["m1", "m1"]),
        (["a", "a"], ["18446744073709551615", "18446744073709551615"]),
        ([], []),
    ],
)
def test_repeated_ids_match_a_hand_check(shops, ids):
    shop_codes, _ = arrow_text.text_codes(pd.Series(shops, dtype="string"))
    found = duplicates.repeated_ids(shop_codes, pd.Series(ids, dtype="string"))
    assert found.tolist() == _reference_repeats(shops, ids)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["s1", "s2", "s3"]), st.integers(1, 40).map(str)),
        max_size=60,
    )
)
def test_repeated_ids_property(rows):
    shops = [s for s, _ in rows]
    ids = [i for _, i in rows]
    shop_codes, _ = arrow_text.text_codes(pd.Series(shops, dtype="string"))
    found = duplicates.repeated_ids(shop_codes, pd.Series(ids, dtype="string"))
    assert found.tolist() == _reference_repeats(shops, ids)


def test_repeated_pairs_by_hand() -> None:
    """Codes number values in order of first appearance; -1 (missing) is never a repeat."""
    shop = np.array([0, 0, 1, 0, 0, 0])
    message = np.array([0, 1, 0, 0, -1, -1])
    assert duplicates.repeated_pairs(shop, message).tolist() == [
        False,
        False,
        False,  # same message code, another shop
        True,
        False,
        False,
    ]
    # A missing value after the highest code is repeated (-1 must not index from the end).
    assert duplicates.repeated_pairs(np.zeros(3, "int64"), np.array([0, 0, -1])).tolist() == [
        False,
        True,
        False,
    ]
    assert duplicates.repeated_pairs(np.zeros(2, "int64"), np.array([-1, -1])).tolist() == [
        False,
        False,
    ]


TEXT_IDS = st.sampled_from(["m1", "m2", "M1", "m10", "", " m1", "ab" * 9, "ab" * 9 + "c", "é"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2"]), TEXT_IDS | st.none()), max_size=40))
def test_text_ids_repeat_exactly_when_their_texts_do(rows):
    """Text ids (compared by hash, then by text) against the reference, whatever the hash: a
    hash that makes every id collide gives the same answer."""
    shops = [s for s, _ in rows]
    ids = pd.Series([i for _, i in rows], dtype="string")
    shop_codes, _ = arrow_text.text_codes(pd.Series(shops, dtype="string"))
    # A missing id repeats nothing.
    expected = [
        seen and i is not None
        for seen, (_, i) in zip(
            _reference_repeats(shops, [str(i) for _, i in rows]), rows, strict=True
        )
    ]
    assert duplicates.repeated_ids(shop_codes, ids).tolist() == expected

    def colliding(text: pa.ChunkedArray) -> np.ndarray:
        return np.zeros(len(text), dtype=np.uint64)

    assert duplicates.repeated_ids(shop_codes, ids, hashes=colliding).tolist() == expected


BLOCK_IDS = st.sampled_from(["7", "12", "012", "m1", "9" * 19, "1" * 20]) | st.integers(1, 9).map(
    str
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(["s1", "s2"]), BLOCK_IDS), min_size=1, max_size=8),
        min_size=1,
        max_size=4,
    )
)
def test_ids_carried_by_blocks_flag_as_the_ids_themselves(blocks):
    """Blocks of numbers, of text ids or of both, each carrying its own `id_values` into the
    group: the group is flagged as it is from its ids alone."""
    rows, carried = [], []
    for block in blocks:
        first = len(rows)
        rows += [
            (shop, "c1", mid, "2026-11-17T10:00:00Z", first + i + 1)
            for i, (shop, mid) in enumerate(block)
        ]
        carried.append(duplicates.with_id_values(group(rows[first:]))[0])
    whole = pd.concat(carried, ignore_index=True)
    found = flagged(whole)
    expected = flagged(group(rows))
    assert found.columns.tolist() == expected.columns.tolist()
    assert found[DUPLICATE].tolist() == expected[DUPLICATE].tolist()
    shops, ids = zip(*[(s, m) for block in blocks for s, m in block], strict=True)
    assert found[DUPLICATE].tolist() == _reference_repeats(list(shops), list(ids))
    # The values the group ends with are those of its ids taken whole.
    table = duplicates.id_values(whole["message_id"])
    carried_values = duplicates.carried_id_values(whole)
    assert carried_values is not None
    assert carried_values.exact == table.exact
    assert carried_values.numbers.tolist() == table.numbers.tolist()


BLOCK_SHOPS = st.sampled_from(["S1", "S2", "7", "12", "012", "shop é"]) | st.none()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(BLOCK_SHOPS, max_size=8), min_size=1, max_size=4))
def test_shop_codes_renumbered_over_blocks_are_those_of_the_whole_table(blocks):
    """Blocks of shop_ids (numbers, text, both, missing ones, empty blocks), each coded on its
    own as the engines code them: renumbered over the blocks, they are the codes of all the
    rows together, so `flagged` keys the same shops whether it takes them over or not."""
    frames = [
        pd.DataFrame({"shop_id": pd.Series(block, dtype="string[pyarrow]")}) for block in blocks
    ]
    coded = [
        frame.assign(**{duplicates.SHOP_CODE: arrow_text.text_codes(frame["shop_id"])[0]})
        for frame in frames
    ]
    renumbered = pd.concat(duplicates.table_shop_codes(coded), ignore_index=True)
    whole = pd.Series([s for block in blocks for s in block], dtype="string[pyarrow]")
    expected = arrow_text.text_codes(whole)[0]
    assert renumbered[duplicates.SHOP_CODE].tolist() == expected.tolist()


def test_first_appearances_by_hand() -> None:
    """Codes numbered in order of first appearance: where 0, 1 and 2 first occur."""
    codes = np.array([-1, 0, 0, 1, -1, 0, 2, 1])
    assert duplicates.first_appearances(codes).tolist() == [1, 3, 6]
    assert duplicates.first_appearances(codes[:0]).tolist() == []


def test_carried_shop_codes_are_used_only_for_rows_in_file_order() -> None:
    """A group whose rows needed sorting recodes its shops from their text: codes carried in
    the order the rows were held would number them differently from file order."""
    rows = group(ROWS)  # row numbers 4, 2, 1, 3, 5: not in file order
    wrong = rows.assign(**{duplicates.SHOP_CODE: np.array([7, 7, 7, 7, 7], dtype="int32")})
    found = flagged(wrong)
    expected = flagged(rows)
    assert duplicates.SHOP_CODE not in found
    # In file order (rows 1..5): S1, S2, S1, S1, S2.
    assert found["shop_key"].tolist() == expected["shop_key"].tolist() == [0, 1, 0, 0, 1]
