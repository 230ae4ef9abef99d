"""Absurd CSV shapes (a huge header, thousands of columns, a huge line) refused before parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cs_metrics.cli.app import app
from cs_metrics.errors import InputError
from cs_metrics.readers import csv as csv_reader
from cs_metrics.readers import jsonl, read_table

HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at"
ROW = "S,c,m,buyer,2026-11-17T10:00:00Z"


def test_a_header_over_the_column_limit_is_refused_naming_the_count(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "COLUMNS_MAX", 7)
    path = data / "messages.csv"
    path.write_text(f"{HEADER},a,b,c\n{ROW},1,2,3\n")  # 8 columns
    with pytest.raises(InputError, match=r"the header names 8 columns, more than the 7 read"):
        read_table("messages", path)
    monkeypatch.setattr(csv_reader, "COLUMNS_MAX", 8)
    assert len(read_table("messages", path).frame) == 1


def test_a_header_line_over_the_byte_limit_is_refused_before_pandas_reads_it(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "HEADER_BYTES_MAX", 100)
    path = data / "messages.csv"
    path.write_text("\n\n" + HEADER + "," + "x" * 100 + f"\n{ROW},1\n")
    monkeypatch.setattr(csv_reader.pd, "read_csv", None)  # never reached
    with pytest.raises(InputError, match=r"the header line is over 100 bytes"):
        read_table("messages", path)


@pytest.mark.parametrize("scan_bytes", [7, 1 << 20])
@pytest.mark.parametrize("chain", [("arrow", "pandas", "tolerant"), ("tolerant",)])
def test_a_line_over_the_limit_is_refused(
    scan_bytes: int, chain: tuple[str, ...], data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow refuses a line over its block; the next readers measure every line first."""
    monkeypatch.setattr(csv_reader, "SCAN_BYTES", scan_bytes)
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 200)
    monkeypatch.setattr(csv_reader, "LINE_BYTES_MAX", 300)
    monkeypatch.setattr(csv_reader, "CSV_READERS", chain)
    path = data / "messages.csv"
    path.write_text(f"{HEADER},content\n{ROW},short\r\n{ROW},{'x' * 300}\n{ROW},short\n")
    with pytest.raises(InputError, match=r"messages.csv: a line is over 300 bytes"):
        read_table("messages", path)
    path.write_text(f"{HEADER},content\n{ROW},short\r\n{ROW},{'x' * 250}\n{ROW},short\n")
    assert len(read_table("messages", path).frame) == 3


def test_a_million_columns_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    """Found in issue #15: this took 4.4 GB and 329 s; the header check reads 1 MiB."""
    data = tmp_path / "d"
    data.mkdir()
    names = ",".join(f"x{i}" for i in range(10**6))
    (data / "messages.csv").write_text(f"{HEADER},{names}\n{ROW}{',' * 10**6}\n")
    result = CliRunner().invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"cs-metrics: error: {data / 'messages.csv'}: the header line is over 1 MiB; "
        "this is not a table export (is it the right file?)"
    ]


@pytest.mark.parametrize("block", [16, 64])  # blocks below the limit, as in use
def test_a_json_lines_line_over_the_limit_is_refused(
    block: int, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "JSONL_BLOCK_BYTES", block)
    monkeypatch.setattr(jsonl, "LINE_BYTES_MAX", 300)
    good = '{"shop_id":"S","conversation_id":"c","message_id":"m","sender_role":"buyer",'
    good += '"sent_at":"2026-11-17T10:00:00Z"'
    path = data / "messages.jsonl"
    path.write_text(f'{good}}}\n{good},"content":"{"x" * 300}"}}\n{good}}}\n')
    with pytest.raises(InputError, match=r"messages.jsonl: a line is over 300 bytes"):
        read_table("messages", path)
    path.write_text(f'{good}}}\n{good},"content":"{"x" * 150}"}}\n{good}}}')
    assert len(read_table("messages", path).frame) == 3
