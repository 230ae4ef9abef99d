"""Reading raw tables (SPEC 1): formats, required columns, BOM, bad lines, row numbers."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import MESSAGES_HEADER, write_csv, write_jsonl, write_parquet
from cs_metrics import readers
from cs_metrics.errors import InputError
from cs_metrics.readers import (
    PARSE_ERROR,
    ROW,
    jsonl,
    map_blocks,
    parquet,
    read_folder,
    read_table,
    row_groups_up_to,
    table_paths,
)
from cs_metrics.readers import csv as csv_reader

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


def test_files_named_without_an_extension_are_no_tables(data: Path) -> None:
    """Found in audit: a file named `messages` was read as a CSV table."""
    (data / "messages").write_text(f"{MESSAGES_HEADER}\ns,c,m,buyer,2026-11-17T10:00:00Z\n")
    with pytest.raises(InputError, match="messages table not found"):
        table_paths(data)
    write_csv(data, "messages", ONE_MESSAGE)
    (data / "ratings").write_text("notes about the ratings export\n")
    assert table_paths(data) == {"messages": data / "messages.csv"}


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


def test_jsonl_numbers_keep_the_text_they_were_written_as(data: Path) -> None:
    """Found in audit: numbers went through Python's float and int, so `5e0` and
    `4.9999999999999999999` became the whole number 5.0, `-0` became 0, and a 5,000-digit
    number made a valid line "not valid JSON"."""
    path = data / "ratings.jsonl"
    texts = ["5e0", "4.9999999999999999999", "5.0", "-0", "1" + "0" * 5000, "5"]
    lines = [
        f'{{"shop_id":"S","conversation_id":"c","rating":{t},"rated_at":"x","n":[1,2.50]}}'
        for t in texts
    ]
    path.write_text("\n".join(lines) + "\n")
    frame = read_table("ratings", path).frame
    assert list(frame["rating"]) == texts
    assert frame[PARSE_ERROR].isna().all()


def test_jsonl_line_nested_too_deeply_is_a_bad_row_not_a_crash(data: Path) -> None:
    """Found in audit: Python's parser raised RecursionError (exit 1, internal error)."""
    path = data / "messages.jsonl"
    good = '{"shop_id":"S","conversation_id":"c","message_id":"m","sender_role":"buyer"'
    deep = "[" * 1000 + "]" * 1000
    path.write_text(f'{good},"sent_at":"t"}}\n{deep}\n{good},"sent_at":"t","x":{deep}}}\n')
    frame = read_table("messages", path).frame
    assert list(frame[PARSE_ERROR].notna()) == [False, True, True]
    assert "nested too deeply" in frame[PARSE_ERROR].iloc[1]


@pytest.mark.parametrize("depth", range(940, 1010, 3))
def test_jsonl_nested_values_near_the_limit_are_text_or_a_bad_row(depth: int, data: Path) -> None:
    """Found in review: a value json could read but not write back as text crashed the run."""
    path = data / "messages.jsonl"
    head = '{"shop_id":"S","conversation_id":"c","sender_role":"buyer","sent_at":"t"'
    nested = "[" * depth + "1" + "]" * depth
    path.write_text(f'{head},"message_id":{nested}}}\n{head},"message_id":"m","x":"\\ud800"}}\n')
    frame = read_table("messages", path).frame
    first = frame.iloc[0]
    assert pd.isna(first[PARSE_ERROR]) or "nested too deeply" in first[PARSE_ERROR]
    assert pd.isna(first[PARSE_ERROR]) == (
        first["message_id"] is not pd.NA and first["message_id"] == nested
    )
    assert "not Unicode" in frame[PARSE_ERROR].iloc[1]


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


# Row groups after the cut-off (compute --skip-after-cutoff): proven by the files' statistics.


def _day_file(path: Path, day: int, rows: int = 2, kind: str = "aware") -> None:
    """A messages file whose rows were all sent on 2026-11-`day` at 10:00."""
    at = dt.datetime(2026, 11, day, 10)
    values = {
        "aware": pa.array([at.replace(tzinfo=dt.UTC)] * rows, pa.timestamp("us", tz="UTC")),
        "naive": pa.array([at] * rows, pa.timestamp("us")),
        "text": pa.array([at.isoformat() + "Z"] * rows),
    }[kind]
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "shop_id": ["s"] * rows,
            "conversation_id": [f"c{day}"] * rows,
            "message_id": [f"m{day}-{i}" for i in range(rows)],
            "sender_role": ["buyer"] * rows,
            "sent_at": values,
        }
    )
    pq.write_table(table, path, row_group_size=1)


def _days(folder: Path, days: list[int], kind: str = "aware") -> Path:
    for day in days:
        _day_file(folder / f"date=2026-11-{day}" / "part-0.parquet", day, kind=kind)
    return folder


def test_row_groups_after_the_cutoff_at_the_end_are_left_out(tmp_path: Path) -> None:
    folder = _days(tmp_path / "messages", [16, 17, 18])
    groups = row_groups_up_to(folder, pd.Timestamp("2026-11-17T12:00Z"))
    assert (groups.skipped_groups, groups.skipped_rows) == (2, 2)
    kept = [p.parent.name for p in groups.keep]
    assert kept == ["date=2026-11-16", "date=2026-11-17"]
    frame = read_table("messages", folder).frame  # everything, for comparison
    read = map_blocks("messages", folder, lambda block: block, (), groups)[0]
    assert read["message_id"].tolist() == frame["message_id"].tolist()[:4]
    assert read[ROW].tolist() == [1, 2, 3, 4]


def test_only_a_suffix_of_the_read_order_is_left_out(tmp_path: Path) -> None:
    """A file after the cut-off followed by one before it: both read (file order decides the
    first of repeated message ids, so nothing before a kept row may be skipped)."""
    folder = _days(tmp_path / "messages", [16, 20])
    _day_file(folder / "date=2026-11-21" / "part-0.parquet", 15)
    groups = row_groups_up_to(folder, pd.Timestamp("2026-11-17T00:00Z"))
    assert (groups.skipped_groups, groups.skipped_rows) == (0, 0)


def test_naive_times_are_left_out_only_when_no_zone_could_put_them_before(tmp_path: Path) -> None:
    """Naive 2026-11-18 10:00 is taken at 2026-11-17 18:00 UTC: no zone is 16 hours ahead."""
    folder = _days(tmp_path / "messages", [16, 18], kind="naive")
    assert row_groups_up_to(folder, pd.Timestamp("2026-11-17T18:00Z")).skipped_rows == 0
    assert row_groups_up_to(folder, pd.Timestamp("2026-11-17T17:59Z")).skipped_rows == 2


def test_naive_times_allow_for_old_local_mean_time(tmp_path: Path) -> None:
    """Metlakatla was 15:13:42 ahead of UTC before 1867: 1860-01-01 00:00 there is 1859-12-31
    08:46:18 UTC, before a cut-off at 09:00, so its row group must be read."""
    path = tmp_path / "messages.parquet"
    pq.write_table(
        pa.table({"sent_at": pa.array([dt.datetime(1860, 1, 1)], pa.timestamp("us"))}), path
    )
    local = pd.Timestamp("1860-01-01").tz_localize("America/Metlakatla").tz_convert("UTC")
    assert local < pd.Timestamp("1859-12-31T09:00Z")
    assert row_groups_up_to(path, pd.Timestamp("1859-12-31T09:00Z")).skipped_rows == 0


def test_text_times_prove_nothing(tmp_path: Path) -> None:
    path = tmp_path / "messages.parquet"
    _day_file(path, 18, kind="text")
    assert row_groups_up_to(path, pd.Timestamp("2026-11-01T00:00Z")).skipped_rows == 0


def test_a_single_file_keeps_its_leading_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "messages.parquet"
    table = pa.concat_tables(
        [pq.read_table(p) for p in sorted(_days(tmp_path / "d", [16, 17, 18]).rglob("*.parquet"))]
    )
    pq.write_table(table, path, row_group_size=2)
    groups = row_groups_up_to(path, pd.Timestamp("2026-11-16T23:00Z"))
    assert groups.keep == {path: [0]} and groups.skipped_rows == 4
    read = map_blocks("messages", path, lambda block: block, (), groups)[0]
    assert read["message_id"].tolist() == ["m16-0", "m16-1"]


def ten_messages(data: Path) -> Path:
    rows = "\n".join(f"S1,c{i},m{i},buyer,2026-11-17T10:00:0{i}Z" for i in range(10))
    return write_csv(data, "messages", f"{MESSAGES_HEADER}\n{rows}\n")


def ten_parquet_messages(data: Path) -> Path:
    frame = pd.read_csv(ten_messages(data), dtype=str)
    (data / "messages.csv").unlink()
    frame.to_parquet(data / "messages.parquet")
    return data / "messages.parquet"


def test_blocks_checked_on_threads_come_back_in_file_order(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Later blocks finish first here; the results still follow the file, rows numbered 1..10."""
    monkeypatch.setattr(parquet, "PARQUET_BLOCK_ROWS", 3)
    path = ten_parquet_messages(data)

    def slow_first(block: pd.DataFrame) -> list[int]:
        time.sleep(0.05 * (4 - (int(block[ROW].iloc[0]) - 1) // 3))
        return list(block[ROW])

    blocks = map_blocks("messages", path, slow_first, threads=2)
    assert blocks == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]


def test_a_failing_block_on_a_thread_fails_the_read(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "PARQUET_BLOCK_ROWS", 3)
    path = ten_parquet_messages(data)

    def fails_on_the_second(block: pd.DataFrame) -> int:
        if block[ROW].iloc[0] == 4:
            raise InputError("second block")
        return len(block)

    with pytest.raises(InputError, match="second block"):
        map_blocks("messages", path, fails_on_the_second, threads=2)


def test_parquet_is_read_in_blocks(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet, "PARQUET_BLOCK_ROWS", 4)
    frame = pd.read_csv(ten_messages(data), dtype=str)
    (data / "messages.csv").unlink()
    frame.to_parquet(data / "messages.parquet", row_group_size=5)
    path = data / "messages.parquet"
    blocks = map_blocks("messages", path, lambda block: list(block[ROW]), threads=2)
    assert len(blocks) >= 3
    assert all(len(rows) <= 4 for rows in blocks)
    assert [row for rows in blocks for row in rows] == list(range(1, 11))
    assert list(read_table("messages", path).frame["message_id"]) == [f"m{i}" for i in range(10)]


def test_an_empty_parquet_file_is_one_empty_block(data: Path) -> None:
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in MESSAGES_HEADER.split(",")})
    frame.to_parquet(data / "messages.parquet")
    table = read_table("messages", data / "messages.parquet")
    assert len(table.frame) == 0
    assert set(MESSAGES_HEADER.split(",")) <= set(table.frame.columns)


M = '"shop_id":"s","conversation_id":"c1","sender_role":"buyer","sent_at":"2026-11-17T10:00:00Z"'
JSONL_CASES = {
    "clean": f'{{{M},"message_id":"m1"}}\n{{{M},"message_id":"m2","content":"hi"}}\n',
    "no newline at the end": f'{{{M},"message_id":"m1"}}',
    "blank and white space lines": f'\n  \n{{{M},"message_id":"m1"}}\n\t\n',
    "white space around an object": f'  {{{M},"message_id":"m1"}} \n',
    "crlf": f'{{{M},"message_id":"m1"}}\r\n{{{M},"message_id":"m2"}}\r\n',
    "bare cr": f'{{{M},"message_id":"m1"}}\r{{{M},"message_id":"m2"}}\r',
    "bare cr after the first block": f'{{{M},"message_id":"m0"}}\n' * 3
    + f'{{{M},"message_id":"m1"}}\r{{{M},"message_id":"m2"}}\n',
    "byte order mark": f'\ufeff{{{M},"message_id":"m1"}}\n',
    "two objects on one line": f'{{{M},"message_id":"m1"}}{{{M},"message_id":"m2"}}\n',
    "one object over two lines": f'{{{M},\n"message_id":"m1"}}\n',
    "a number": f'{{{M},"message_id":1794877200}}\n',
    "a number written with an exponent": f'{{{M},"message_id":17948772e2}}\n',
    "half a surrogate pair in a wanted value": f'{{{M},"message_id":"m\\ud800"}}\n',
    "half a surrogate pair in another value": f'{{{M},"message_id":"m","x":"\\udc00"}}\n',
    "a whole surrogate pair": f'{{{M},"message_id":"m\\ud83d\\ude00"}}\n',
    "a float and a bool": f'{{{M},"message_id":1e5,"content":true}}\n',
    "nested values": f'{{{M},"message_id":"m1","content":{{"x":[1,2]}}}}\n',
    "null and empty text": f'{{{M},"message_id":null,"content":""}}\n',
    "NaN in an ignored key": f'{{{M},"message_id":"m1","extra":NaN}}\n',
    "Infinity in a value": f'{{{M},"message_id":"m1","content":-Infinity}}\n',
    "the text NaN": f'{{{M},"message_id":"NaN"}}\n',
    "a repeated key": f'{{{M},"message_id":"m1","message_id":"m2"}}\n',
    "escapes": f'{{{M},"message_id":"m\\u00e9\\n\\"q\\"","content":"a\\/b \\ud83d\\ude00"}}\n',
    "a lone surrogate": f'{{{M},"message_id":"m1","content":"\\ud800"}}\n',
    "not an object": f'[1,2]\n"x"\n{{{M},"message_id":"m1"}}\n',
    "not JSON": f'{{{M},"message_id":"m1",}}\n{{oops\n',
    "a required key never written": '{"conversation_id":"c1","message_id":"m1"}\n',
    "a required key always null": f'{{{M},"message_id":null}}\n',
    "an escaped key": f'{{{M},"\\u006dessage_id":"m1"}}\n',
    "form feed lines": f'\x0c\n{{{M},"message_id":"m1"}}\x0c\n',
    "other fields of any kind": f'{{{M},"message_id":"m1","n":1E5,"o":{{}},"l":[],"z":-0}}\n',
}


def jsonl_table(path: Path) -> tuple[pd.DataFrame | None, str | None]:
    """The table read from a JSON Lines file, or the one-line error."""
    try:
        return read_table("messages", path).frame, None
    except InputError as exc:
        return None, str(exc)


@pytest.mark.parametrize("case", JSONL_CASES)
def test_json_lines_blocks_arrow_reads_match_the_line_reader(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow parses a block only where it gives exactly what the line-by-line reader gives."""
    path = tmp_path / "messages.jsonl"
    path.write_bytes(JSONL_CASES[case].encode("utf-8", "surrogatepass"))
    monkeypatch.setattr(jsonl, "JSONL_BLOCK_BYTES", 64)  # several blocks for the longer cases
    fast = jsonl_table(path)
    monkeypatch.setattr(jsonl, "_arrow_objects", lambda block, wanted: None)
    slow = jsonl_table(path)
    assert fast[1] == slow[1]
    if slow[0] is not None:
        pd.testing.assert_frame_equal(fast[0], slow[0])


def test_json_lines_of_text_objects_are_parsed_by_arrow(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data / "messages.jsonl"
    path.write_text(JSONL_CASES["clean"] * 3)
    taken: list[int] = []
    parse = jsonl._arrow_objects

    def counted(block: jsonl.ByteLines, wanted: tuple[str, ...]) -> pa.Table | None:
        table = parse(block, wanted)
        taken.append(0 if table is None else table.num_rows)
        return table

    monkeypatch.setattr(jsonl, "_arrow_objects", counted)
    frame = read_table("messages", path).frame
    assert taken == [6]
    assert list(frame["message_id"]) == ["m1", "m2"] * 3
    assert list(frame["content"].fillna("-")) == ["-", "hi"] * 3
    assert list(frame[ROW]) == list(range(1, 7))


def test_invalid_utf8_in_json_lines_is_an_input_error(data: Path) -> None:
    path = data / "messages.jsonl"
    path.write_bytes(f'{{{M},"message_id":"m\xff"}}\n'.encode("latin-1"))
    with pytest.raises(InputError, match="unreadable file"):
        read_table("messages", path)


@pytest.mark.parametrize("block", [1, 2, 3, 59, 60, 61, 119, 120, 121])
def test_json_lines_blocks_lose_no_line_wherever_a_block_ends(
    block: int, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: a block ending right after a newline ended the file there."""
    line = f'{{{M},"message_id":"m"}}'.ljust(59) + "\n"  # 60 bytes
    path = data / "messages.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (line * 4).encode() + b'{"x":"last, no newline"}')
    monkeypatch.setattr(jsonl, "JSONL_BLOCK_BYTES", block)
    frame = read_table("messages", path).frame
    assert list(frame[ROW]) == [1, 2, 3, 4, 5]
    assert list(frame["shop_id"].fillna("-")) == ["s"] * 4 + ["-"]


CSV_HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at"
CSV_CASES = {
    "plain": "s,c1,m1,buyer,2026-11-17T10:00:00Z\n",
    "byte order mark": "\ufeffshop_id,conversation_id,message_id,sender_role,sent_at\ns,c,m,b,t\n",
    "crlf": "s,c,m,b,t\r\ns,c,m2,b,t\r\n",
    "bare cr": "s,c,m,b,t\rs,c,m2,b,t\r",
    "quotes": 's,"c,1","m""1",b,t\n',
    "a quote inside a value": 's,ab"c,m,b,t\n',
    "text after a closing quote": 's,"ab"c,m,b,t\n',
    "a newline in quotes": 's,"c\n1",m,b,t\n',
    "blank lines": "\ns,c,m,b,t\n\n\ns,c,m2,b,t\n",
    "a line of spaces": "   \ns,c,m,b,t\n",
    "a short row": "s,c,m\n",
    "a long row": "s,c,m,b,t,x\n",
    "a long first row": "s,c,m,b,t,x\ns,c,m2,b,t\n",
    "empty values": ",,,,\n",
    "spaces around values": " s , c ,m,b,t\n",
    "numbers and NA words": "007,1e5,NA,null,NaN\n",
    "no newline at the end": "s,c,m,b,t",
    "a quote never closed": 's,"c,m,b,t\n',
    "unicode": "é,ü,m,b,t\n",
    "only the header": "",
    "a blank line of a bare cr before an empty value": "\r,,,,;\n",
    "the same, with a short row (read by pandas)": "s,c,m,b,t\n\r,c,m,b,t\ns,c\n",
}


def same_text(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    """The same values (pandas' reader gives text with NaN for missing, Arrow's with NA)."""
    text = [c for c in slow.columns if c != ROW]
    pd.testing.assert_frame_equal(
        fast.astype(dict.fromkeys(text, "string")), slow.astype(dict.fromkeys(text, "string"))
    )


@pytest.mark.parametrize("case", CSV_CASES)
def test_csv_arrow_reads_match_pandas_reads(
    case: str, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow's CSV reader gives pandas' values, or gives the file to pandas."""
    text = CSV_CASES[case]
    body = text if text.startswith("\ufeff") else f"{CSV_HEADER}\n{text}"
    path = data / "messages.csv"
    path.write_bytes(body.encode())
    fast = jsonl_table(path)
    monkeypatch.setattr(csv_reader, "CSV_READERS", ("pandas", "tolerant"))
    slow = jsonl_table(path)
    assert fast[1] == slow[1]
    if slow[0] is not None:
        same_text(fast[0], slow[0])


@pytest.mark.parametrize("case", CSV_CASES)
def test_csv_tolerant_reads_match_pandas_reads(
    case: str, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tolerant reader (Python's csv) gives pandas' values wherever pandas' reader reads."""
    text = CSV_CASES[case]
    path = data / "messages.csv"
    path.write_bytes((text if text.startswith("\ufeff") else f"{CSV_HEADER}\n{text}").encode())
    try:
        list(csv_reader.csv_blocks(path, readers.TABLES["messages"], "pandas"))
    except (csv_reader.NextReader, InputError, ValueError):
        return  # pandas' reader refuses the file: nothing to compare with
    monkeypatch.setattr(csv_reader, "CSV_READERS", ("pandas",))
    reference = jsonl_table(path)
    monkeypatch.setattr(csv_reader, "CSV_READERS", ("tolerant",))
    tolerant = jsonl_table(path)
    assert tolerant[1] == reference[1]
    if reference[0] is not None:
        same_text(tolerant[0], reference[0])


@pytest.mark.parametrize("lines", ["A\n   \n\nB\n", "A\r   \rB", "A\n\t\nB\nC,x\n"])
def test_csv_of_one_column_skips_lines_of_white_space(lines: str, data: Path) -> None:
    """Found in audit: Arrow read a line of spaces in a one-column file as a row."""
    path = data / "shops.csv"
    path.write_text(f"shop_id\n{lines}")
    frame = read_table("shops", path).frame
    assert list(frame["shop_id"]) == ["A", "B", "C"][: 2 + lines.endswith("C,x\n")]


@pytest.mark.parametrize(
    "row",
    [
        's,"c1" ,m1,buyer,t',
        's,"c1"x,m1,buyer,t',
        f"s,c1,m1,buyer,t,{'x' * 131_073}",
        "s,c1,m1,buyer,t,x" + "," * 20_000,
    ],
    ids=[
        "space_after_closing_quote",
        "text_after_closing_quote",
        "field_over_128_kB",
        "thousands_of_stray_separators",  # in review: a column per field, for every row
    ],
)
def test_csv_tolerant_reader_loses_no_row(row: str, data: Path) -> None:
    """Found in audit: with a long row sending the file to the tolerant reader, pandas' Python
    reader dropped a row with text after a closing quote, and stopped at a 128 kB field."""
    path = data / "messages.csv"
    path.write_text(f"{CSV_HEADER},content\ns,c0,m0,buyer,t,x\n{row}\ns,c2,m2,seller,t,x,extra\n")
    frame = read_table("messages", path).frame
    assert list(frame["message_id"]) == ["m0", "m1", "m2"]
    assert frame["conversation_id"].iloc[1] in {"c1 ", "c1x", "c1"}
    assert list(frame[PARSE_ERROR].notna()) == [False, row.count(",") > 5, True]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab,";\n\r é\t', max_size=60))
@example("\r,,,,;")  # found in CI: pandas' C reader dropped the first, empty value
def test_csv_arrow_reads_match_pandas_reads_on_any_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messages.csv"
        path.write_bytes(f"{CSV_HEADER}\n{text}".encode())
        fast = jsonl_table(path)
        readers = csv_reader.CSV_READERS
        csv_reader.CSV_READERS = ("pandas", "tolerant")
        try:
            slow = jsonl_table(path)
        finally:
            csv_reader.CSV_READERS = readers
    assert fast[1] == slow[1]
    if slow[0] is not None:
        same_text(fast[0], slow[0])


@pytest.mark.parametrize("scan_bytes", [1, 2, 3, 1 << 20])
@pytest.mark.parametrize("spaces", ["", " ", " \t  "])
@pytest.mark.parametrize("short_row", ["", "s,c\n"])
@pytest.mark.parametrize("ending", ["\n", "\r", "\r\n"])
def test_csv_blank_bare_cr_line_keeps_the_next_rows_empty_first_value(
    short_row: str,
    ending: str,
    spaces: str,
    scan_bytes: int,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found in CI: after a blank line ended by a bare CR, pandas' C reader dropped the empty
    first value of the next row, shifting its values one column left (in review: also when
    the blank line holds spaces or tabs)."""
    monkeypatch.setattr(csv_reader, "SCAN_BYTES", scan_bytes)
    path = data / "messages.csv"
    path.write_bytes(f"{CSV_HEADER}{ending}{spaces}\r,c2,m2,buyer,t\n{short_row}".encode())
    frame = read_table("messages", path).frame
    assert frame.loc[0, "shop_id"] == ""
    assert frame.loc[0, "conversation_id"] == "c2"
    assert frame.loc[0, "sent_at"] == "t"
    assert len(frame) == (2 if short_row else 1)


def test_parquet_integer_ids_are_their_exact_digits_in_every_block(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: a gap in an integer column rounded 19-digit ids (through float), and
    only in the blocks that had a gap, so one conversation became two."""
    monkeypatch.setattr(parquet, "PARQUET_BLOCK_ROWS", 2)
    ids = [7437000000000006208, 7437000000000006208, 7437000000000006209, None]
    table = pa.table(
        {
            "shop_id": ["s"] * 4,
            "conversation_id": pa.array(ids, pa.int64()),
            "message_id": pa.array([1, 2, 3, 2**64 - 1], pa.uint64()),
            "sender_role": ["buyer", "seller", "buyer", "buyer"],
            "sent_at": ["2026-11-17T10:00:00Z"] * 4,
        }
    )
    write_parquet(data, "messages", table)
    frame = read_table("messages", data / "messages.parquet").frame
    assert list(frame["conversation_id"].fillna("-")) == [
        "7437000000000006208",
        "7437000000000006208",
        "7437000000000006209",
        "-",
    ]
    assert list(frame["message_id"]) == ["1", "2", "3", "18446744073709551615"]


def test_a_csv_for_pandas_reader_is_checked_on_the_reading_thread(data: Path) -> None:
    """pandas' reader sets process-wide warning filters while it reads: no other thread runs."""
    path = write_csv(data, "messages", f"{CSV_HEADER}\ns,c,m\ns,c,m2,buyer,t\n")  # a short row
    threads = map_blocks("messages", path, lambda block: threading.current_thread().name, threads=2)
    assert threads == [threading.main_thread().name]
    assert not [f for f in warnings.filters if f[0] == "error"]
