"""Spreadsheet-damaged inputs: one test per row of the catalogue in docs/bad_inputs.md."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cs_metrics.errors import CsMetricsError
from cs_metrics.pipeline import load
from cs_metrics.policy import Policy
from cs_metrics.readers import csv as csv_reader
from cs_metrics.readers import csv_separator
from cs_metrics.readers import jsonl as jsonl_reader
from cs_metrics.timestamps import parse_instants
from paths import ROOT

HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at"
ROW = "S1,c1,m1,buyer,2026-11-17T10:00:00Z"
SCI = "1.79E+18"
SCI_MESSAGE = (
    "message_id is in scientific notation: a spreadsheet turned a long id into scientific "
    "notation and lost its last digits; re-export with the column formatted as text"
)
TIMESTAMP_MESSAGE = "sent_at is not an accepted timestamp (ISO-8601 or Unix seconds/milliseconds)"
FLOAT_MESSAGE = (
    "conversation_id ends in .0: a spreadsheet turned an id into a decimal number; "
    "re-export with the column formatted as text"
)


def csv_bytes(content: bytes) -> Callable[[Path], None]:
    """A writer of messages.csv with exactly these bytes."""
    return lambda folder: (folder / "messages.csv").write_bytes(content)


def jsonl_bytes(content: bytes) -> Callable[[Path], None]:
    """A writer of messages.jsonl with exactly these bytes."""
    return lambda folder: (folder / "messages.jsonl").write_bytes(content)


def parquet(columns: dict[str, pa.Array]) -> Callable[[Path], None]:
    """A writer of messages.parquet: a good row's columns, some replaced by `columns`."""
    base = {
        "shop_id": pa.array(["S1"]),
        "conversation_id": pa.array(["c1"]),
        "message_id": pa.array(["m1"]),
        "sender_role": pa.array(["buyer"]),
        "sent_at": pa.array(["2026-11-17T10:00:00Z"]),
    }
    return lambda folder: pq.write_table(pa.table({**base, **columns}), folder / "messages.parquet")


def lines(*rows: str, end: str = "\n", bom: bool = False) -> bytes:
    """CSV/JSONL bytes from lines joined by `end`."""
    text = end.join(rows) + end
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


@dataclass(frozen=True)
class Case:
    """One catalogue row: the input, the load options, and what must happen."""

    write: Callable[[Path], None]
    used: int | None = None
    reason: str | None = None
    message: str | None = None
    warning: str | None = None
    error: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    duplicates: int = 0


SCI_ROWS = lines(HEADER, f"S1,c1,{SCI},buyer,2026-11-17T10:00:00Z")
CATALOGUE: dict[str, Case] = {
    "utf8_bom": Case(csv_bytes(lines(HEADER, ROW, bom=True)), used=1),
    "crlf_line_ends": Case(csv_bytes(lines(HEADER, ROW, ROW.replace("m1", "m2"), end="\r\n")), 2),
    "bare_cr_line_ends": Case(csv_bytes(lines(HEADER, ROW, ROW.replace("m1", "m2"), end="\r")), 2),
    "quoted_field_with_newline": Case(
        csv_bytes(lines(f"{HEADER},content", f'{ROW},"line one\r\nline two"', end="\r\n")), 1
    ),
    "semicolon_separator": Case(
        csv_bytes(lines(HEADER.replace(",", ";"), "S1;c1;m1;buyer;17/11/2026 10:00")),
        used=1,
        options={"date_format": "%d/%m/%Y %H:%M"},
    ),
    "tab_separator": Case(csv_bytes(lines(HEADER.replace(",", "\t"), ROW.replace(",", "\t"))), 1),
    "id_scientific_notation": Case(
        csv_bytes(SCI_ROWS),
        used=1,
        warning="id_scientific_notation",
        message=f"messages: {SCI_MESSAGE} (in 1 row(s), e.g. '{SCI}'; used as they are)",
    ),
    "id_scientific_notation_rejected": Case(
        csv_bytes(SCI_ROWS),
        used=0,
        reason="id_scientific_notation",
        message=SCI_MESSAGE,
        options={"reject_mangled_ids": True},
    ),
    "id_scientific_notation_collapsed": Case(
        csv_bytes(lines(HEADER, f"S1,c1,{SCI},buyer,1794877200", f"S1,c1,{SCI},seller,1794877260")),
        used=1,
        duplicates=1,
        warning="id_collapsed_duplicates",
        message=(
            f"messages: 1 row(s) counted as duplicates have a message_id in scientific notation "
            f"(e.g. '{SCI}'): probably different messages whose ids a spreadsheet collapsed into "
            "one; re-export with the column formatted as text"
        ),
    ),
    "id_float_suffix": Case(
        csv_bytes(lines(HEADER, "S1,3.0,m1,buyer,1794877200")),
        used=1,
        warning="id_float_suffix",
        message=f"messages: {FLOAT_MESSAGE} (in 1 row(s), e.g. '3.0'; used as they are)",
    ),
    "id_float_suffix_rejected": Case(
        csv_bytes(lines(HEADER, "S1,3.0,m1,buyer,1794877200")),
        used=0,
        reason="id_float_suffix",
        message=FLOAT_MESSAGE,
        options={"reject_mangled_ids": True},
    ),
    "upper_case_true_false": Case(
        csv_bytes(lines(HEADER, "S1,c1,m1,TRUE,1794877200")),
        used=0,
        reason="unknown_role",
        message="sender_role is not a known role",
    ),
    "jsonl_true_becomes_text": Case(
        jsonl_bytes(
            b'{"shop_id":"S1","conversation_id":true,"message_id":"m1",'
            b'"sender_role":"buyer","sent_at":1794877200}\n'
        ),
        used=1,
    ),
    "day_first_date_without_date_format": Case(
        csv_bytes(lines(HEADER, "S1,c1,m1,buyer,17/11/2026 10:00")),
        used=0,
        reason="bad_timestamp",
        message=TIMESTAMP_MESSAGE,
    ),
    "day_first_date_with_date_format": Case(
        csv_bytes(lines(HEADER, "S1,c1,m1,buyer,17/11/2026 10:00")),
        used=1,
        options={"date_format": "%d/%m/%Y %H:%M"},
    ),
    "date_not_in_date_format": Case(
        csv_bytes(lines(HEADER, "S1,c1,m1,buyer,11/17/2026 10:00")),
        used=0,
        reason="bad_timestamp",
        message=(
            "sent_at is not an accepted timestamp "
            "(ISO-8601, Unix seconds/milliseconds or --date-format %d/%m/%Y %H:%M)"
        ),
        options={"date_format": "%d/%m/%Y %H:%M"},
    ),
    "date_format_not_a_format": Case(
        csv_bytes(lines(HEADER, ROW)),
        error="--date-format 'DD/MM/YYYY' is not a strptime format such as %d/%m/%Y %H:%M",
        options={"date_format": "DD/MM/YYYY"},
    ),
    "not_utf8": Case(
        csv_bytes(lines(HEADER, "S1,c1,m1,buyer,1794877200") + "Caf\xe9".encode("latin-1")),
        error="messages.csv: unreadable file ('utf-8' codec can't decode byte 0xe9 in position ",
    ),
    "empty_file": Case(csv_bytes(b""), error="messages.csv: file is empty (no header row)"),
    "translated_header": Case(
        csv_bytes(lines("shop_id,conversation_id,message_id,sender_role,Gesendet", ROW)),
        error="messages.csv: required column missing: sent_at",
    ),
    "jsonl_line_nested_too_deeply": Case(
        jsonl_bytes(b"[" * 1000 + b"]" * 1000 + b"\n"),
        used=0,
        reason="malformed_row",
        message="line is JSON nested too deeply to read (about 1,000 levels)",
    ),
    "jsonl_unpaired_surrogate_escape": Case(
        jsonl_bytes(
            b'{"shop_id":"S1","conversation_id":"c1","message_id":"m1",'
            b'"sender_role":"buyer","sent_at":1794877200,"content":"\\ud800"}\n'
        ),
        used=0,
        reason="malformed_row",
        message="line is JSON with text that is not Unicode (an unpaired \\ud800-\\udfff escape)",
    ),
    "jsonl_number_keeps_its_text": Case(
        jsonl_bytes(
            b'{"shop_id":"S1","conversation_id":"c1","message_id":"m1",'
            b'"sender_role":"buyer","sent_at":1794877200e0}\n'
        ),
        used=0,
        reason="bad_timestamp",
        message=TIMESTAMP_MESSAGE,
    ),
    "leap_second": Case(
        csv_bytes(lines(HEADER, "S1,c1,m1,buyer,2026-11-17T10:29:60Z")),
        used=0,
        reason="bad_timestamp",
        message=TIMESTAMP_MESSAGE,
    ),
    "trailing_separator": Case(csv_bytes(lines(HEADER, ROW + ",")), used=1),
    "more_fields_than_header": Case(
        csv_bytes(lines(HEADER, ROW + ",extra")),
        used=0,
        reason="malformed_row",
        message="row has more fields than the header",
    ),
    "jsonl_line_not_an_object": Case(
        jsonl_bytes(b'["S1","c1"]\n'),
        used=0,
        reason="malformed_row",
        message="line is JSON but not an object",
    ),
    "parquet_timestamp_in_id_column": Case(
        parquet({"message_id": pa.array([0], pa.timestamp("s"))}), used=1
    ),
    "parquet_nan_as_missing": Case(
        parquet({"shop_id": pa.array([float("nan")])}),
        used=0,
        reason="missing_value",
        message="required value shop_id is missing",
    ),
    "parquet_bytes_not_utf8": Case(
        parquet({"shop_id": pa.array([b"\xff"], pa.binary())}),
        error="messages.parquet: unreadable file (column shop_id holds bytes that are not UTF-8 "
        "text)",
    ),
}


@pytest.mark.parametrize("case", CATALOGUE.values(), ids=CATALOGUE.keys())
def test_catalogue_of_bad_inputs(data: Path, case: Case) -> None:
    """Each catalogue row: its rows used, its quarantine reason, warning or one-line error."""
    case.write(data)
    if case.error is not None:
        with pytest.raises(CsMetricsError) as err:
            load(data, Policy(), **case.options)
        assert err.value.exit_code == 2
        # Messages name the file by its path; the catalogue shows them from the file name on.
        assert str(err.value).removeprefix(f"{data}/").startswith(case.error)
        assert "\n" not in str(err.value)
        return
    dataset = load(data, Policy(), **case.options)
    counts = dataset.counts["messages"]
    assert counts.rows_used == case.used
    assert counts.rows_duplicate == case.duplicates
    quarantine = dataset.quarantine.get("messages")
    if case.reason is None:
        assert quarantine is None
    else:
        assert list(quarantine["reason"]) == [case.reason]
        assert list(quarantine["message"]) == [case.message]
    coded = [(w.code, str(w)) for w in dataset.warnings if hasattr(w, "code")]
    if case.warning is None:
        assert coded == []
    else:
        assert (case.warning, case.message) in coded


def test_catalogue_document_lists_every_case() -> None:
    """docs/bad_inputs.md has one row per catalogue case, named as the test ids."""
    doc = (ROOT / "docs" / "bad_inputs.md").read_text()
    named = set(re.findall(r"^\| `([a-z0-9_]+)` \|", doc, flags=re.MULTILINE))
    assert named == set(CATALOGUE)


@pytest.mark.parametrize(
    ("header", "separator"),
    [
        ("a,b;c", ","),
        ("a;b;c", ";"),
        ("a\tb\tc", "\t"),
        ("a;b,c", ","),
        ("abc", ","),
        ("a;b;c,d", ";"),
    ],
    ids=["comma", "semicolon", "tab", "tie_is_comma", "one_column", "most_wins"],
)
def test_separator_is_sniffed_from_the_header_line_only(
    tmp_path: Path, header: str, separator: str
) -> None:
    """The header line alone decides: the most frequent of , ; tab (comma on ties)."""
    path = tmp_path / "t.csv"
    path.write_bytes(f"\ufeff{header}\r\n1,2,3,4,5\n".encode())
    assert csv_separator(path) == separator


@pytest.mark.parametrize("before", ["\n", "\r\n\r\n", "   \n"])
def test_blank_lines_before_a_semicolon_header_do_not_hide_it(data: Path, before: str) -> None:
    """Found in audit: the blank first line was taken for the header (so `,`; exit 2)."""
    csv_bytes(f"{before}{HEADER.replace(',', ';')}\n{ROW.replace(',', ';')}\n".encode())(data)
    dataset = load(data, Policy())
    assert list(dataset.messages["message_id"]) == ["m1"]


def test_semicolon_in_values_of_a_comma_file_is_kept(data: Path) -> None:
    """A comma header decides: a `;` inside a value is text."""
    csv_bytes(lines(f"{HEADER},content", f"{ROW},a;b;c;d;e;f"))(data)
    dataset = load(data, Policy(), message_columns=("content",))
    assert list(dataset.messages["content"]) == ["a;b;c;d;e;f"]


def test_date_format_naive_is_shop_local_and_keeps_spec_forms() -> None:
    """--date-format adds a form: naive means the shop's zone; SPEC forms still work."""
    values = pd.Series(["17/11/2026 10:00", "2026-11-17T10:00:00Z", "1794877200", "x"])
    zones = pd.Series(["Asia/Singapore"] * 4)
    instants, reasons = parse_instants(values, zones, "%d/%m/%Y %H:%M")
    assert instants.iloc[0] == pd.Timestamp("2026-11-17T02:00:00Z")
    assert instants.iloc[1] == pd.Timestamp("2026-11-17T10:00:00Z")
    assert instants.iloc[2] == pd.Timestamp(1794877200, unit="s", tz="UTC")
    assert list(reasons) == [pd.NA, pd.NA, pd.NA, "bad_timestamp"] or (
        reasons.isna().tolist() == [True, True, True, False]
    )


def test_date_format_with_offset_is_that_instant() -> None:
    """A --date-format with %z gives instants; local-time gaps still apply without one."""
    values = pd.Series(["17/11/2026 10:00 +0800"])
    instants, _ = parse_instants(values, pd.Series(["UTC"]), "%d/%m/%Y %H:%M %z")
    assert instants.iloc[0] == pd.Timestamp("2026-11-17T02:00:00Z")
    gap, reasons = parse_instants(
        pd.Series(["08/03/2026 02:30"]), pd.Series(["America/Los_Angeles"]), "%d/%m/%Y %H:%M"
    )
    assert pd.isna(gap.iloc[0])
    assert reasons.iloc[0] == "nonexistent_or_ambiguous_local_time"


def test_without_date_format_behaviour_is_unchanged() -> None:
    """No --date-format: day-first text stays a bad timestamp."""
    _, reasons = parse_instants(pd.Series(["17/11/2026 10:00"]), pd.Series(["UTC"]))
    assert reasons.iloc[0] == "bad_timestamp"


def test_row_numbers_run_on_across_streamed_blocks(data: Path, monkeypatch: Any) -> None:
    """Reading in blocks keeps row_number the 1-based data-row ordinal of the whole file."""
    monkeypatch.setattr(csv_reader, "CHUNK_ROWS", 2)
    monkeypatch.setattr(jsonl_reader, "CHUNK_ROWS", 2)
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 64)
    monkeypatch.setattr(jsonl_reader, "JSONL_BLOCK_BYTES", 64)
    rows = [f"S1,c1,m{i},buyer,{1794877200 + i}" for i in range(5)]
    rows[3] = "S1,c1,m3,nobody,1794877203"
    csv_bytes(lines(HEADER, *rows[:2], "", *rows[2:]))(data)
    dataset = load(data, Policy())
    assert list(dataset.quarantine["messages"]["row_number"]) == [4]
    assert list(dataset.messages["row_number"]) == [1, 2, 3, 5]
    (data / "messages.csv").unlink()
    jsonl = [
        f'{{"shop_id":"S1","conversation_id":"c1","message_id":"m{i}","sender_role":"buyer",'
        f'"sent_at":{1794877200 + i}}}'
        for i in range(5)
    ]
    jsonl[3] = "not json"
    jsonl_bytes(lines(*jsonl[:2], "", *jsonl[2:]))(data)
    dataset = load(data, Policy())
    assert list(dataset.quarantine["messages"]["row_number"]) == [4]
    assert list(dataset.messages["row_number"]) == [1, 2, 3, 5]


def test_jsonl_columns_only_in_a_later_block_are_kept(data: Path, monkeypatch: Any) -> None:
    """A key first seen in a later block is a column; earlier rows have it missing."""
    monkeypatch.setattr(csv_reader, "CHUNK_ROWS", 1)
    monkeypatch.setattr(jsonl_reader, "CHUNK_ROWS", 1)
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 1)
    monkeypatch.setattr(jsonl_reader, "JSONL_BLOCK_BYTES", 1)
    jsonl_bytes(
        lines(
            '{"shop_id":"S1","conversation_id":"c1","message_id":"m1","sent_at":1794877200}',
            '{"shop_id":"S1","conversation_id":"c1","message_id":"m2","sender_role":"buyer",'
            '"sent_at":1794877201}',
        )
    )(data)
    dataset = load(data, Policy())
    assert list(dataset.messages["message_id"]) == ["m2"]
    assert list(dataset.quarantine["messages"]["reason"]) == ["missing_value"]


def test_csv_malformed_row_in_a_later_block_is_quarantined(data: Path, monkeypatch: Any) -> None:
    """The tolerant re-read also streams and numbers rows across blocks."""
    monkeypatch.setattr(csv_reader, "CHUNK_ROWS", 1)
    monkeypatch.setattr(jsonl_reader, "CHUNK_ROWS", 1)
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 1)
    monkeypatch.setattr(jsonl_reader, "JSONL_BLOCK_BYTES", 1)
    csv_bytes(lines(HEADER, ROW, ROW.replace("m1", "m2") + ",x,y"))(data)
    dataset = load(data, Policy())
    assert list(dataset.quarantine["messages"]["row_number"]) == [2]
    assert list(dataset.quarantine["messages"]["reason"]) == ["malformed_row"]


def test_parquet_typed_timestamp_in_a_text_column_is_its_text(data: Path) -> None:
    """Fuzzing found: a typed timestamp in rating/message_id crashed (internal error)."""
    parquet({"message_id": pa.array([0], pa.timestamp("s"))})(data)
    dataset = load(data, Policy())
    assert list(dataset.messages["message_id"]) == ["1970-01-01 00:00:00.000"]
    rows = {
        "shop_id": ["S1"],
        "conversation_id": ["c1"],
        "rating": pa.array([0], pa.date32()),
        "rated_at": ["2026-11-17"],
    }
    pq.write_table(pa.table(rows), data / "ratings.parquet")
    dataset = load(data, Policy())
    assert list(dataset.quarantine["ratings"]["reason"]) == ["bad_rating"]


def test_parquet_lists_and_structs_are_json_text(data: Path) -> None:
    """Nested Parquet values become JSON text, as nested values do in JSON Lines."""
    parquet({"conversation_id": pa.array([[1, 2]]), "message_id": pa.array([{"a": "b"}])})(data)
    dataset = load(data, Policy())
    row = dataset.messages.iloc[0]
    assert (row["conversation_id"], row["message_id"]) == ("[1, 2]", '{"a": "b"}')


def test_jsonl_whole_numbers_stay_whole_next_to_a_bad_line_or_a_null(data: Path) -> None:
    """Found while streaming: a bad line or null made pandas read ints as floats (`...200.0`)."""
    jsonl_bytes(
        lines(
            '{"shop_id":"S1","conversation_id":"c1","message_id":1234567890123456789,'
            '"sender_role":"buyer","sent_at":1794877200}',
            "not json",
            '{"shop_id":"S1","conversation_id":"c1","message_id":null,'
            '"sender_role":"buyer","sent_at":1794877201}',
        )
    )(data)
    dataset = load(data, Policy())
    assert list(dataset.messages["message_id"]) == ["1234567890123456789"]
    assert list(dataset.quarantine["messages"]["reason"]) == ["malformed_row", "missing_value"]


def test_csv_first_row_with_one_extra_field_does_not_shift_the_columns(data: Path) -> None:
    """pandas made the first column an index when row 1 had one extra field: every row shifted."""
    csv_bytes(lines(HEADER, ROW + ",extra", ROW.replace("m1", "m2")))(data)
    dataset = load(data, Policy())
    assert list(dataset.messages["message_id"]) == ["m2"]
    assert list(dataset.quarantine["messages"]["reason"]) == ["malformed_row"]
