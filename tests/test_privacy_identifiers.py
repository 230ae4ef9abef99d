"""The buyer identifier table (privacy.identifiers, data_buyers, data_identifiers) is the one the
straightforward code made, row for row and type for type, whatever characters the ids and
names hold (docs/privacy.md)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_metrics import privacy
from cs_metrics.pipeline import Dataset

KEY = b"k" * 32
T = TypeVar("T")

# ----------------------------------------------------------------------------- the reference
# The straightforward code the fast one replaced, kept as it was: Python's `re` on every text,
# every repeat searched for.

_FIRST_TOKEN = re.compile(f"({privacy._TOKEN})")


def reference_identifiers(buyers: pd.DataFrame) -> pd.DataFrame:
    columns = ["shop_id", "text", "buyer_id", "first"]
    known = buyers.loc[buyers["buyer_id"].notna()] if len(buyers) else buyers
    if known.empty:
        return pd.DataFrame(columns=columns, dtype=object)
    texts = pd.concat(
        [
            pd.DataFrame({"shop_id": known["shop_id"], "buyer_id": known["buyer_id"], "text": t})
            for t in (known["buyer_id"], known["name"])
        ],
        ignore_index=True,
    )
    texts = texts.loc[texts["text"].notna()].astype(object)
    texts["text"] = (
        texts["text"].astype(str).str.strip().str.replace(r"\s+", " ", regex=True).str.lower()
    )
    texts = texts.loc[texts["text"].str.len() > 0].drop_duplicates(["shop_id", "text"])
    texts["shop_id"] = texts["shop_id"].astype(str)
    texts["first"] = texts["text"].str.extract(_FIRST_TOKEN, expand=False)
    return texts[columns].reset_index(drop=True)


def reference_buyers_of(
    messages: pd.DataFrame, shops: frozenset[str] | None = None
) -> pd.DataFrame:
    buyer = messages["sender_role"].eq(privacy.BUYER).fillna(False).to_numpy(bool)
    if shops is not None:
        buyer = buyer & messages["shop_id"].isin(list(shops)).to_numpy(bool)
    wanted = [c for c in ("shop_id", "sender_id", privacy.NAME_COLUMN) if c in messages]
    rows = messages[wanted].loc[buyer]
    names = (
        rows[privacy.NAME_COLUMN]
        if privacy.NAME_COLUMN in rows
        else pd.Series(pd.NA, index=rows.index)
    )
    return pd.DataFrame(
        {
            "shop_id": rows["shop_id"].astype("string"),
            "buyer_id": rows["sender_id"].astype("string")
            if "sender_id" in rows
            else pd.Series(pd.NA, index=rows.index, dtype="string"),
            "name": names.astype("string"),
        }
    ).drop_duplicates()


def reference_data_buyers(
    groups: list[pd.DataFrame], shops: frozenset[str] | None = None
) -> pd.DataFrame:
    parts = [reference_buyers_of(g, shops) for g in groups]
    if not parts:
        return pd.DataFrame(columns=["shop_id", "buyer_id", "name"], dtype="string")
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)


# ----------------------------------------------------------------------------- the texts

# ASCII letters, digits and token punctuation; every character Python's `\s` matches in ASCII
# (RE2's `\s` misses \x0b and \x1c-\x1f; Arrow's trim takes some of them); and non-ASCII
# characters whose case, space or word-ness differ between Python, RE2 and utf8proc: `İ`
# lower-cases to two characters in Python, `K` (Kelvin) and `ſ` to ASCII letters, `ß`, NBSP,
# ideographic space, line and paragraph separators, NEL, Thai letters and vowel signs (not
# `\w`-alphanumeric everywhere) and Vietnamese letters.
ALPHABET = (
    list("aAbBzZ09_.+-@,")
    + list("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f ")
    + list("éİßſ\u212a\u00a0\u3000\u2028\u2029\u0085\u1680\u200b")
    + list("กขค\u0e31\u0e34\u0e48ưệẠđ")
)
TEXTS = st.text(st.sampled_from(ALPHABET), max_size=10)
# Few ids and names, so buyers repeat within and across shops and texts collide once cleaned.
POOL = st.sampled_from(["Ann", "ann", " ANN ", "b_1", "B_1", "b\x1c1", "İz", "iz", "a.b", "é"])
VALUES = st.one_of(st.none(), TEXTS, POOL)
SHOPS = st.sampled_from(["s1", "s2", "S1", "é"])
ROWS = st.lists(st.tuples(SHOPS, VALUES, VALUES), max_size=30)


def buyers_frame(rows: list[tuple[str, str | None, str | None]], dtype: str) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["shop_id", "buyer_id", "name"], dtype=object).astype(dtype)


def assert_same_table(named: privacy.BuyerNames, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(named.table, expected, check_exact=True)
    assert named.table.dtypes.to_dict() == expected.dtypes.to_dict()


@settings(max_examples=400, deadline=None)
@given(ROWS, st.sampled_from(["string", "str", object]))
def test_identifiers_are_the_reference_ones(rows: list[Any], dtype: str) -> None:
    buyers = buyers_frame(rows, dtype)
    assert_same_table(privacy.identifiers(buyers, KEY), reference_identifiers(buyers))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(SHOPS, st.one_of(st.none(), TEXTS)), min_size=1, max_size=30))
def test_identifiers_of_ascii_only_texts_are_the_reference_ones(rows: list[Any]) -> None:
    """All rows on the Arrow path (none left for `re`), ids only as data_buyers gives them."""
    ascii_rows = [(s, t.encode("ascii", "ignore").decode() if t else t, None) for s, t in rows]
    buyers = buyers_frame(ascii_rows, "string")
    assert_same_table(privacy.identifiers(buyers, KEY), reference_identifiers(buyers))


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("buyer_9c", "buyer_9c"),  # one token: the text itself
        ("x", "x"),
        ("..a.b..", "a.b"),  # `.` only inside a token
        ("a+ b", "a"),
        ("--", None),  # no word at all
        ("@ann_lee, hi", "ann_lee"),
        ("ñam", "ñam"),  # non-ASCII: `re`'s Unicode `\w`
        ("-ß-x", "ß-x"),
    ],
)
def test_the_first_word_of_a_text(text: str, first: str | None) -> None:
    buyers = pd.DataFrame({"shop_id": ["S"], "buyer_id": [text], "name": [None]}, dtype="string")
    found = privacy.identifiers(buyers, KEY).table["first"]
    assert found.isna().tolist() == [first is None]
    assert first is None or found.tolist() == [first]


def test_the_ascii_character_sets_are_pythons() -> None:
    """Each ASCII character is white space (a word character) for RE2 with the sets exactly
    when it is for Python's `re`."""
    chars = [chr(code) for code in range(128)]
    spaces = pc.match_substring_regex(pa.array(chars), f"^{privacy._ASCII_SPACES}$")
    words = pc.match_substring_regex(pa.array(chars), f"^[{privacy._ASCII_WORD}]$")
    assert spaces.to_pylist() == [re.fullmatch(r"\s", c) is not None for c in chars]
    assert words.to_pylist() == [re.fullmatch(r"\w", c) is not None for c in chars]
    assert sum(spaces.to_pylist()) == 10 and sum(words.to_pylist()) == 63


# ----------------------------------------------------------------------------- data_buyers


@dataclass(frozen=True)
class ListGroups:
    """Messages in several groups (as the disk engine keeps them), held here."""

    frames: list[pd.DataFrame]

    def map(
        self, func: Callable[[pd.DataFrame], T], columns: Sequence[str] | None = None
    ) -> list[T]:
        """`func` of each group, given only `columns` when named (as the disk engine reads)."""
        if columns is None:
            return [func(frame) for frame in self.frames]
        return [func(frame[[c for c in frame if c in set(columns)]]) for frame in self.frames]


def dataset_of(groups: list[pd.DataFrame]) -> Dataset:
    empty = pd.DataFrame()
    return Dataset(
        messages=empty,
        ratings=empty,
        holiday_mode=empty,
        zones=pd.Series(dtype=object),
        shops=empty,
        quarantine={},
        counts={},
        shop_ids=pd.Index([]),
        groups=ListGroups(groups),  # type: ignore[arg-type]
    )


ROLES = st.sampled_from(["buyer", "seller", None])
MESSAGE_ROWS = st.lists(st.tuples(SHOPS, ROLES, VALUES, VALUES), max_size=20)


def messages_frame(rows: list[Any], with_names: bool, dtype: str = "string") -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["shop_id", "sender_role", "sender_id", privacy.NAME_COLUMN], dtype=object
    )
    frame = frame.astype({"shop_id": dtype, "sender_id": dtype})
    frame["sender_role"] = pd.Categorical(
        frame["sender_role"], categories=["buyer", "seller", "auto_reply", "system"]
    )
    if with_names:
        return frame.astype({privacy.NAME_COLUMN: "string"})
    return frame.drop(columns=privacy.NAME_COLUMN)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(MESSAGE_ROWS, max_size=4),
    st.booleans(),
    st.one_of(st.none(), st.frozensets(SHOPS)),
    st.sampled_from(["string", "str", "category"]),
)
def test_data_buyers_and_identifiers_are_the_reference_ones(
    groups: list[list[Any]], with_names: bool, shops: frozenset[str] | None, dtype: str
) -> None:
    """Groups may even share shops (the engines' groups do not): a buyer row repeated in two
    groups is one row of data_buyers and changes no identifier."""
    frames = [messages_frame(rows, with_names, dtype) for rows in groups]
    dataset = dataset_of(frames)
    expected = reference_data_buyers(frames, shops)
    buyers = privacy.data_buyers(dataset, shops=shops)
    pd.testing.assert_frame_equal(buyers, expected, check_exact=True)
    for frame in frames:
        pd.testing.assert_frame_equal(
            privacy._buyers_of(frame, shops), reference_buyers_of(frame, shops), check_exact=True
        )
    assert_same_table(
        privacy.data_identifiers(dataset, KEY, shops), reference_identifiers(expected)
    )


def test_data_identifiers_by_hand() -> None:
    """Two groups; `Ann` in both (one row), `b 1`'s name cleaned to its own id's text."""
    first = messages_frame(
        [
            ("S", "buyer", "Ann", None),
            ("S", "seller", "agent", None),
            ("S", "buyer", "b 1", "B\t1"),
        ],
        with_names=True,
    )
    second = messages_frame([("S", "buyer", "Ann", None), ("T", "buyer", "Zoë", "Zoë  Tan")], True)
    table = privacy.data_identifiers(dataset_of([first, second]), KEY).table
    assert table.to_numpy().tolist() == [
        ["S", "ann", "Ann", "ann"],
        ["S", "b 1", "b 1", "b"],
        ["T", "zoë", "Zoë", "zoë"],
        ["T", "zoë tan", "Zoë", "zoë"],
    ]


def test_no_buyer_gives_an_empty_table() -> None:
    named = privacy.data_identifiers(dataset_of([]), KEY)
    assert named.table.empty and list(named.table) == ["shop_id", "text", "buyer_id", "first"]
    assert privacy.data_buyers(dataset_of([])).dtypes.tolist() == [pd.StringDtype()] * 3
