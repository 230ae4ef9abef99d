"""The command line (SPEC 8, 9): exit codes, one-line errors, formats, help, quarantine."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import MESSAGES_HEADER, WEEK, write_csv
from cs_metrics.cli.app import app

runner = CliRunner()


def good_and_bad(data: Path) -> Path:
    """One on-time chat and one bad row."""
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m2,seller,2026-11-17T10:30:00Z
        S1,c1,m3,buyer,not-a-time
        """,
    )
    return data


def compute_args(data: Path, *extra: str) -> list[str]:
    return ["compute", "--data", str(data), "--start", WEEK[0], "--end", WEEK[1], *extra]


def invoke(args: list[str]):
    return runner.invoke(app, args)


def assert_one_line_error(stderr: str, *needles: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_exit_zero_with_quarantined_rows_and_json_on_stdout(data: Path) -> None:
    result = invoke(compute_args(good_and_bad(data), "--format", "json"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["input"]["messages"]["rows_quarantined"] == 1
    assert doc["shops"][0]["response_rate_12h"] == 1.0


def test_csv_format_header_is_the_spec_field_names(data: Path) -> None:
    result = invoke(compute_args(good_and_bad(data), "--format", "csv"))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:4] == ["shop_id", "timezone", "window_start", "window_end"]
    assert "response_rate_12h" in rows[0]
    assert rows[1][rows[0].index("response_rate_12h")] == "1.0"


def test_table_format_shows_percentages_and_input_line(data: Path) -> None:
    result = invoke(compute_args(good_and_bad(data)))
    assert result.exit_code == 0, result.output
    assert "100.0%" in result.stdout
    assert "Input: messages 3 read, 2 used, 1 quarantined, 0 duplicate" in result.stdout


def test_quarantine_option_writes_one_csv_per_table(data: Path, tmp_path: Path) -> None:
    good_and_bad(data)
    write_csv(data, "ratings", "shop_id,conversation_id,rating,rated_at\nS1,c1,+5,1\n")
    out = tmp_path / "q"
    result = invoke(compute_args(data, "--quarantine", str(out), "--format", "json"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["messages.csv", "ratings.csv"]
    rows = list(csv.DictReader((out / "messages.csv").open()))
    assert len(rows) == 1
    assert (rows[0]["row_number"], rows[0]["reason"], rows[0]["sent_at"]) == (
        "3",
        "bad_timestamp",
        "not-a-time",
    )
    assert rows[0]["message"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start", "2026-11-31", "--end", "2026-12-01"], "--start"),
        (["--start", "16/11/2026", "--end", "2026-11-22"], "--start"),
        (["--start", "2026-11-16", "--end", "tomorrow"], "--end"),
        (["--start", "2026-11-22", "--end", "2026-11-16"], "--end"),
        (["--start", "2026-11-16", "--end", "2026-11-22", "--cutoff", "soon"], "--cutoff"),
        (
            ["--start", "2026-11-16", "--end", "2026-11-22", "--default-timezone", "Mars/Base"],
            "--default-timezone",
        ),
    ],
    ids=[
        "no_such_start_date",
        "start_not_iso",
        "end_not_a_date",
        "end_before_start",
        "bad_cutoff",
        "unknown_default_timezone",
    ],
)
def test_bad_invocation_exits_2_with_one_line(data: Path, args: list[str], needle: str) -> None:
    good_and_bad(data)
    result = invoke(["compute", "--data", str(data), *args])
    assert result.exit_code == 2, (result.exit_code, result.exception, result.output)
    assert_one_line_error(result.stderr, needle)
    assert result.stdout == ""


def test_missing_data_folder_exits_2(tmp_path: Path) -> None:
    result = invoke(compute_args(tmp_path / "missing"))
    assert result.exit_code == 2, (result.exit_code, result.exception)
    assert_one_line_error(result.stderr, "missing")


def test_missing_messages_table_exits_2(data: Path) -> None:
    write_csv(data, "ratings", "shop_id,conversation_id,rating,rated_at\n")
    result = invoke(compute_args(data))
    assert result.exit_code == 2, (result.exit_code, result.exception)
    assert_one_line_error(result.stderr, "messages")


def test_missing_required_column_exits_2_naming_the_file(data: Path) -> None:
    good_and_bad(data)
    write_csv(data, "ratings", "shop_id,conversation_id,rating\nS1,c1,5\n")
    result = invoke(compute_args(data))
    assert result.exit_code == 2, (result.exit_code, result.exception)
    assert_one_line_error(result.stderr, "ratings.csv", "rated_at")
    assert result.stdout == ""


def test_two_formats_of_one_table_exits_2(data: Path) -> None:
    good_and_bad(data)
    (data / "messages.jsonl").write_text("")
    result = invoke(compute_args(data))
    assert result.exit_code == 2, (result.exit_code, result.exception)
    assert_one_line_error(result.stderr, "messages")


def test_strict_with_bad_rows_exits_2_and_writes_nothing(data: Path) -> None:
    result = invoke(compute_args(good_and_bad(data), "--strict", "--format", "json"))
    assert result.exit_code == 2, (result.exit_code, result.exception)
    assert_one_line_error(result.stderr, "messages.csv")
    assert result.stdout == ""


def test_strict_without_bad_rows_exits_0(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    result = invoke(compute_args(data, "--strict", "--format", "json"))
    assert result.exit_code == 0, result.output


def test_shop_option_repeatable(data: Path) -> None:
    result = invoke(
        compute_args(good_and_bad(data), "--shop", "S9", "--shop", "S1", "--format", "json")
    )
    assert result.exit_code == 0, result.output
    assert [s["shop_id"] for s in json.loads(result.stdout)["shops"]] == ["S1", "S9"]


def test_chats_command_writes_the_drilldown_matching_compute(data: Path, tmp_path: Path) -> None:
    good_and_bad(data)
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m2,seller,2026-11-17T10:30:00Z
        S1,c2,m3,buyer,2026-11-17T10:00:00Z
        S1,c2,m4,seller,2026-11-18T10:00:00Z
        S1,c3,m5,buyer,2026-11-22T23:00:00Z
        """,
    )
    out = tmp_path / "chats.csv"
    result = invoke(
        ["chats", "--data", str(data), "--start", WEEK[0], "--end", WEEK[1], "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["status"] for r in rows] == ["on_time", "late", "pending"]
    doc = json.loads(invoke(compute_args(data, "--format", "json")).stdout)
    s1 = doc["shops"][0]
    assert (s1["chats_responded_12h"], s1["chats_responded_late"], s1["chats_pending"]) == (1, 1, 1)


@pytest.mark.parametrize("command", [[], ["compute"], ["chats"]], ids=["top", "compute", "chats"])
def test_help_shows_an_example(command: list[str]) -> None:
    result = invoke([*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert "cs-metrics " in result.stdout


# ---- the installed entry point, as a real process ----


def entry_point() -> list[str]:
    exe = Path(sys.executable).with_name("cs-metrics")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("cs-metrics")
    return [found] if found else [sys.executable, "-m", "cs_metrics"]


def test_installed_entry_point_computes_json(data: Path) -> None:
    result = subprocess.run(
        [*entry_point(), *compute_args(good_and_bad(data), "--format", "json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["shops"][0]["chats_responded_12h"] == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "extra",
    [["--end", "2026-11-15"], ["--strict"]],
    ids=["end_before_start", "strict_with_bad_rows"],
)
def test_installed_entry_point_exits_2_with_one_line(data: Path, extra: list[str]) -> None:
    result = subprocess.run(
        [*entry_point(), *compute_args(good_and_bad(data), *extra)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr)
    assert result.stdout == ""


def test_a_shop_found_in_no_table_is_named_and_still_listed(tmp_path: Path) -> None:
    """A typo'd --shop gets a warning on stderr; SPEC 7 still lists it, with no chats."""
    data = tmp_path / "d"
    data.mkdir()
    (data / "messages.csv").write_text(
        "shop_id,conversation_id,message_id,sender_role,sent_at\n"
        "VN-001,c,m1,buyer,2026-11-16T10:00:00Z\n"
    )
    args = ["compute", "--data", str(data), "--start", "2026-11-16", "--end", "2026-11-22"]
    result = runner.invoke(app, [*args, "--shop", "XX-999", "--shop", "VN-001", "--format", "json"])
    assert result.exit_code == 0
    assert result.stderr.endswith("\nwarning: shop(s) found in no table: XX-999\n")
    doc = json.loads(result.stdout)
    assert [s["shop_id"] for s in doc["shops"]] == ["VN-001", "XX-999"]
    assert doc["shops"][1]["chats"] == 0
