"""Parquet table folders: partitions typed null, symbolic links, instants at the calendar's ends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cs_metrics.errors import InputError
from cs_metrics.pipeline import load
from cs_metrics.policy import Policy
from cs_metrics.readers import read_table, table_paths

UTC = dt.UTC


def messages(ids: list[str], sent_at: pa.Array | list[str] | None = None) -> pa.Table:
    return pa.table(
        {
            "shop_id": ["S"] * len(ids),
            "conversation_id": ["c1"] * len(ids),
            "message_id": ids,
            "sender_role": ["buyer"] * len(ids),
            "sent_at": sent_at if sent_at is not None else ["2026-11-17T10:00:00Z"] * len(ids),
        }
    )


def partition(folder: Path, name: str, table: pa.Table) -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name / "part-0.parquet")
    return folder / name


def test_a_first_partition_of_null_typed_columns_takes_the_other_files_types(data: Path) -> None:
    """Found in issue #15: an empty partition whose columns are typed null (as `generate`
    writes) made the whole table unreadable (`Unsupported cast from string to null`)."""
    folder = data / "messages"
    empty = pa.table({name: pa.array([], pa.null()) for name in messages([]).column_names})
    partition(folder, "date=2026-11-16", empty)
    partition(folder, "date=2026-11-17", messages(["m1", "m2"]))
    frame = read_table("messages", folder).frame
    assert list(frame["message_id"]) == ["m1", "m2"]


def test_a_holiday_column_typed_null_in_one_file_and_timestamp_in_another(data: Path) -> None:
    folder = data / "holiday_mode"
    at = dt.datetime(2026, 11, 17, tzinfo=UTC)
    open_end = pa.table(
        {"shop_id": ["S"], "start": pa.array([at], pa.timestamp("us", UTC)), "end": [None]}
    )
    assert open_end.schema.field("end").type == pa.null()
    partition(folder, "a", open_end)
    partition(
        folder,
        "b",
        pa.table(
            {
                "shop_id": ["T"],
                "start": pa.array([at], pa.timestamp("us", UTC)),
                "end": pa.array([at + dt.timedelta(days=1)], pa.timestamp("us", UTC)),
            }
        ),
    )
    frame = read_table("holiday_mode", folder).frame
    assert list(frame["shop_id"]) == ["S", "T"]
    assert frame["end"].isna().tolist() == [True, False]


def test_a_column_typed_differently_in_two_files_is_read_as_text(data: Path) -> None:
    folder = data / "messages"
    first = messages(["m1"]).set_column(1, "conversation_id", pa.array([7], pa.int64()))
    partition(folder, "p=1", first)
    partition(folder, "p=2", messages(["m2"]))
    frame = read_table("messages", folder).frame
    assert list(frame["conversation_id"]) == ["7", "c1"]


def test_symbolic_links_to_partition_folders_and_files_are_read(data: Path, tmp_path: Path) -> None:
    """Found in issue #15: linked partitions were skipped without a word (2 rows of 4 read)."""
    folder = data / "messages"
    partition(folder, "date=2026-11-16", messages(["m1", "m2"]))
    elsewhere = partition(tmp_path / "other_disk", "date=2026-11-17", messages(["m3", "m4"]))
    (folder / "date=2026-11-17").symlink_to(elsewhere)
    single = partition(tmp_path / "other_disk", "file", messages(["m5"])) / "part-0.parquet"
    partition(folder, "date=2026-11-18", messages(["m6"]))
    (folder / "date=2026-11-18" / "part-1.parquet").symlink_to(single)
    frame = read_table("messages", folder).frame
    assert list(frame["message_id"]) == ["m1", "m2", "m3", "m4", "m6", "m5"]


@pytest.mark.parametrize("target", ["..", "../..", "."], ids=["parent", "table", "itself"])
def test_a_symbolic_link_loop_is_an_error_naming_the_link(data: Path, target: str) -> None:
    folder = data / "messages"
    inner = partition(folder, "date=2026-11-16", messages(["m1"]))
    (inner / "loop").symlink_to(target)
    with pytest.raises(InputError, match=r"date=2026-11-16/loop[^ ]*: a symbolic link loops back"):
        table_paths(data)


def test_a_symbolic_link_loop_through_two_folders_is_an_error(data: Path) -> None:
    folder = data / "messages"
    a = partition(folder, "a", messages(["m1"]))
    (folder / "b").mkdir()
    (a / "to_b").symlink_to("../b")
    (folder / "b" / "to_a").symlink_to("../a")
    with pytest.raises(InputError, match="a symbolic link loops back"):
        read_table("messages", folder)


def test_a_symbolic_link_to_nothing_is_an_error(data: Path) -> None:
    folder = data / "messages"
    inner = partition(folder, "date=2026-11-16", messages(["m1"]))
    (inner / "part-1.parquet").symlink_to(data / "gone.parquet")
    with pytest.raises(InputError, match=r"part-1.parquet: a symbolic link to a file that does"):
        read_table("messages", folder)


EDGES = [
    dt.datetime(2026, 11, 17, 10),
    dt.datetime(1200, 1, 1),
    dt.datetime(9999, 12, 31, 12),
    dt.datetime(1, 1, 1, 1),
]


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Singapore", None])
def test_typed_instants_at_the_calendars_ends_are_read_or_quarantined_never_a_crash(
    data: Path, unit: str, zone: str | None
) -> None:
    """Found in issue #15: years 1200 or 9999 in a zoned Parquet timestamp ended the run with
    OutOfBoundsDatetime. Zoned instants in years 1-9999 UTC are read whatever their zone's wall
    time (1 January of year 1, 01:00 UTC, is still 31 December of year 0 in New York)."""
    values = [d.replace(tzinfo=UTC) if zone else d for d in EDGES]
    array = pa.array(values, pa.timestamp(unit, tz=zone))
    pq.write_table(messages(["m1", "m2", "m3", "m4"], array), data / "messages.parquet")
    dataset = load(data, Policy())
    bad = dataset.quarantine.get("messages")
    counts = dataset.counts["messages"]
    assert counts.rows_read == 4
    assert counts.rows_read == counts.rows_used + counts.rows_quarantined + counts.rows_duplicate
    # Naive wall times within a day of the calendar's ends could leave it in some zone.
    assert counts.rows_quarantined == (2 if zone is None else 0)
    if counts.rows_quarantined:
        assert bad is not None and set(bad["reason"]) == {"bad_timestamp"}


@pytest.mark.parametrize(
    ("text", "used"),
    [
        ("1200-01-01T00:00:00+02:00", True),
        ("1200-01-01T00:00:00", True),
        ("9999-12-31T12:00:00-05:00", True),
        ("9999-12-31T23:00:00-05:00", False),  # year 10000 in UTC
        ("0001-01-01T00:00:00+05:00", False),  # year 0 in UTC
        ("0000-06-01T00:00:00Z", False),
    ],
)
@pytest.mark.parametrize("form", ["csv", "jsonl"])
def test_text_instants_with_offsets_at_the_calendars_ends(
    data: Path, text: str, used: bool, form: str
) -> None:
    good = '{"shop_id":"S","conversation_id":"c","message_id":"m0","sender_role":"buyer",'
    good += '"sent_at":"2026-11-17T10:00:00Z"}'
    if form == "csv":
        (data / "messages.csv").write_text(
            "shop_id,conversation_id,message_id,sender_role,sent_at\n"
            f"S,c,m0,buyer,2026-11-17T10:00:00Z\nS,c,m1,buyer,{text}\n"
        )
    else:
        line = good.replace("m0", "m1").replace("2026-11-17T10:00:00Z", text)
        (data / "messages.jsonl").write_text(f"{good}\n{line}\n")
    dataset = load(data, Policy())
    counts = dataset.counts["messages"]
    assert (counts.rows_read, counts.rows_used) == (2, 1 + used)
    if not used:
        assert list(dataset.quarantine["messages"]["reason"]) == ["bad_timestamp"]
    else:
        assert counts.rows_quarantined == 0
