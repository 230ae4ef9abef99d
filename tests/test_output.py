"""Rendering results (SPEC 7): JSON fields, CSV header, the people's table, quarantine files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MESSAGES_HEADER, run, write_csv
from cs_metrics import files, output

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


def test_quarantined_value_with_a_bare_cr_reads_back_whole(data: Path, tmp_path: Path) -> None:
    """pandas' writer left a CR inside a value bare, and readers ended the row there."""
    path = data / "messages.csv"
    path.write_bytes(f'{MESSAGES_HEADER}\nS1,c1,m1,"sel\rler",2026-11-17T10:00:00Z\n'.encode())
    dataset, _ = run(data)
    output.write_quarantine(dataset, tmp_path)
    back = pd.read_csv(tmp_path / "messages.csv", dtype=str, keep_default_na=False)
    assert list(back["sender_role"]) == ["sel\rler"]
    assert list(back["reason"]) == ["unknown_role"]


def test_drilldown_has_one_row_per_window_chat_with_local_times(data: Path) -> None:
    _, evaluation = run(three_chats(data))
    rows = output.chat_rows(evaluation.chats)
    assert list(rows["conversation_id"]) == ["c1", "c2", "c3"]
    assert list(rows["status"]) == ["on_time", "on_time", "late"]
    assert list(rows["received_at_local"]) == ["2026-11-17T10:00:00+08:00"] * 3
    assert list(rows["response_minutes"]) == [10.0, 20.0, 1440.0]
    text = output.chats_csv(rows).decode("utf-8")
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
    assert files.iso_text(instants.dt.tz_convert("Europe/London")).tolist() == [
        "2026-11-16T01:02:03.000450+00:00",
        pd.NA,
        "2026-03-29T02:30:00+01:00",
        "1970-01-01T00:59:59.500000+01:00",
        "1890-01-01T00:00:00+00:00",
    ]
    amsterdam = files.iso_text(instants.dt.tz_convert("Europe/Amsterdam"))
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
    assert files.iso_text(series).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.none()
        | st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)).map(
            lambda d: d.replace(microsecond=0, tzinfo=dt.UTC)
        ),
        max_size=8,
    ),
    st.sampled_from(["UTC", "Asia/Singapore", "Europe/Amsterdam", "America/Sao_Paulo"]),
)
def test_iso_text_of_whole_seconds_is_isoformat(instants, zone) -> None:
    """Whole seconds, from year 1 to 9999: laid out byte by byte where every value has one
    width, else (an offset in seconds, as Amsterdam's before 1937) by Arrow's text kernels."""
    series = pd.Series(instants, dtype="datetime64[us, UTC]").dt.tz_convert(zone)
    expected = [pd.NA if pd.isna(t) else t.isoformat() for t in series]
    assert files.iso_text(series).tolist() == expected


# CSV files are written by Arrow where it can: the same bytes as pandas' to_csv.


def pandas_csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


TEXT = st.none() | st.text(alphabet=st.sampled_from(list('ab ,"\r\n\té😀')), max_size=6)
FLOAT = (
    st.none()
    | st.floats(allow_nan=True, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 12.0, 1e-05, 1e16, 1e15, 0.1 + 0.2, 1 / 60])
)
COLUMNS = {
    "string": (TEXT, lambda v: pd.array(v, dtype="string")),
    "object": (TEXT, lambda v: pd.array(v, dtype=object)),
    "category": (TEXT, lambda v: pd.Categorical(v)),
    "float": (FLOAT, lambda v: np.array([np.nan if x is None else x for x in v], dtype=float)),
    "int": (st.integers(-(2**63), 2**63 - 1), lambda v: np.array(v, dtype=np.int64)),
    "bool": (st.booleans(), lambda v: np.array(v, dtype=bool)),
    "Int8": (st.none() | st.integers(-128, 127), lambda v: pd.array(v, dtype="Int8")),
    "boolean": (st.none() | st.booleans(), lambda v: pd.array(v, dtype="boolean")),
}
LEFT_TO_PANDAS = {
    "float32": (
        st.none() | st.floats(width=32, allow_infinity=False),
        lambda v: np.array([np.nan if x is None else x for x in v], "float32"),
    ),
    "int categories": (st.integers(0, 3), lambda v: pd.Categorical(v)),
    "mixed objects": (TEXT | st.integers(0, 9), lambda v: pd.array(v, dtype=object)),
}
"""Columns written by pandas (only where no value holds a bare CR: pandas leaves it bare)."""
KINDS = {**COLUMNS, **LEFT_TO_PANDAS}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=4),
    st.integers(0, 6),
    st.data(),
)
def test_csv_bytes_are_pandas_to_csv(kinds: list[str], rows: int, data) -> None:
    """The same bytes, except that a value with a bare CR is quoted: pandas leaves it bare (its
    line end is LF), and a reader then ends the row there (a fix)."""
    drawn = []
    for i, kind in enumerate(kinds):
        name = data.draw(st.sampled_from([f"c{i}", f'c,"{i}', f"c {i}", f"c\r{i}"]))
        drawn.append(
            (name, kind, data.draw(st.lists(KINDS[kind][0], min_size=rows, max_size=rows)))
        )

    def frame(cr: str) -> pd.DataFrame:
        def text(v: object) -> object:
            return v.replace("\r", cr) if isinstance(v, str) else v

        return pd.DataFrame(
            {text(n): KINDS[k][1]([text(v) for v in values]) for n, k, values in drawn}
        )

    assert files.csv_bytes(frame("§"), raw=True) == pandas_csv(frame("§"))
    if any(k in LEFT_TO_PANDAS for k in kinds):
        return
    written = list(
        csv.reader(io.StringIO(files.csv_bytes(frame("\r"), raw=True).decode(), newline=""))
    )
    expected = csv.reader(io.StringIO(pandas_csv(frame("§")).decode(), newline=""))
    assert written == [[cell.replace("§", "\r") for cell in row] for row in expected]


def test_csv_bytes_by_arrow_in_blocks(monkeypatch) -> None:
    frame = pd.DataFrame({"a": ["x", "y,z", None, "w"], "b": [1.5, np.nan, -0.0, 2.0]})
    monkeypatch.setattr(files, "CSV_BLOCK_ROWS", 3)
    pieces = list(files.csv_pieces(frame))
    assert pieces == [b"a,b\n", b'x,1.5\n"y,z",\n,-0.0\n', b"w,2.0\n"]  # header, 3 rows, 1 row
    assert b"".join(pieces) == pandas_csv(frame)
    written = io.BytesIO()
    files.csv_writer(frame)(written)
    assert written.getvalue() == files.csv_bytes(frame) == pandas_csv(frame)


def test_a_column_arrow_cannot_write_in_any_block_leaves_the_whole_file_to_pandas(
    monkeypatch,
) -> None:
    """Text in the first block and a number in the second: the column is pandas' throughout,
    so the blocks cannot be written two ways."""
    frame = pd.DataFrame({"a": ["x", "=1+1", 7, "y"], "b": ["p", "q", "r", "s"]})
    monkeypatch.setattr(files, "CSV_BLOCK_ROWS", 2)
    assert len(list(files.csv_pieces(frame))) == 1
    assert files.csv_bytes(frame, raw=True) == pandas_csv(frame)
    assert files.csv_bytes(frame) == b"a,b\nx,p\n'=1+1,q\n7,r\ny,s\n"


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        pd.DataFrame({"": ["x"]}),
        pd.DataFrame({None: ["x"], "b": ["y"]}),
        pd.DataFrame({"a": [b"x"], "b": ["y"]}),
        pd.DataFrame({"a": np.array([0.1], "float32"), "b": ["y"]}),
    ],
    ids=["repeated_names", "one_empty_name", "name_none", "bytes", "float32"],
)
def test_csv_bytes_of_odd_frames_are_pandas_to_csv(frame: pd.DataFrame) -> None:
    """Found in review: these took Arrow's path and were written otherwise, or failed."""
    assert files.csv_bytes(frame) == pandas_csv(frame)


def test_csv_bytes_leave_other_columns_to_pandas() -> None:
    frame = pd.DataFrame({"a": ["x", 1], "b": pd.array([1, None], dtype="Int64")})
    assert not files._arrow_writes(frame)
    assert files.csv_bytes(frame) == b"a,b\nx,1\n1,\n"


_CHAT_ROW = st.tuples(
    st.sampled_from(["s2", "s1", "S", "é", "s10"]),
    st.sampled_from(["10", "9", "c", "ä"]),
    st.integers(0, 3),
    st.none() | st.integers(0, 5),
    st.sampled_from(["Asia/Singapore", "Asia/Bangkok", "UTC"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_CHAT_ROW, max_size=14))
def test_chat_rows_are_in_the_order_of_a_stable_pandas_sort(rows):
    """Arrow's sort against `sort_values(kind="stable")` on shop, received instant and
    conversation: ties keep their order, text goes by code point."""
    base = pd.Timestamp("2026-11-16T01:00:00Z")
    received = pd.Series(
        [base + pd.Timedelta(hours=r[2]) for r in rows], dtype="datetime64[us, UTC]"
    )
    answered = [None if r[3] is None else base + pd.Timedelta(hours=r[2] + r[3]) for r in rows]
    chats = pd.DataFrame(
        {
            "shop_id": pd.Series([r[0] for r in rows], dtype="string"),
            "conversation_id": pd.Series([r[1] for r in rows], dtype="string"),
            "first_message_id": pd.Series([str(i) for i in range(len(rows))], dtype="string"),
            "buyer_id": pd.Series(["b"] * len(rows), dtype="string"),
            "buyer_messages": np.ones(len(rows), dtype="int64"),
            "received_at": received,
            "responded_at": pd.Series(answered, dtype="datetime64[us, UTC]"),
            "responder_role": pd.Series(["seller"] * len(rows), dtype="string"),
            "responder_id": pd.Series(["x"] * len(rows), dtype="string"),
            "response_message_id": pd.Series(["m"] * len(rows), dtype="string"),
            "response_minutes": np.zeros(len(rows)),
            "deadline_at": received + pd.Timedelta(hours=12),
            "status": pd.Categorical(["on_time"] * len(rows)),
            "timezone": pd.Series([r[4] for r in rows], dtype="string"),
        }
    )
    expected = chats.sort_values(["shop_id", "received_at", "conversation_id"], kind="stable")
    out = output.chat_rows(chats)
    assert out["first_message_id"].tolist() == expected["first_message_id"].tolist()
    assert out.index.equals(pd.RangeIndex(len(rows)))
    local = [
        None if pd.isna(t) else t.tz_convert(z).isoformat()
        for t, z in zip(expected["responded_at"], expected["timezone"], strict=True)
    ]
    assert (
        out["responded_at_local"]
        .astype(object)
        .where(out["responded_at_local"].notna(), None)
        .tolist()
        == local
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | st.integers(0, 10**7),
            st.none()
            | st.sampled_from(
                [
                    "Asia/Ho_Chi_Minh",
                    "America/New_York",
                    "UTC",
                    "Asia/Kathmandu",
                    "Europe/Amsterdam",
                ]
            ),
        ),
        max_size=12,
    ),
    st.sampled_from(["2026-03-08T00:00:00Z", "1890-01-01T00:00:00Z"]),
    st.sampled_from([0, 0, 250_000]),
)
def test_local_instants_are_each_rows_isoformat_in_its_zone(rows, start, micros):
    """Each zone's rows converted together, the text made once for every row: the same text
    as each instant's own `isoformat` in its zone (whole seconds or not, offsets in seconds
    as Amsterdam's of 1890 or not); no instant or no zone stays missing."""
    base = pd.Timestamp(start) + pd.Timedelta(microseconds=micros)
    instants = pd.Series(
        [None if r[0] is None else base + pd.Timedelta(seconds=r[0]) for r in rows],
        dtype="datetime64[us, UTC]",
        index=pd.RangeIndex(5, 5 + len(rows)),
    )
    zones = pd.Series([r[1] for r in rows], dtype="string", index=instants.index)
    out = files.iso_local(instants, zones)
    expected = [
        None
        if t is None or z is None
        else (base + pd.Timedelta(seconds=t)).tz_convert(z).isoformat()
        for t, z in rows
    ]
    assert out.index.equals(instants.index)
    assert out.astype(object).where(out.notna(), None).tolist() == expected


def test_local_instants_without_zones_are_missing():
    """No zone given at all (a drill-down without its time zone column): every text missing."""
    instants = pd.Series(pd.to_datetime(["2026-01-01T00:00:00Z", None], utc=True))
    out = files.iso_local(instants, pd.Series(dtype="string"))
    assert out.isna().all() and len(out) == 2
