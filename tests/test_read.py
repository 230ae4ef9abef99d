"""Reading raw tables (SPEC 1): formats, required columns, BOM, bad lines, row numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from conftest import MESSAGES_HEADER, write_csv, write_jsonl, write_parquet
from cs_metrics.errors import InputError
from cs_metrics.read import ROW, read_folder, read_table, table_paths

ONE_MESSAGE = f"""
{MESSAGES_HEADER}
S1,c1,m1,buyer,2026-11-17T10:00:00Z
"""


@pytest.mark.parametrize(
    ("table", "first", "second"),
    [
        ("messages", "csv", "jsonl"),
        ("messages", "csv", "parquet"),
        ("ratings", "jsonl", "parquet"),
    ],
)
def test_two_formats_of_one_table_is_an_error_naming_both(
    data: Path, table: str, first: str, second: str
) -> None:
    write_csv(data, "messages", ONE_MESSAGE)
    for ext in (first, second):
        if not (data / f"{table}.{ext}").exists():
            (data / f"{table}.{ext}").write_text("")
    with pytest.raises(InputError) as err:
        table_paths(data)
    text = str(err.value)
    assert f"{table}.{first}" in text
    assert f"{table}.{second}" in text
    assert "\n" not in text


def test_missing_messages_table_is_an_error(data: Path) -> None:
    write_csv(data, "ratings", "shop_id,conversation_id,rating,rated_at\n")
    with pytest.raises(InputError, match="messages"):
        table_paths(data)


def test_missing_data_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        table_paths(tmp_path / "nope")


def test_only_messages_is_required(data: Path) -> None:
    write_csv(data, "messages", ONE_MESSAGE)
    assert set(read_folder(data)) == {"messages"}


@pytest.mark.parametrize(
    "header",
    [
        "shop_id,conversation_id,message_id,sender_role",
        "shop_id,conversation_id,message_id,sender_role,Sent_At",
        "SHOP_ID,conversation_id,message_id,sender_role,sent_at",
    ],
    ids=["sent_at_absent", "sent_at_wrong_case", "shop_id_upper_case"],
)
def test_missing_required_column_names_the_file_in_one_line(data: Path, header: str) -> None:
    path = write_csv(data, "messages", header + "\n")
    with pytest.raises(InputError) as err:
        read_table("messages", path)
    text = str(err.value)
    assert "messages.csv" in text
    assert "\n" not in text


def test_extra_columns_are_kept_out_and_ignored(data: Path) -> None:
    path = write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER},colour\nS1,c1,m1,buyer,2026-11-17T10:00:00Z,red\n",
    )
    frame = read_table("messages", path).frame
    assert frame.loc[0, "shop_id"] == "S1"
    assert len(frame) == 1


def test_csv_with_byte_order_mark_reads_the_first_column(data: Path) -> None:
    path = write_csv(data, "messages", ONE_MESSAGE, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    frame = read_table("messages", path).frame
    assert list(frame["shop_id"]) == ["S1"]


def test_blank_csv_lines_are_not_rows_and_rows_are_numbered_from_one(data: Path) -> None:
    path = write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,1794877200\n\nS1,c1,m2,seller,1794877260\n\n",
    )
    frame = read_table("messages", path).frame
    assert list(frame["message_id"]) == ["m1", "m2"]
    assert list(frame[ROW]) == [1, 2]


def test_csv_values_are_read_as_text_exactly(data: Path) -> None:
    """No number or NA inference: `007`, `NA` and `5.0` stay as written."""
    path = write_csv(data, "ratings", "shop_id,conversation_id,rating,rated_at\n007,NA,5.0,1\n")
    row = read_table("ratings", path).frame.iloc[0]
    assert (row["shop_id"], row["conversation_id"], row["rating"]) == ("007", "NA", "5.0")


def test_jsonl_blank_lines_are_not_rows(data: Path) -> None:
    path = data / "messages.jsonl"
    record = '{"shop_id":"S1","conversation_id":"c1","message_id":"m1",'
    record += '"sender_role":"buyer","sent_at":"2026-11-17T10:00:00Z"}'
    path.write_text(f"\n{record}\n   \n\n")
    assert len(read_table("messages", path).frame) == 1


def test_jsonl_numbers_stay_whole_text(data: Path) -> None:
    path = write_jsonl(
        data,
        "messages",
        [
            {
                "shop_id": 12,
                "conversation_id": "c1",
                "message_id": 3,
                "sender_role": "buyer",
                "sent_at": 1794877200000,
            }
        ],
    )
    row = read_table("messages", path).frame.iloc[0]
    assert (row["shop_id"], row["message_id"], row["sent_at"]) == ("12", "3", "1794877200000")


def test_parquet_timestamp_columns_stay_typed(data: Path) -> None:
    aware = pa.array([dt.datetime(2026, 11, 17, 10, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))
    naive = pa.array([dt.datetime(2026, 11, 17, 10)], pa.timestamp("ms"))
    table = pa.table(
        {
            "shop_id": ["S1"],
            "conversation_id": ["c1"],
            "message_id": ["m1"],
            "sender_role": ["buyer"],
            "sent_at": aware,
            "content": naive,
        }
    )
    frame = read_table("messages", write_parquet(data, "messages", table)).frame
    assert isinstance(frame["sent_at"].dtype, pd.DatetimeTZDtype)


def test_unreadable_parquet_is_an_input_error(data: Path) -> None:
    path = data / "messages.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"messages\.parquet"):
        read_table("messages", path)


def test_empty_csv_file_is_an_input_error(data: Path) -> None:
    path = data / "messages.csv"
    path.write_text("")
    with pytest.raises(InputError, match=r"messages\.csv"):
        read_table("messages", path)


def test_csv_with_crlf_line_endings_reads_clean_values(data: Path) -> None:
    path = data / "messages.csv"
    path.write_bytes((f"{MESSAGES_HEADER}\r\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\r\n").encode())
    frame = read_table("messages", path).frame
    assert frame.loc[0, "sent_at"].strip() == "2026-11-17T10:00:00Z"
    assert len(frame) == 1


def test_jsonl_with_byte_order_mark_reads_the_first_line(data: Path) -> None:
    path = data / "messages.jsonl"
    record = '{"shop_id":"S1","conversation_id":"c1","message_id":"m1",'
    record += '"sender_role":"buyer","sent_at":"2026-11-17T10:00:00Z"}'
    path.write_text(record + "\n", encoding="utf-8-sig")
    frame = read_table("messages", path).frame
    assert list(frame["shop_id"]) == ["S1"]
