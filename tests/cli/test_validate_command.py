"""`cs-metrics validate` exit codes and the --date-format / --reject-mangled-ids options."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cs_metrics.cli.app import app

runner = CliRunner()
HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at\n"


def folder(tmp_path: Path, rows: str, shops: bool = True) -> Path:
    """A data folder with the given message rows (and a shops table, so zones are known)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "messages.csv").write_text(HEADER + rows)
    if shops:
        (data / "shops.csv").write_text("shop_id,market\nS,SG\n")
    return data


def test_clean_folder_exits_0(tmp_path: Path) -> None:
    data = folder(tmp_path, "S,c,m1,buyer,2026-11-17T10:00:00+08:00\n")
    result = runner.invoke(app, ["validate", "--data", str(data), "--format", "json"])
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["status"] == "clean"


def test_bad_rows_exit_1_and_are_counted_by_reason(tmp_path: Path) -> None:
    data = folder(
        tmp_path, "S,c,m1,buyer,2026-11-17T10:00:00+08:00\nS,c,m2,alien,2026-11-17T10:01:00+08:00\n"
    )
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 1
    assert "unknown_role" in result.stdout


def test_unusable_folder_exits_2_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "data folder not found" in result.stderr


def test_day_first_dates_need_the_date_format_option(tmp_path: Path) -> None:
    data = folder(tmp_path, "S,c,m1,buyer,17/11/2026 10:00\nS,c,m2,seller,17/11/2026 10:30\n")
    args = [
        "compute",
        "--data",
        str(data),
        "--start",
        "2026-11-16",
        "--end",
        "2026-11-22",
        "--format",
        "json",
    ]
    without = runner.invoke(app, args)
    assert without.exit_code == 2
    assert without.stderr.endswith(
        "the sent_at values read as day-first dates with --date-format '%d/%m/%Y %H:%M'\n"
    )
    with_format = json.loads(runner.invoke(app, [*args, "--date-format", "%d/%m/%Y %H:%M"]).stdout)
    (shop,) = with_format["shops"]
    assert shop["chats_responded_12h"] == 1
    assert shop["first_response_minutes_mean"] == 30.0


def test_scientific_notation_ids_warn_by_default_and_quarantine_on_request(tmp_path: Path) -> None:
    data = folder(
        tmp_path, "S,c,1.79E+18,buyer,2026-11-17T10:00:00Z\nS,c,m2,seller,2026-11-17T10:30:00Z\n"
    )
    args = [
        "compute",
        "--data",
        str(data),
        "--start",
        "2026-11-16",
        "--end",
        "2026-11-22",
        "--format",
        "json",
    ]
    default = runner.invoke(app, args)
    assert json.loads(default.stdout)["input"]["messages"]["rows_used"] == 2
    assert "scientific notation" in default.stderr
    strict_ids = runner.invoke(app, [*args, "--reject-mangled-ids"])
    assert json.loads(strict_ids.stdout)["input"]["messages"]["rows_quarantined"] == 1


def test_engine_option_takes_every_engine(tmp_path: Path) -> None:
    """`--engine disk` and `--engine dask` give the pandas engine's report."""
    data = folder(tmp_path, "S,c,m1,buyer,2026-11-17T10:00:00+08:00\nS,c,m1,buyer,oops\n")
    args = ["validate", "--data", str(data), "--format", "json"]
    engines = ("auto", "pandas", "disk", "dask")
    runs = {e: runner.invoke(app, [*args, "--engine", e]) for e in engines}
    assert {r.exit_code for r in runs.values()} == {1}
    assert len({r.stdout for r in runs.values()}) == 1
    assert json.loads(runs["disk"].stdout)["tables"]["messages"]["rows_quarantined"] == 1
