"""Fuzzing every reader through the real CLI: exit 2 with one clear line, or counts that add up.

Any other outcome (a traceback, exit 1 "internal error", a row unaccounted for) is a bug. The
example counts are bounded so this file runs in well under a minute.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cs_metrics.cli.app import app
from cs_metrics.readers import TABLES

FUZZ = settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FORMATS = ("csv", "jsonl", "parquet")
GOOD_ROWS: dict[str, list[dict[str, str]]] = {
    "messages": [
        {
            "shop_id": "S1",
            "conversation_id": "c1",
            "message_id": "m1",
            "sender_role": "buyer",
            "sent_at": "2026-11-17T10:00:00Z",
        },
        {
            "shop_id": "S1",
            "conversation_id": "c1",
            "message_id": "m2",
            "sender_role": "seller",
            "sent_at": "2026-11-17T10:05:00Z",
        },
    ],
    "ratings": [
        {"shop_id": "S1", "conversation_id": "c1", "rating": "5", "rated_at": "2026-11-17"}
    ],
    "holiday_mode": [{"shop_id": "S1", "start": "2026-11-18", "end": "2026-11-19"}],
    "shops": [{"shop_id": "S1", "market": "SG", "timezone": ""}],
}
COLUMNS = {name: tuple(rows[0]) for name, rows in GOOD_ROWS.items()}

cells = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            '"',
            '""',
            ",",
            ";",
            "\n",
            "\r",
            "\r\n",
            "\x00",
            "NA",
            "null",
            "TRUE",
            "FALSE",
            "1.79E+18",
            "3.0",
            "-1",
            "1e400",
            "99999999999999999999999",
            "2026-13-45",
            "2026-11-17T25:00:00+99:99",
            "٣",
            "\ufeff",
            "buyer",
            "SELLER",
            "5",
            "5.0",
            "x" * 100_000,
        ]
    ),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


def rows_strategy(name: str) -> st.SearchStrategy[list[dict[str, str]]]:
    """Rows of one table with random values in every column (the header stays right)."""
    row = st.fixed_dictionaries(dict.fromkeys(COLUMNS[name], cells))
    return st.lists(row, min_size=0, max_size=6)


def write_table(folder: Path, name: str, fmt: str, rows: list[dict[str, Any]]) -> Path:
    """Write rows of one table in one format (the header/keys from COLUMNS)."""
    path = folder / f"{name}.{fmt}"
    if fmt == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS[name], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        columns = {c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS[name]}
        pq.write_table(pa.table(columns), path)
    return path


def fresh(tmp_path: Path) -> Path:
    """An empty data folder, unique per hypothesis example."""
    folder = tmp_path / f"d{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    return folder


def run_compute(folder: Path) -> tuple[int, str, str]:
    """`compute --format json` through the real Typer app."""
    result = CliRunner().invoke(
        app,
        [
            "compute",
            "--data",
            str(folder),
            "--start",
            "2026-11-16",
            "--end",
            "2026-11-22",
            "--format",
            "json",
        ],
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_accounted(
    folder: Path, written: dict[str, int | None] | None = None
) -> dict[str, Any] | None:
    """Exit 0 with counts adding up (and equal to the rows written), or exit 2 with one line."""
    code, out, err = run_compute(folder)
    assert "Traceback" not in err
    if code == 2:
        lines = [line for line in err.splitlines() if not line.startswith("warning:")]
        assert len(lines) == 1, err
        assert lines[0].startswith("cs-metrics: error: ")
        return None
    assert code == 0, err
    doc = json.loads(out)
    for name, counts in doc["input"].items():
        assert counts["rows_read"] == (
            counts["rows_used"] + counts["rows_quarantined"] + counts["rows_duplicate"]
        ), name
        if written is not None and written.get(name) is not None:
            assert counts["rows_read"] == written[name], name
    return doc


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data(), table=st.sampled_from(list(TABLES)))
def test_random_cell_values_are_used_or_quarantined(
    tmp_path: Path, table: str, fmt: str, data: st.DataObject
) -> None:
    """Any cell values: every row written is read, and used, quarantined or a duplicate."""
    folder = fresh(tmp_path)
    rows = data.draw(rows_strategy(table))
    write_table(folder, table, fmt, rows)
    written: dict[str, int | None] = {table: len(rows)}
    if table != "messages":
        write_table(folder, "messages", fmt, GOOD_ROWS["messages"])
        written["messages"] = 2
    if fmt == "csv":
        # A CSV row of only separators and blanks, or only a blank quoted cell spanning
        # lines, may be a blank line (not a row) or not: the count is not well defined.
        written[table] = None
    assert_accounted(folder, written)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(content=st.binary(max_size=300), table=st.sampled_from(list(TABLES)))
def test_random_bytes_are_an_error_or_accounted_for(
    tmp_path: Path, table: str, fmt: str, content: bytes
) -> None:
    """Random bytes as a table file: exit 2 with one line, or a run that accounts for its rows."""
    folder = fresh(tmp_path)
    if table != "messages":
        write_table(folder, "messages", "csv", GOOD_ROWS["messages"])
    (folder / f"{table}.{fmt}").write_bytes(content)
    assert_accounted(folder)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(
    cut=st.floats(min_value=0, max_value=1),
    prefix=st.sampled_from([b"", b"\xef\xbb\xbf"]),
    table=st.sampled_from(list(TABLES)),
)
def test_truncated_files_are_an_error_or_accounted_for(
    tmp_path: Path, table: str, fmt: str, cut: float, prefix: bytes
) -> None:
    """A valid file cut anywhere (as by a failed download): exit 2 with one line, or counted."""
    folder = fresh(tmp_path)
    path = write_table(folder, table, fmt, GOOD_ROWS[table] * 3)
    content = path.read_bytes()
    path.write_bytes(prefix + content[: int(len(content) * cut)])
    if table != "messages":
        write_table(folder, "messages", "csv", GOOD_ROWS["messages"])
    assert_accounted(folder)


def arrow_values(kind: str, n: int) -> pa.Array:
    """A column of n values of a type no SPEC column has."""
    values: dict[str, pa.Array] = {
        "int": pa.array([1794877200 + i for i in range(n)], pa.int64()),
        "negative_int": pa.array([-5] * n, pa.int32()),
        "float": pa.array([5.0, float("nan"), 1.5, None, 1e300][:n] + [2.0] * max(0, n - 5)),
        "bool": pa.array([True, False, None][:n] + [True] * max(0, n - 3)),
        "binary": pa.array([b"S1", b"\xff\xfe", None][:n] + [b"x"] * max(0, n - 3)),
        "utf8_binary": pa.array([b"S1"] * n, pa.binary()),
        "list": pa.array([[1, 2], None, []][:n] + [[3]] * max(0, n - 3)),
        "struct": pa.array([{"a": 1}] * n),
        "timestamp": pa.array([0] * n, pa.timestamp("s")),
        "timestamp_tz": pa.array([0] * n, pa.timestamp("ms", "Asia/Singapore")),
        "date": pa.array([0] * n, pa.date32()),
        "decimal": pa.array([1] * n, pa.decimal128(5, 2)),
        "duration": pa.array([1] * n, pa.duration("s")),
        "null": pa.nulls(n),
        "dictionary": pa.array(["S1"] * n).dictionary_encode(),
        "large_string": pa.array(["S1"] * n, pa.large_string()),
    }
    return values[kind]


ARROW_KINDS = [
    "int",
    "negative_int",
    "float",
    "bool",
    "binary",
    "utf8_binary",
    "list",
    "struct",
    "timestamp",
    "timestamp_tz",
    "date",
    "decimal",
    "duration",
    "null",
    "dictionary",
    "large_string",
]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), table=st.sampled_from(list(TABLES)))
def test_wrong_parquet_column_types_are_an_error_or_accounted_for(
    tmp_path: Path, table: str, data: st.DataObject
) -> None:
    """Any column of any Arrow type: exit 2 with one line, or every row accounted for."""
    folder = fresh(tmp_path)
    n = 3
    kinds = {c: data.draw(st.sampled_from([None, *ARROW_KINDS]), label=c) for c in COLUMNS[table]}
    columns = {
        c: arrow_values(kind, n) if kind else pa.array([GOOD_ROWS[table][0][c]] * n)
        for c, kind in kinds.items()
    }
    pq.write_table(pa.table(columns), folder / f"{table}.parquet")
    if table != "messages":
        write_table(folder, "messages", "csv", GOOD_ROWS["messages"])
    assert_accounted(folder, {table: n})


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_real_subprocess_on_random_bytes_is_one_line_or_counted(tmp_path: Path, fmt: str) -> None:
    """The installed entry point on garbage: no traceback, exit 0 or 2."""
    folder = fresh(tmp_path)
    (folder / f"messages.{fmt}").write_bytes(b"\x00\xff\xfe garbage\r\n\x00,,;\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cs_metrics",
            "compute",
            "--data",
            str(folder),
            "--start",
            "2026-11-16",
            "--end",
            "2026-11-22",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 2), result.stderr
    if result.returncode == 2:
        assert len(result.stderr.strip().splitlines()) == 1


def test_real_subprocess_on_a_huge_field_counts_the_row(tmp_path: Path) -> None:
    """A 1 MB cell in a real run: the row is read, counted and quarantined (no such role)."""
    folder = fresh(tmp_path)
    huge = {**GOOD_ROWS["messages"][0], "sender_role": "x" * 2**20}
    usable = {**GOOD_ROWS["messages"][0], "message_id": "usable"}  # SPEC 6a: one usable row
    write_table(folder, "messages", "csv", [huge, usable])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cs_metrics",
            "compute",
            "--data",
            str(folder),
            "--start",
            "2026-11-16",
            "--end",
            "2026-11-22",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)["input"]["messages"]
    assert counts == {"rows_read": 2, "rows_used": 1, "rows_quarantined": 1, "rows_duplicate": 0}
