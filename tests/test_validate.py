"""Validation (SPEC 1, 8): timestamps, roles, ratings, white space, quarantine, counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MESSAGES_HEADER, compute, run, shop, write_csv, write_jsonl, write_parquet
from cs_metrics import arrow_text, duplicates, timestamps
from cs_metrics.reasons import Reason
from cs_metrics.timestamps import parse_instants
from cs_metrics.validate import canonical_roles, whole_rating

UTC = dt.UTC


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=UTC))


def parse_one(text: str, zone: str = "UTC") -> tuple[pd.Timestamp | None, str | None]:
    """One timestamp text parsed in a shop zone: (instant, reason)."""
    instants, reasons = parse_instants(pd.Series([text], dtype="string"), pd.Series([zone]))
    instant, reason = instants.iloc[0], reasons.iloc[0]
    return (None if pd.isna(instant) else instant), (None if pd.isna(reason) else reason)


GOOD_TIMESTAMPS = [
    ("2026-11-17T10:00:00Z", "Asia/Singapore", utc(2026, 11, 17, 10)),
    ("2026-11-17 10:00:00Z", "UTC", utc(2026, 11, 17, 10)),
    ("2026-11-17T10:00:00+08:00", "UTC", utc(2026, 11, 17, 2)),
    ("2026-11-17T10:00:00+0800", "UTC", utc(2026, 11, 17, 2)),
    ("2026-11-17T10:00:00-05:30", "UTC", utc(2026, 11, 17, 15, 30)),
    ("2026-11-17T10:00:00-0530", "UTC", utc(2026, 11, 17, 15, 30)),
    ("2026-11-17T10:00Z", "UTC", utc(2026, 11, 17, 10)),
    ("2026-11-17T10:00:00", "Asia/Singapore", utc(2026, 11, 17, 2)),
    ("2026-11-17 10:00", "America/Los_Angeles", utc(2026, 11, 17, 18)),
    ("2026-11-17", "Asia/Singapore", utc(2026, 11, 16, 16)),
    ("2026-11-17", "UTC", utc(2026, 11, 17)),
    ("2026-11-17T10:00:00.5Z", "UTC", utc(2026, 11, 17, 10, 0, 0, 500000)),
    ("2026-11-17T10:00:00.001+00:00", "UTC", utc(2026, 11, 17, 10, 0, 0, 1000)),
    ("2026-11-17T10:00:00.123456", "Asia/Singapore", utc(2026, 11, 17, 2, 0, 0, 123456)),
    ("1794877200", "Asia/Singapore", utc(2026, 11, 17, 1)),
    ("0", "UTC", utc(1970, 1, 1)),
    ("99999999999", "UTC", utc(5138, 11, 16, 9, 46, 39)),
    ("10000000000", "UTC", utc(2286, 11, 20, 17, 46, 40)),
    ("100000000000", "UTC", utc(1973, 3, 3, 9, 46, 40)),
    ("1794877200000", "UTC", utc(2026, 11, 17, 1)),
    ("1794877200123", "UTC", utc(2026, 11, 17, 1, 0, 0, 123000)),
    ("2026-03-29T02:30:00+01:00", "Europe/London", utc(2026, 3, 29, 1, 30)),
    ("2026-03-29T00:30:00", "Europe/London", utc(2026, 3, 29, 0, 30)),
]


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    GOOD_TIMESTAMPS,
    ids=[
        "Z",
        "space_separator_Z",
        "plus_hh_colon_mm",
        "plus_hhmm",
        "minus_hh_colon_mm",
        "minus_hhmm",
        "minutes_only_Z",
        "naive_is_shop_local",
        "naive_minutes_only_la",
        "date_only_is_local_midnight",
        "date_only_utc",
        "fraction_half_second",
        "fraction_millisecond",
        "naive_fraction_micro",
        "unix_seconds_10_digits",
        "unix_zero",
        "unix_seconds_11_digits_year_5138",
        "unix_seconds_year_2286",
        "unix_milliseconds_from_12_digits",
        "unix_milliseconds_13_digits",
        "unix_milliseconds_with_millis",
        "offset_given_in_london_gap_is_fine",
        "naive_before_london_gap",
    ],
)
def test_accepted_timestamp_forms(text: str, zone: str, expected: pd.Timestamp) -> None:
    assert parse_one(text, zone) == (expected, None)


@pytest.mark.parametrize(
    ("text", "date_format", "expected"),
    [
        ("17/11/2026 10:29:60", "%d/%m/%Y %H:%M:%S", None),
        ("17/11/2026 10:29:61", "%d/%m/%Y %H:%M:%S", None),
        ("17/11/2026 10:29:59", "%d/%m/%Y %H:%M:%S", utc(2026, 11, 17, 10, 29, 59)),
        ("16/06/2061 06:16:16", "%d/%m/%Y %H:%M:%S", utc(2061, 6, 16, 6, 16, 16)),
        ("2026-11-17 10:00:60 +0000", "%Y-%m-%d %H:%M:%S %z", None),
    ],
)
def test_date_format_seconds_stop_at_59(
    text: str, date_format: str, expected: pd.Timestamp | None
) -> None:
    """Found in review: with --date-format, pandas' %S took 60 and 61 and rolled over."""
    instants, reasons = parse_instants(
        pd.Series([text], dtype="string"), pd.Series(["UTC"]), date_format
    )
    assert (None if pd.isna(instants.iloc[0]) else instants.iloc[0]) == expected
    assert pd.isna(reasons.iloc[0]) == (expected is not None)


@pytest.mark.parametrize(
    ("text", "zone", "reason"),
    [
        ("junk", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:00:00+08", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-02-30", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T24:00:00Z", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:29:60Z", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-22 23:59:61", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:60Z", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:00:00.Z", "UTC", Reason.BAD_TIMESTAMP),
        ("17/11/2026", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:00:00 UTC", "UTC", Reason.BAD_TIMESTAMP),
        ("+1794877200", "UTC", Reason.BAD_TIMESTAMP),
        ("1794877200.5", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-03-29T01:30:00", "Europe/London", Reason.LOCAL_TIME_GAP),
        ("2026-10-25T01:30:00", "Europe/London", Reason.LOCAL_TIME_GAP),
        ("2026-09-06", "America/Santiago", Reason.LOCAL_TIME_GAP),
    ],
    ids=[
        "junk",
        "offset_hours_only",
        "no_such_date",
        "hour_24",
        "second_60_found_in_audit",
        "second_61_naive",
        "minute_60",
        "hour_without_minutes",
        "empty_fraction",
        "day_first_date",
        "zone_name_suffix",
        "signed_number",
        "decimal_number",
        "london_spring_gap",
        "london_autumn_overlap",
        "date_only_midnight_missing_in_santiago",
    ],
)
def test_rejected_timestamps_have_a_reason(text: str, zone: str, reason: Reason) -> None:
    assert parse_one(text, zone) == (None, reason.value)


def test_typed_parquet_timestamps_with_zone_are_instants_and_without_are_local(
    data: Path,
) -> None:
    """Zoned typed sent_at is that instant; naive typed holiday `start` is the shop's local time."""
    aware = pa.array(
        [dt.datetime(2026, 11, 17, 2, tzinfo=UTC), dt.datetime(2026, 11, 17, 2, 30, tzinfo=UTC)],
        pa.timestamp("us", "UTC"),
    )
    write_parquet(
        data,
        "messages",
        pa.table(
            {
                "shop_id": ["S1", "S1"],
                "conversation_id": ["c1", "c1"],
                "message_id": ["m1", "m2"],
                "sender_role": ["buyer", "seller"],
                "sent_at": aware,
            }
        ),
    )
    write_parquet(
        data,
        "holiday_mode",
        pa.table(
            {
                "shop_id": ["S1"],
                "start": pa.array([dt.datetime(2026, 11, 17, 10, 10)], pa.timestamp("ms")),
                "end": pa.array([dt.datetime(2026, 11, 17, 10, 20)], pa.timestamp("ms")),
            }
        ),
    )
    write_csv(data, "shops", "shop_id,market\nS1,SG\n")
    doc = compute(data)
    s1 = shop(doc, "S1")
    # 02:00Z..02:30Z is 10:00..10:30 in Singapore; 10 minutes of Holiday Mode come off.
    assert s1["first_response_minutes_mean"] == 20.0
    assert doc["input"]["holiday_mode"]["rows_used"] == 1


def test_typed_parquet_naive_timestamp_in_a_dst_gap_is_a_bad_row(data: Path) -> None:
    write_parquet(
        data,
        "messages",
        pa.table(
            {
                "shop_id": ["L1", "L1"],
                "conversation_id": ["c1", "c1"],
                "message_id": ["m1", "m2"],
                "sender_role": ["buyer", "seller"],
                "sent_at": pa.array(
                    [dt.datetime(2026, 3, 29, 1, 30), dt.datetime(2026, 3, 29, 3, 0)],
                    pa.timestamp("us"),
                ),
            }
        ),
    )
    write_csv(data, "shops", "shop_id,market\nL1,GB\n")
    dataset, _ = run(data, start="2026-03-23", end="2026-03-29")
    assert dataset.counts["messages"].rows_quarantined == 1
    assert list(dataset.quarantine["messages"]["reason"]) == [Reason.LOCAL_TIME_GAP.value]


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


# Id codes and repeated ids: numeric ids take a faster path that must agree with the text one.


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
    assert duplicates.repeated_pairs(np.zeros(2, "int64"), np.array([-1, -1])).tolist() == [
        False,
        False,
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet="0123456789-:T .,+Zz\n٣", max_size=32),
            st.from_regex(timestamps._ISO, fullmatch=True),
        ),
        max_size=8,
    )
)
def test_iso_parts_by_arrow_match_python_regex(values):
    """Arrow's RE2 finds the parts of a timestamp exactly where Python's `re` does."""
    text = pd.Series(values, dtype="string")
    got = timestamps._iso_parts(text)
    want = text.str.extract(timestamps._ISO)
    assert got.astype(object).where(got.notna(), None).to_numpy().tolist() == (
        want.astype(object).where(want.notna(), None).to_numpy().tolist()
    )
