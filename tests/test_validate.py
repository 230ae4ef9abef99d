"""Validation (SPEC 1, 8): roles, ratings, white space, quarantine, counts, shops' zones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MESSAGES_HEADER, compute, run, shop, write_csv, write_jsonl, write_parquet
from cs_metrics.reasons import Reason
from cs_metrics.validate import canonical_roles, whole_rating


@pytest.mark.parametrize(
    ("raw", "role"),
    [
        ("buyer", "buyer"),
        ("BUYER", "buyer"),
        ("Customer", "buyer"),
        ("seller", "seller"),
        ("Shop", "seller"),
        ("customer_service", "seller"),
        ("AGENT", "seller"),
        ("auto_reply", "auto_reply"),
        ("Robot", "auto_reply"),
        ("bot", "auto_reply"),
        ("FAQ", "auto_reply"),
        ("system", "system"),
        ("PLATFORM", "system"),
        ("customer service", None),
        ("admin", None),
        ("CUSTOMER_SERVİCE", None),  # Python's lower case of İ is i̇, not i (found in audit)
    ],
)
def test_role_aliases_are_case_insensitive(raw: str, role: str | None) -> None:
    result = canonical_roles(pd.Series([raw], dtype="string")).iloc[0]
    assert (None if pd.isna(result) else result) == role


def test_roles_as_categories_map_as_their_text() -> None:
    """Roles read as categories (a Parquet dictionary) map as the same roles read as text,
    missing and unknown ones included."""
    raw = ["Customer", "bot", "admin", None, "SELLER", "PLATFORM", "CUSTOMER_SERVİCE", "bot"]
    as_text = canonical_roles(pd.Series(raw, dtype="string"))
    as_categories = canonical_roles(pd.Series(pd.Categorical(raw)))
    assert as_categories.dtype == as_text.dtype
    assert as_categories.tolist() == as_text.tolist()


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", 1),
        ("5", 5),
        ("5.0", 5),
        ("4.00", 4),
        ("4.5", None),
        ("+5", None),
        ("0", None),
        ("6", None),
        ("-1", None),
        ("five", None),
    ],
)
def test_ratings_are_whole_numbers_one_to_five(raw: str, value: int | None) -> None:
    result = whole_rating(pd.Series([raw], dtype="string")).iloc[0]
    assert (None if pd.isna(result) else int(result)) == value


def test_white_space_is_stripped_and_empty_is_missing(data: Path) -> None:
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
         S1 , c1 , m1 ,  Buyer  , 2026-11-17T10:00:00Z
        S1,c1,m2,seller , 2026-11-17T10:30:00Z\t
        S1,  ,m3,buyer,2026-11-17T11:00:00Z
        S1,c2,m4,buyer,\x20\x20\x20
        """,
    )
    dataset, evaluation = run(data)
    counts = dataset.counts["messages"]
    assert (counts.rows_read, counts.rows_used, counts.rows_quarantined) == (4, 2, 2)
    assert set(dataset.quarantine["messages"]["reason"]) == {Reason.MISSING_VALUE.value}
    assert list(dataset.shop_ids) == ["S1"]
    assert evaluation.metrics.loc[0, "first_response_minutes_mean"] == 30.0


def test_missing_value_in_jsonl_null_or_absent_key_is_a_bad_row(data: Path) -> None:
    base = {"shop_id": "S1", "conversation_id": "c1", "sender_role": "buyer"}
    write_jsonl(
        data,
        "messages",
        [
            {**base, "message_id": "m1", "sent_at": "2026-11-17T10:00:00Z"},
            {**base, "message_id": "m2", "sent_at": None},
            {**base, "message_id": "m3"},
            {**base, "message_id": "m4", "sent_at": ""},
        ],
    )
    dataset, _ = run(data)
    assert dataset.counts["messages"].as_dict() == {
        "rows_read": 4,
        "rows_used": 1,
        "rows_quarantined": 3,
        "rows_duplicate": 0,
    }


@pytest.mark.parametrize(
    "line",
    ['["S1","c1"]', "42", '"text"', "null", "{not json"],
    ids=["array", "number", "string", "null", "broken"],
)
def test_jsonl_line_that_is_not_an_object_is_quarantined(data: Path, line: str) -> None:
    write_jsonl(
        data,
        "messages",
        [
            {
                "shop_id": "S1",
                "conversation_id": "c1",
                "message_id": "m1",
                "sender_role": "buyer",
                "sent_at": "2026-11-17T10:00:00Z",
            },
            line,
        ],
    )
    dataset, _ = run(data)
    counts = dataset.counts["messages"]
    assert (counts.rows_read, counts.rows_used, counts.rows_quarantined) == (2, 1, 1)
    assert list(dataset.quarantine["messages"]["row_number"]) == [2]


@pytest.mark.parametrize("extra", [",x", ",x,y"], ids=["one_extra_field", "two_extra_fields"])
def test_csv_row_with_too_many_fields_is_quarantined_and_counted(data: Path, extra: str) -> None:
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m2,seller,2026-11-17T10:10:00Z{extra}
        S1,c1,m3,seller,2026-11-17T10:20:00Z
        """,
    )
    dataset, _ = run(data)
    assert dataset.counts["messages"].as_dict() == {
        "rows_read": 3,
        "rows_used": 2,
        "rows_quarantined": 1,
        "rows_duplicate": 0,
    }
    assert list(dataset.quarantine["messages"]["row_number"]) == [2]


def test_bad_rows_keep_row_number_reason_and_original_values(data: Path) -> None:
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m2,alien,2026-11-17T10:10:00Z
        S1,c1,m3,buyer,yesterday
        """,
    )
    dataset, _ = run(data)
    q = dataset.quarantine["messages"]
    assert list(q["row_number"]) == [2, 3]
    assert list(q["reason"]) == [Reason.UNKNOWN_ROLE.value, Reason.BAD_TIMESTAMP.value]
    assert list(q["sender_role"]) == ["alien", "buyer"]
    assert list(q["sent_at"]) == ["2026-11-17T10:10:00Z", "yesterday"]
    assert q["message"].notna().all()


def test_duplicate_message_ids_first_in_file_kept_only_good_rows_compared(data: Path) -> None:
    """m1 repeats: the bad first copy is quarantined, the second is used, the third duplicate."""
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,not-a-time
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m1,seller,2026-11-17T10:05:00Z
        S1,c1,m2,seller,2026-11-17T10:30:00Z
        S2,c1,m1,buyer,2026-11-17T10:00:00Z
        """,
    )
    dataset, evaluation = run(data)
    assert dataset.counts["messages"].as_dict() == {
        "rows_read": 5,
        "rows_used": 3,
        "rows_quarantined": 1,
        "rows_duplicate": 1,
    }
    s1 = evaluation.metrics.set_index("shop_id").loc["S1"]
    assert s1["first_response_minutes_mean"] == 30.0


def test_shops_first_good_row_counts_later_ones_are_duplicates(data: Path) -> None:
    write_csv(
        data,
        "shops",
        """
        shop_id,name,market,timezone
        S1,bad zone,SG,Mars/Olympus
        S1,first good,,Asia/Tokyo
        S1,second,SG,
        S2,,sg,
        """,
    )
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    doc = compute(data)
    assert doc["input"]["shops"] == {
        "rows_read": 4,
        "rows_used": 2,
        "rows_quarantined": 1,
        "rows_duplicate": 1,
    }
    assert shop(doc, "S1")["timezone"] == "Asia/Tokyo"
    assert shop(doc, "S2")["timezone"] == "Asia/Singapore"


@pytest.mark.parametrize(
    ("market", "zone"),
    [
        ("SG", "Asia/Singapore"),
        ("my", "Asia/Kuala_Lumpur"),
        ("Vn", "Asia/Ho_Chi_Minh"),
        ("th", "Asia/Bangkok"),
        ("PH", "Asia/Manila"),
        ("id", "Asia/Jakarta"),
        ("jp", "Asia/Tokyo"),
        ("us", "America/Los_Angeles"),
        ("MX", "America/Mexico_City"),
        ("br", "America/Sao_Paulo"),
        ("gb", "Europe/London"),
        ("IE", "Europe/Dublin"),
        ("es", "Europe/Madrid"),
        ("fr", "Europe/Paris"),
        ("De", "Europe/Berlin"),
        ("it", "Europe/Rome"),
    ],
)
def test_market_default_zones_are_case_insensitive(data: Path, market: str, zone: str) -> None:
    write_csv(data, "shops", f"shop_id,market\nS1,{market}\n")
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    assert shop(compute(data), "S1")["timezone"] == zone


def test_timezone_column_wins_over_market(data: Path) -> None:
    write_csv(data, "shops", "shop_id,market,timezone\nS1,SG,Asia/Tokyo\n")
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    assert shop(compute(data), "S1")["timezone"] == "Asia/Tokyo"


def test_unknown_market_uses_default_zone_with_a_warning_naming_the_shop(data: Path) -> None:
    write_csv(data, "shops", "shop_id,market\nS_ZZ,ZZ\nS_SG,SG\n")
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS_ZZ,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    dataset, evaluation = run(data, default_timezone="Asia/Tokyo")
    zones = dict(zip(evaluation.metrics["shop_id"], evaluation.metrics["timezone"], strict=True))
    assert zones == {"S_SG": "Asia/Singapore", "S_ZZ": "Asia/Tokyo"}
    assert any("S_ZZ" in w for w in dataset.warnings), dataset.warnings
    assert not any("S_SG" in w for w in dataset.warnings)


def test_shop_missing_from_shops_table_uses_default_zone_with_a_warning(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS9,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    dataset, evaluation = run(data)
    assert evaluation.metrics.loc[0, "timezone"] == "UTC"
    assert any("S9" in w for w in dataset.warnings)


def test_unknown_timezone_makes_the_shops_row_bad_and_the_shop_falls_back(data: Path) -> None:
    write_csv(data, "shops", "shop_id,market,timezone\nS1,SG,Asia/Atlantis\n")
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    dataset, evaluation = run(data)
    assert list(dataset.quarantine["shops"]["reason"]) == [Reason.UNKNOWN_TIMEZONE.value]
    assert evaluation.metrics.loc[0, "timezone"] == "UTC"


def test_naive_times_use_the_zone_of_the_shop_they_belong_to(data: Path) -> None:
    """The same naive text is a different instant for a Singapore and a UTC shop."""
    write_csv(data, "shops", "shop_id,market\nSG1,SG\n")
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        SG1,c1,m1,buyer,2026-11-17 10:00:00
        SG1,c1,m2,seller,2026-11-17T02:30:00Z
        U1,c1,m1,buyer,2026-11-17 10:00:00
        U1,c1,m2,seller,2026-11-17T10:45:00Z
        """,
    )
    metrics = run(data)[1].metrics.set_index("shop_id")
    assert metrics.loc["SG1", "first_response_minutes_mean"] == 30.0
    assert metrics.loc["U1", "first_response_minutes_mean"] == 45.0


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("S1,2026-11-18,2026-11-17", Reason.END_BEFORE_START),
        ("S1,soon,", Reason.BAD_TIMESTAMP),
        ("S1,2026-11-17,later", Reason.BAD_TIMESTAMP),
        (",2026-11-17,2026-11-18", Reason.MISSING_VALUE),
        ("S1,,2026-11-18", Reason.MISSING_VALUE),
    ],
    ids=["end_before_start", "bad_start", "bad_end", "no_shop", "no_start"],
)
def test_bad_holiday_mode_rows(data: Path, row: str, reason: Reason) -> None:
    write_csv(data, "holiday_mode", f"shop_id,start,end\n{row}\nS1,2026-11-19,2026-11-19\n")
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    dataset, _ = run(data)
    assert dataset.counts["holiday_mode"].as_dict() == {
        "rows_read": 2,
        "rows_used": 1,
        "rows_quarantined": 1,
        "rows_duplicate": 0,
    }
    assert list(dataset.quarantine["holiday_mode"]["reason"]) == [reason.value]


def test_rating_rows_bad_values_are_quarantined_and_counted(data: Path) -> None:
    write_csv(
        data,
        "ratings",
        """
        shop_id,conversation_id,rating,rated_at
        S1,c1,5.0,2026-11-17T11:00:00Z
        S1,c2,4.5,2026-11-17T11:00:00Z
        S1,c3,+5,2026-11-17T11:00:00Z
        S1,c4,0,2026-11-17T11:00:00Z
        S1,c5,6,2026-11-17T11:00:00Z
        S1,c6,4,whenever
        S1,c7,4,2026-11-17T11:00:00Z
        """,
    )
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-18T10:00:00Z\n")
    doc = compute(data)
    assert doc["input"]["ratings"] == {
        "rows_read": 7,
        "rows_used": 2,
        "rows_quarantined": 5,
        "rows_duplicate": 0,
    }
    assert (shop(doc, "S1")["ratings"], shop(doc, "S1")["ratings_satisfied"]) == (2, 2)


def test_jsonl_of_only_non_object_lines_is_all_bad_rows_not_an_error(data: Path) -> None:
    """No line is an object, so no column can be missing: two bad rows, and the run goes on."""
    write_jsonl(data, "messages", ["not json", "[1, 2]"])
    dataset, evaluation = run(data)
    assert dataset.counts["messages"].as_dict() == {
        "rows_read": 2,
        "rows_used": 0,
        "rows_quarantined": 2,
        "rows_duplicate": 0,
    }
    assert evaluation.metrics.empty


def test_csv_row_with_too_few_fields_is_a_bad_row(data: Path) -> None:
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\nS1,c1,m1\nS1,c1,m2,buyer,2026-11-17T10:00:00Z\n",
    )
    dataset, _ = run(data)
    assert dataset.counts["messages"].as_dict() == {
        "rows_read": 2,
        "rows_used": 1,
        "rows_quarantined": 1,
        "rows_duplicate": 0,
    }
    assert list(dataset.quarantine["messages"]["row_number"]) == [1]


def test_quoted_csv_values_with_commas_and_newlines_are_one_row(data: Path) -> None:
    write_csv(
        data,
        "messages",
        f'{MESSAGES_HEADER},content\nS1,c1,m1,buyer,2026-11-17T10:00:00Z,"a, b\nc"\n'
        "S1,c1,m2,seller,2026-11-17T10:05:00Z,ok\n",
    )
    dataset, _ = run(data)
    assert dataset.counts["messages"].rows_used == 2
    assert dataset.counts["messages"].rows_read == 2


def test_parquet_integer_epoch_and_date_columns(data: Path) -> None:
    """Integer sent_at is Unix seconds; a date32 holiday start is the shop's local midnight."""
    write_parquet(
        data,
        "messages",
        pa.table(
            {
                "shop_id": ["S1", "S1"],
                "conversation_id": ["c1", "c1"],
                "message_id": ["m1", "m2"],
                "sender_role": ["buyer", "seller"],
                "sent_at": pa.array([1794873600, 1794891600], pa.int64()),
            }
        ),
    )
    write_parquet(
        data,
        "holiday_mode",
        pa.table(
            {
                "shop_id": ["S1"],
                "start": pa.array([dt.date(2026, 11, 17)], pa.date32()),
                "end": pa.array([None], pa.date32()),
            }
        ),
    )
    write_csv(data, "shops", "shop_id,market\nS1,SG\n")
    # Received 2026-11-17 00:00Z = 08:00 in Singapore, after Holiday Mode began at 00:00 local.
    doc = compute(data)
    assert doc["input"]["messages"]["rows_used"] == 2
    assert shop(doc, "S1")["chats_excluded_holiday_mode"] == 1


def _whole_rating_reference(values: pd.Series) -> pd.Series:
    """Reference: every row's text read as a rating on its own."""
    whole = values.str.fullmatch(r"[0-9]+(?:\.0+)?").fillna(False).astype(bool)
    number = pd.to_numeric(values.where(whole), errors="coerce")
    return number.where((number >= 1) & (number <= 5)).astype("Int8")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.none() | st.text(alphabet=st.sampled_from(["0", "1", "5", "6", ".", "+", "-", "a"])),
        max_size=12,
    )
)
def test_ratings_read_once_per_distinct_text_are_those_read_per_row(raw):
    values = pd.Series(raw, dtype="string").replace("", None)
    assert whole_rating(values).equals(_whole_rating_reference(values))


@pytest.mark.parametrize("stored_as_dictionary", [False, True])
def test_a_block_with_roles_as_dictionaries_checks_as_one_with_roles_as_text(
    tmp_path: Path, stored_as_dictionary: bool
) -> None:
    """The same messages in Parquet, their roles stored as text or as a dictionary, read with
    the roles as categories (as the engines read them) and as text: the same good rows and the
    same bad rows, with the same reasons and the raw roles as written."""
    from cs_metrics.readers import map_blocks
    from cs_metrics.validate import AS_CATEGORIES, MessageCheck

    roles = [" Buyer", "seller ", "", None, "admin", "bot", "buyer", "SELLER"]
    count = len(roles)
    path = write_parquet(
        tmp_path,
        "messages",
        pa.table(
            {
                "shop_id": ["s1"] * count,
                "conversation_id": ["c1"] * count,
                "message_id": [f"m{i}" for i in range(count)],
                "sender_role": (
                    pa.array(roles).dictionary_encode() if stored_as_dictionary else roles
                ),
                "sent_at": [f"2026-11-17T10:0{i}:00Z" for i in range(count)],
            }
        ),
    )
    check = MessageCheck(pd.Series(dtype="string"), "Asia/Singapore")
    as_categories = map_blocks("messages", path, check, categories=AS_CATEGORIES)[0].rows
    as_text = map_blocks("messages", path, check)[0].rows
    raw = map_blocks("messages", path, lambda block: block, categories=AS_CATEGORIES)[0]
    assert isinstance(raw["sender_role"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(as_categories.good, as_text.good)
    pd.testing.assert_frame_equal(as_categories.quarantine, as_text.quarantine)
    assert as_categories.good["sender_role"].tolist() == [
        "buyer",
        "seller",
        "auto_reply",
        "buyer",
        "seller",
    ]
    bad = as_categories.quarantine
    assert bad["reason"].tolist() == ["missing_value", "missing_value", "unknown_role"]
    assert bad["sender_role"].astype(object).where(bad["sender_role"].notna(), None).tolist() == [
        "",
        None,
        "admin",
    ]
