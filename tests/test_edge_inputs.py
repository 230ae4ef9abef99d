"""Edge inputs found by an adversarial review against SPEC.md, each pinned as a regression test."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cs_metrics.cli.app import app

runner = CliRunner()
HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at"
WEEK = ["--start", "2026-11-16", "--end", "2026-11-22"]


def compute(data: Path, *extra: str):
    """compute --format json on a folder; the CLI result."""
    return runner.invoke(app, ["compute", "--data", str(data), *WEEK, "--format", "json", *extra])


USABLE = "S,c9,m9,buyer,2026-11-16T10:00:00Z\n"
"""A good row: SPEC 6a makes a messages table with no usable row an error, not a quarantine."""


def write(data: Path, name: str, text: str) -> Path:
    data.mkdir(exist_ok=True)
    (data / name).write_text(text, encoding="utf-8")
    return data


def test_unclosed_quote_is_an_unreadable_file_not_lost_rows(tmp_path: Path) -> None:
    """SPEC 8: rows after an open quote must not vanish uncounted; the file is unreadable."""
    data = write(
        tmp_path / "d",
        "messages.csv",
        f'{HEADER}\ns,c1,m1,buyer,2026-11-16T10:00:00Z\ns,"c2,m2,buyer,2026-11-16T10:00:00Z\n'
        "s,c3,m3,buyer,2026-11-16T10:00:00Z\n",
    )
    result = compute(data)
    assert result.exit_code == 2
    assert "line 3 (data row 2): a quote opens here and never closes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_weekly_with_unusable_input_writes_nothing(tmp_path: Path) -> None:
    """SPEC 8: exit 2 and nothing is written (not even the lock or the OUT folder)."""
    data = write(tmp_path / "d", "messages.csv", "shop_id,conversation_id,message_id,sender_role\n")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["weekly", "--data", str(data), "--out", str(out), "--as-of", "2026-11-23"]
    )
    assert result.exit_code == 2
    assert "sent_at" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "sent_at",
    ["２０２６-11-16T10:00:00Z", "2026-11-16T1０:00:00Z", "2026-11-16T10:00:00.٥Z"],
    ids=["fullwidth-year", "fullwidth-hour", "arabic-indic-fraction"],
)
def test_non_ascii_digits_are_not_a_timestamp(tmp_path: Path, sent_at: str) -> None:
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\ns,c1,m1,buyer,{sent_at}\n{USABLE}")
    doc = json.loads(compute(data).stdout)
    assert doc["input"]["messages"]["rows_quarantined"] == 1


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_lines_with_nan_or_infinity_are_not_json(tmp_path: Path, constant: str) -> None:
    line = (
        '{"shop_id":"s","conversation_id":"c1","message_id":"m1","sender_role":"buyer",'
        f'"sent_at":"2026-11-16T10:00:00Z","content":{constant}}}'
    )
    usable = line.replace(f"{constant}", '"ok"').replace('"m1"', '"m2"')
    data = write(tmp_path / "d", "messages.jsonl", line + "\n" + usable + "\n")
    doc = json.loads(compute(data).stdout)
    assert doc["input"]["messages"]["rows_quarantined"] == 1


def test_whole_number_with_many_leading_zeros_is_still_unix_seconds(tmp_path: Path) -> None:
    data = write(
        tmp_path / "d",
        "messages.csv",
        f"{HEADER}\ns,c1,m1,buyer,0000000000000000001794877200\ns,c1,m2,seller,1794877260\n",
    )
    (shop,) = json.loads(compute(data).stdout)["shops"]
    assert shop["first_response_minutes_mean"] == 1.0


def test_float_parquet_timestamps_are_treated_alike_whatever_their_size(tmp_path: Path) -> None:
    """Whole-number timestamps are digits only (docs/decisions.md): floats are bad, all of them."""
    data = tmp_path / "d"
    data.mkdir()
    table = pa.table(
        {
            "shop_id": ["s", "s"],
            "conversation_id": ["c1", "c2"],
            "message_id": ["m1", "m2"],
            "sender_role": ["buyer", "buyer"],
            "sent_at": pa.array([1794877200.0, 1.7948772e12], pa.float64()),
        }
    )
    pq.write_table(table, data / "messages.parquet")
    result = compute(data)
    # Every row bad, so the table is unusable (SPEC 6a), and the reason is the timestamp.
    assert result.exit_code == 2
    assert "no usable row among 2 message rows; most common reason (2 rows): sent_at" in (
        result.stderr
    )


def test_semicolons_inside_a_quoted_extra_column_name_do_not_change_the_separator(
    tmp_path: Path,
) -> None:
    data = write(
        tmp_path / "d",
        "messages.csv",
        f'{HEADER},"a;b;c;d;e;f;g"\ns,c1,m1,buyer,2026-11-16T10:00:00Z,x\n',
    )
    result = compute(data)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["input"]["messages"]["rows_used"] == 1


@pytest.mark.parametrize("day", ["20261116", "2026-W47-1", "2026-11-16T00:00"])
def test_start_must_be_written_yyyy_mm_dd(tmp_path: Path, day: str) -> None:
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\n")
    result = runner.invoke(
        app, ["compute", "--data", str(data), "--start", day, "--end", "2026-11-22"]
    )
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr


def test_shop_option_is_trimmed_like_the_data(tmp_path: Path) -> None:
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\nS3,c1,m1,buyer,2026-11-16T10:00:00Z\n")
    doc = json.loads(compute(data, "--shop", " S3 ").stdout)
    assert [s["shop_id"] for s in doc["shops"]] == ["S3"]
    assert doc["shops"][0]["chats"] == 1


def test_an_empty_shop_option_is_a_usage_error(tmp_path: Path) -> None:
    """Found in audit: `--shop ""` reported a shop with an empty id (no shop has one)."""
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\nS3,c1,m1,buyer,2026-11-16T10:00:00Z\n")
    result = compute(data, "--shop", "S3", "--shop", "  ")
    assert result.exit_code == 2
    assert "shop id cannot be empty" in result.stderr


def test_hive_partitioned_parquet_dataset_is_read_like_one_file(tmp_path: Path) -> None:
    """messages/date=.../part-0.parquet: every partition, in path order; same metrics as a file."""
    rows = {
        "2026-11-16": [
            ("s", "c1", "m1", "buyer", 1795341600),
            ("s", "c1", "m2", "seller", 1795342200),
        ],
        "2026-11-17": [
            ("s", "c2", "m3", "buyer", 1795428000),
            ("s", "c2", "m1", "seller", 1795428600),
        ],
    }
    names = ["shop_id", "conversation_id", "message_id", "sender_role", "sent_at"]
    partitioned, single = tmp_path / "partitioned", tmp_path / "single"
    single.mkdir()
    every = []
    for day, day_rows in rows.items():
        part = partitioned / "messages" / f"date={day}"
        part.mkdir(parents=True)
        table = pa.table({n: [r[i] for r in day_rows] for i, n in enumerate(names)})
        pq.write_table(table, part / "part-0.parquet")
        every += day_rows
    pq.write_table(
        pa.table({n: [r[i] for r in every] for i, n in enumerate(names)}),
        single / "messages.parquet",
    )
    from_dataset, from_file = (
        json.loads(compute(partitioned).stdout),
        json.loads(compute(single).stdout),
    )
    assert from_dataset["input"]["messages"] == {
        "rows_read": 4,
        "rows_used": 3,
        "rows_quarantined": 0,
        "rows_duplicate": 1,
    }
    assert from_dataset == from_file


def test_hive_partition_values_are_text_like_ids(tmp_path: Path) -> None:
    """Found in audit: `shop_id=007` was read as the number 7, colliding with shop `7`."""
    data = tmp_path / "d"
    for shop in ("007", "7"):
        part = data / "messages" / f"shop_id={shop}"
        part.mkdir(parents=True)
        pq.write_table(
            pa.table(
                {
                    "conversation_id": ["c1", "c1"],
                    "message_id": ["m1", "m2"],
                    "sender_role": ["buyer", "seller"],
                    "sent_at": ["2026-11-17T10:00:00Z", "2026-11-17T10:10:00Z"],
                }
            ),
            part / "p.parquet",
        )
    doc = json.loads(compute(data).stdout)
    assert [(s["shop_id"], s["chats_responded_12h"]) for s in doc["shops"]] == [
        ("007", 1),
        ("7", 1),
    ]
    assert doc["input"]["messages"]["rows_duplicate"] == 0


def test_a_messages_folder_and_a_messages_file_are_two_formats(tmp_path: Path) -> None:
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\n")
    (data / "messages" / "date=2026-11-16").mkdir(parents=True)
    pq.write_table(
        pa.table({"shop_id": ["s"]}), data / "messages" / "date=2026-11-16" / "p.parquet"
    )
    result = compute(data)
    assert result.exit_code == 2
    assert "two formats" in result.stderr


def test_holiday_mode_until_further_notice_in_year_9999_keeps_the_chat_pending(
    tmp_path: Path,
) -> None:
    """End `9999-12-31T23:59:59Z` pushes the deadline past year 9999: pending, no deadline shown."""
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\nS,c,m1,buyer,2026-11-16T10:00:00Z\n")
    write(
        data, "holiday_mode.csv", "shop_id,start,end\nS,2026-11-16T10:30:00Z,9999-12-31T23:59:59Z\n"
    )
    (shop,) = json.loads(compute(data).stdout)["shops"]
    assert shop["chats_pending"] == 1
    out = tmp_path / "out"
    weekly = runner.invoke(
        app, ["weekly", "--data", str(data), "--out", str(out), "--as-of", "2026-11-23"]
    )
    assert weekly.exit_code == 0, weekly.stderr
    chats = (out / "2026-11-23" / "chats.csv").read_text().splitlines()
    assert chats[1].split(",")[13:15] == ["", "pending"]


@pytest.mark.parametrize(
    ("sent_at", "shops"),
    [
        ("9999-12-31T23:00:00-05:00", None),
        ("9999-12-31T23:00", "shop_id,timezone\nS,America/St_Johns\n"),
    ],
    ids=["offset-past-year-9999", "naive-local-past-year-9999"],
)
def test_instants_past_year_9999_are_bad_timestamps(
    tmp_path: Path, sent_at: str, shops: str | None
) -> None:
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\nS,c,m1,buyer,{sent_at}\n{USABLE}")
    if shops:
        write(data, "shops.csv", shops)
    result = compute(data)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["input"]["messages"]["rows_quarantined"] == 1


def test_a_week_in_year_2500_gets_its_report(tmp_path: Path) -> None:
    data = write(
        tmp_path / "d",
        "messages.csv",
        f"{HEADER}\nS,c,m1,buyer,2500-01-05T10:00:00Z\nS,c,m2,seller,2500-01-05T10:05:00Z\n",
    )
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["weekly", "--data", str(data), "--out", str(out), "--as-of", "2500-01-11"]
    )
    assert result.exit_code == 0, result.stderr
    assert (out / "2500-01-11" / "report.html").exists()


def test_days_at_the_ends_of_the_calendar_are_a_usage_error(tmp_path: Path) -> None:
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\n")
    result = runner.invoke(
        app, ["compute", "--data", str(data), "--start", "0001-01-01", "--end", "9999-12-31"]
    )
    assert result.exit_code == 2
    assert "outside the supported days" in result.stderr


def _typed_days(folder: Path) -> Path:
    """Hive partitions of typed UTC instants, 16..20 November; a chat of the 17th is answered
    on the 19th (after the cut-off used below), and shop t has messages only after it."""
    utc = pa.timestamp("us", tz="UTC")
    rows = {
        16: [("s", "c1", "m1", "buyer", 9), ("s", "c1", "m2", "seller", 10)],
        17: [("s", "c2", "m3", "buyer", 9), ("s", "c1", "m4", "buyer", 23)],
        19: [("s", "c2", "m5", "seller", 8), ("t", "c9", "m6", "buyer", 8)],
        20: [("s", "c1", "m7", "seller", 8), ("s", "c3", "m3", "buyer", 9)],
    }
    names = ["shop_id", "conversation_id", "message_id", "sender_role"]
    for day, day_rows in rows.items():
        part = folder / "messages" / f"date=2026-11-{day}"
        part.mkdir(parents=True)
        columns = {n: [r[i] for r in day_rows] for i, n in enumerate(names)}
        at = [dt.datetime(2026, 11, day, r[4], tzinfo=dt.UTC) for r in day_rows]
        pq.write_table(pa.table({**columns, "sent_at": pa.array(at, utc)}), part / "p.parquet")
    return folder


def test_skip_after_cutoff_reads_less_and_gives_the_same_metrics(tmp_path: Path) -> None:
    data = _typed_days(tmp_path / "d")
    cut = ["--cutoff", "2026-11-18T00:00:00Z"]
    whole, skipped = compute(data, *cut), compute(data, *cut, "--skip-after-cutoff")
    assert whole.exit_code == 0 and skipped.exit_code == 0, skipped.output
    a, b = json.loads(whole.stdout), json.loads(skipped.stdout)
    assert a["input"]["messages"]["rows_read"] == 8
    assert b["input"]["messages"] == {
        "rows_read": 4,
        "rows_used": 4,
        "rows_quarantined": 0,
        "rows_duplicate": 0,
    }
    # Shop t is seen only in the rows not read; shop s's metrics are the same.
    assert [x["shop_id"] for x in a["shops"]] == ["s", "t"]
    assert [x["shop_id"] for x in b["shops"]] == ["s"]
    assert b["shops"][0] == a["shops"][0] and b["cutoff"] == a["cutoff"]
    # m4 is still pending at the cut-off; m3's answer (19th) comes after it: unresponded.
    assert (a["shops"][0]["chats_pending"], a["shops"][0]["chats_unresponded"]) == (1, 1)
    assert "4 row(s) in 2 Parquet row group(s) not read" in skipped.stderr


def test_skip_after_cutoff_needs_a_cutoff(tmp_path: Path) -> None:
    result = compute(_typed_days(tmp_path / "d"), "--skip-after-cutoff")
    assert result.exit_code == 2 and "needs --cutoff" in result.stderr


def test_skip_after_cutoff_needs_parquet(tmp_path: Path) -> None:
    data = write(tmp_path / "d", "messages.csv", f"{HEADER}\n")
    result = compute(data, "--skip-after-cutoff", "--cutoff", "2026-11-18T00:00:00Z")
    assert result.exit_code == 2 and "needs Parquet messages" in result.stderr


def test_quarantined_typed_instants_read_the_same_whatever_the_other_bad_rows(
    tmp_path: Path,
) -> None:
    """Found in audit: pandas' text of a typed column padded every value to the finest
    fraction among the bad rows converted with it, so engines (and blocks) wrote 10:00:00.000
    or 10:00:00 for the same value."""
    from cs_metrics.pipeline import load
    from cs_metrics.policy import Policy

    data = tmp_path / "d"
    data.mkdir()
    at = [
        dt.datetime(2026, 11, 16, 10, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 16, 10, 0, 0, 500000, tzinfo=dt.UTC),
    ]
    pq.write_table(
        pa.table(
            {
                "shop_id": pa.array([None, None], pa.string()),
                "conversation_id": ["c1", "c1"],
                "message_id": ["m1", "m2"],
                "sender_role": ["buyer", "buyer"],
                "sent_at": pa.array(at, pa.timestamp("us", tz="UTC")),
            }
        ),
        data / "messages.parquet",
    )
    bad = load(data, Policy()).quarantine["messages"]
    assert list(bad["sent_at"]) == ["2026-11-16T10:00:00+00:00", "2026-11-16T10:00:00.500000+00:00"]
