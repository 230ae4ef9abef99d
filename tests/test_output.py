"""Rendering results (SPEC 7): JSON fields, CSV header, the people's table, quarantine files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MESSAGES_HEADER, run, write_csv
from cs_metrics import output

SPEC5_FIELDS = [
    "chats",
    "chats_assessed",
    "chats_excluded_holiday_mode",
    "chats_pending",
    "chats_responded_12h",
    "chats_responded_late",
    "chats_unresponded",
    "chats_responded",
    "response_rate_12h",
    "first_response_minutes_mean",
    "first_response_minutes_median",
    "first_response_minutes_p90",
    "ratings",
    "ratings_satisfied",
    "satisfaction_rate",
]
SHOP_FIELDS = ["shop_id", "timezone", "window_start", "window_end", *SPEC5_FIELDS]


def three_chats(data: Path) -> Path:
    """S1: two of three chats on time (rate 2/3, not rounded); one bad row."""
    write_csv(data, "shops", "shop_id,market\nS1,SG\n")
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00+08:00
        S1,c1,m2,seller,2026-11-17T10:10:00+08:00
        S1,c2,m3,buyer,2026-11-17T10:00:00+08:00
        S1,c2,m4,seller,2026-11-17T10:20:00+08:00
        S1,c3,m5,buyer,2026-11-17T10:00:00+08:00
        S1,c3,m6,seller,2026-11-18T10:00:00+08:00
        S1,c4,m7,seller,yesterday
        """,
    )
    return data


def document(data: Path, **kwargs) -> dict:
    dataset, evaluation = run(data, **kwargs)
    return output.result_document(dataset, evaluation)


def test_json_shop_objects_carry_exactly_the_spec_fields(data: Path) -> None:
    doc = json.loads(output.to_json(document(three_chats(data))))
    (s1,) = doc["shops"]
    assert set(s1) == set(SHOP_FIELDS)
    assert s1["window_start"] == "2026-11-16T00:00:00+08:00"
    assert s1["window_end"] == "2026-11-23T00:00:00+08:00"
    assert s1["response_rate_12h"] == 2 / 3
    assert s1["first_response_minutes_mean"] == (10 + 20 + 1440) / 3
    assert {"cutoff", "shops", "input"} <= set(doc)


def test_json_counts_are_integers_and_nulls_are_null(data: Path) -> None:
    doc = json.loads(output.to_json(document(three_chats(data))))
    (s1,) = doc["shops"]
    for name in SPEC5_FIELDS:
        if not name.endswith(("rate", "rate_12h")) and not name.startswith("first_"):
            assert type(s1[name]) is int, name
    assert s1["satisfaction_rate"] is None
    assert "NaN" not in output.to_json(doc)


def test_csv_header_is_the_spec_field_names(data: Path) -> None:
    doc = document(three_chats(data))
    rows = list(csv.reader(io.StringIO(output.to_csv(doc["shops"]))))
    assert rows[0] == SHOP_FIELDS
    assert len(rows) == 2
    assert rows[1][0] == "S1"


def test_csv_of_no_shops_still_has_the_header(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\n")
    doc = document(data)
    assert doc["shops"] == []
    rows = list(csv.reader(io.StringIO(output.to_csv(doc["shops"]))))
    assert rows[:1] == [SHOP_FIELDS]


def test_table_shows_percentages_and_an_input_line(data: Path) -> None:
    text = output.to_table(document(three_chats(data)))
    assert "66.7%" in text
    assert "0.6666" not in text
    input_lines = [line for line in text.splitlines() if line.startswith("Input:")]
    assert input_lines == [
        "Input: messages 7 read, 6 used, 1 quarantined, 0 duplicate; "
        "shops 1 read, 1 used, 0 quarantined, 0 duplicate"
    ]


def test_quarantine_writes_one_csv_per_table_with_reason_and_original_values(
    data: Path, tmp_path: Path
) -> None:
    three_chats(data)
    write_csv(data, "ratings", "shop_id,conversation_id,rating,rated_at\nS1,c1, 4.5 ,1\n")
    dataset, _ = run(data)
    out = tmp_path / "quarantine"
    written = output.write_quarantine(dataset, out)
    assert sorted(p.name for p in written) == ["messages.csv", "ratings.csv"]
    messages = pd.read_csv(out / "messages.csv", dtype=str, keep_default_na=False)
    assert {"row_number", "reason", "message", *MESSAGES_HEADER.split(",")} <= set(messages)
    assert messages.loc[0, "row_number"] == "7"
    assert messages.loc[0, "reason"] == "bad_timestamp"
    assert messages.loc[0, "sent_at"] == "yesterday"
    assert messages.loc[0, "message_id"] == "m7"
    ratings = pd.read_csv(out / "ratings.csv", dtype=str, keep_default_na=False)
    assert (ratings.loc[0, "reason"], ratings.loc[0, "rating"]) == ("bad_rating", " 4.5 ")


def test_drilldown_has_one_row_per_window_chat_with_local_times(data: Path) -> None:
    _, evaluation = run(three_chats(data))
    rows = output.chat_rows(evaluation.chats)
    assert list(rows["conversation_id"]) == ["c1", "c2", "c3"]
    assert list(rows["status"]) == ["on_time", "on_time", "late"]
    assert list(rows["received_at_local"]) == ["2026-11-17T10:00:00+08:00"] * 3
    assert list(rows["response_minutes"]) == [10.0, 20.0, 1440.0]
    text = output.chats_csv(rows)
    header = next(csv.reader(io.StringIO(text)))
    assert header == list(output.CHAT_COLUMNS)
    assert "2026-11-17T02:00:00+00:00" in text


def test_drilldown_parquet_round_trips(data: Path, tmp_path: Path) -> None:
    _, evaluation = run(three_chats(data))
    rows = output.chat_rows(evaluation.chats)
    path = tmp_path / "chats.parquet"
    path.write_bytes(output.chats_parquet(rows))
    back = pd.read_parquet(path)
    assert list(back["status"]) == list(rows["status"])
    assert list(back["conversation_id"]) == list(rows["conversation_id"])


# ISO-8601 text of instants: what Python's isoformat writes, for whole columns at once.


def test_iso_text_by_hand() -> None:
    instants = pd.Series(
        pd.to_datetime(
            [
                "2026-11-16T01:02:03.000450Z",  # a fraction, in a column that also has a gap
                None,
                "2026-03-29T01:30:00Z",  # London's first half hour of summer time
                "1969-12-31T23:59:59.5Z",  # before 1970: seconds round down, not toward zero
                "1890-01-01T00:00:00Z",  # Amsterdam's local mean time: +00:19:32
            ],
            format="ISO8601",
        ).as_unit("us")
    )
    assert output.iso_text(instants.dt.tz_convert("Europe/London")).tolist() == [
        "2026-11-16T01:02:03.000450+00:00",
        pd.NA,
        "2026-03-29T02:30:00+01:00",
        "1970-01-01T00:59:59.500000+01:00",
        "1890-01-01T00:00:00+00:00",
    ]
    amsterdam = output.iso_text(instants.dt.tz_convert("Europe/Amsterdam"))
    assert amsterdam.iloc[4] == "1890-01-01T00:19:32+00:19:32"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.none()
        | st.datetimes(dt.datetime(1850, 1, 1), dt.datetime(2100, 1, 1)).map(
            lambda d: d.replace(tzinfo=dt.UTC)
        ),
        max_size=8,
    ),
    st.sampled_from(
        ["UTC", "Asia/Singapore", "Europe/London", "America/Sao_Paulo", "Asia/Kolkata"]
    ),
)
def test_iso_text_is_isoformat(instants, zone) -> None:
    series = pd.Series(instants, dtype="datetime64[us, UTC]").dt.tz_convert(zone)
    expected = [pd.NA if pd.isna(t) else t.isoformat() for t in series]
    assert output.iso_text(series).tolist() == expected
