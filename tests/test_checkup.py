"""The data-folder checkup (`cs-metrics validate`): counts, reasons, warnings, range, status."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import MESSAGES_HEADER, write_csv
from cs_metrics.checkup import EXIT_STATUS, checkup, checkup_text
from cs_metrics.engines.disk import disk_engine
from cs_metrics.errors import InputError, UsageError
from cs_metrics.policy import Policy

SHOPS = "shop_id,market\nS1,SG\nS2,SG\n"


def test_clean_folder_reports_counts_range_and_shops(data: Path) -> None:
    write_csv(data, "shops", SHOPS)
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\nS2,c2,m2,buyer,1794877200\n",
    )
    report = checkup(data, Policy())
    assert report["status"] == "clean"
    messages = report["tables"]["messages"]
    assert messages["file"] == "messages.csv"
    assert (messages["rows_read"], messages["rows_used"], messages["rows_quarantined"]) == (2, 2, 0)
    assert (messages["time_from"], messages["time_to"]) == (
        "2026-11-17T01:00:00Z",
        "2026-11-17T10:00:00Z",
    )
    assert (messages["shops_found"], messages["shop_ids"]) == (2, ["S1", "S2"])
    assert report["tables"]["shops"]["time_from"] is None
    assert EXIT_STATUS[report["status"]] == 0


def test_problems_count_reasons_and_warning_codes(data: Path) -> None:
    write_csv(data, "shops", SHOPS)
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\n"
        "S1,c1,1.79E+18,buyer,1794877200\n"
        "S1,c1,1.79E+18,seller,1794877260\n"
        "S1,c1,m3,nobody,1794877260\n"
        "S1,c1,m4,buyer,yesterday\n",
    )
    report = checkup(data, Policy())
    messages = report["tables"]["messages"]
    assert report["status"] == "problems"
    assert EXIT_STATUS[report["status"]] == 1
    assert messages["quarantined_by_reason"] == {"bad_timestamp": 1, "unknown_role": 1}
    assert messages["warnings_by_code"] == {
        "id_collapsed_duplicates": 1,
        "id_scientific_notation": 2,
    }
    assert messages["rows_duplicate"] == 1
    text = checkup_text(report)
    assert "status: problems" in text
    assert "messages  unknown_role" in text
    assert "lost its last digits" in text


def test_reject_mangled_ids_quarantines_them(data: Path) -> None:
    write_csv(data, "shops", SHOPS)
    rows = "S1,c1,1.79E+18,buyer,1794877200\nS1,c1,m2,buyer,1794877200\n"
    write_csv(data, "messages", f"{MESSAGES_HEADER}\n{rows}")
    report = checkup(data, Policy(), reject_mangled_ids=True)
    assert report["tables"]["messages"]["quarantined_by_reason"] == {"id_scientific_notation": 1}
    assert report["tables"]["messages"]["warnings_by_code"] == {}


def test_shops_without_a_zone_are_a_warning(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,1794877200\n")
    report = checkup(data, Policy())
    assert report["status"] == "problems"
    assert [w["code"] for w in report["warnings"]] == ["timezone_defaulted"]


def test_date_format_is_passed_on(data: Path) -> None:
    write_csv(data, "shops", SHOPS)
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,17/11/2026 10:00\n")
    # No row reads without the format: unusable, with the format that works named (SPEC 6a).
    with pytest.raises(InputError, match=re.escape("--date-format '%d/%m/%Y %H:%M'")):
        checkup(data, Policy())
    report = checkup(data, Policy(), date_format="%d/%m/%Y %H:%M")
    assert report["status"] == "clean"
    assert report["tables"]["messages"]["time_from"] == "2026-11-17T02:00:00Z"


@pytest.mark.parametrize(
    ("write", "error"),
    [
        (lambda d: None, InputError),
        (lambda d: (d / "messages.csv").write_text("shop_id\nS1\n"), InputError),
    ],
    ids=["no_messages", "missing_column"],
)
def test_unusable_input_raises_for_exit_2(data: Path, write, error) -> None:  # type: ignore[no-untyped-def]
    write(data)
    with pytest.raises(error) as err:
        checkup(data, Policy())
    assert err.value.exit_code == EXIT_STATUS["unusable"] == 2


def test_bad_date_format_is_a_usage_error(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,1794877200\n")
    with pytest.raises(UsageError):
        checkup(data, Policy(), date_format="%Q")


def test_the_range_and_shops_cover_used_messages_only(data: Path) -> None:
    """Repeats sent before and after every message, and a bad row, are outside the range."""
    write_csv(data, "shops", "shop_id,market\nS1,SG\nS2,SG\nS3,SG\n")
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\n"
        "S1,c1,m1,buyer,2026-11-17T10:00:00Z\n"
        "S2,c2,m2,buyer,2026-11-17T11:00:00Z\n"
        "S1,c1,m1,buyer,2026-11-01T00:00:00Z\n"
        "S2,c2,m2,buyer,2026-12-01T00:00:00Z\n"
        "S3,c3,m3,nobody,2026-10-01T00:00:00Z\n",
    )
    report = checkup(data, Policy())
    messages = report["tables"]["messages"]
    assert (messages["rows_used"], messages["rows_duplicate"], messages["rows_quarantined"]) == (
        2,
        2,
        1,
    )
    assert (messages["time_from"], messages["time_to"]) == (
        "2026-11-17T10:00:00Z",
        "2026-11-17T11:00:00Z",
    )
    assert (messages["shops_found"], messages["shop_ids"]) == (2, ["S1", "S2"])


def test_on_disk_the_report_is_the_same(data: Path, tmp_path: Path) -> None:
    """The disk engine (small buckets and blocks) reports what the pandas engine reports."""
    write_csv(data, "shops", "shop_id,market\nS1,SG\nS2,SG\nS3,SG\n")
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\n"
        "S1,c1,m1,buyer,2026-11-17T10:00:00Z\n"
        "S2,c2,m2,buyer,2026-11-17T11:00:00Z\n"
        "S1,c1,m1,buyer,2026-11-01T00:00:00Z\n"
        "S2,c2,m2,buyer,2026-12-01T00:00:00Z\n"
        "S3,c3,m3,nobody,2026-10-01T00:00:00Z\n",
    )
    work = tmp_path / "work"
    work.mkdir()
    with disk_engine(work, buckets=2, block_rows=2) as engine:
        report = checkup(data, Policy(), engine=engine)
    assert report == checkup(data, Policy())
    assert report["tables"]["messages"]["rows_duplicate"] == 2
    assert list(work.iterdir()) == []
