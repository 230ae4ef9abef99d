"""Bad rows set aside on disk as they are found (engines.quarantine): the same quarantine CSV,
counts that add up, spill files gone after the run, and `auto` choosing by Parquet row counts."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pytest

from conftest import MESSAGES_HEADER, write_csv, write_parquet
from cs_metrics import engines, output
from cs_metrics.engines import quarantine as spill_module
from cs_metrics.engines.disk import disk_engine
from cs_metrics.engines.quarantine import Quarantine, QuarantineSpill
from cs_metrics.errors import StrictModeError
from cs_metrics.files import csv_text
from cs_metrics.pipeline import Dataset, load
from cs_metrics.policy import Policy
from cs_metrics.weekly import message_rows_by_shop

HEADER = f"{MESSAGES_HEADER},sender_id,message_type,content"

MESSAGES_QUARANTINE = (
    "table,row_number,reason,message,shop_id,conversation_id,message_id,sender_role,sent_at,"
    "sender_id,message_type,content\n"
    "messages,2,bad_timestamp,sent_at is not an accepted timestamp (ISO-8601 or Unix "
    'seconds/milliseconds), S2 ,c1,m1,buyer,garbage,u,text,"quoted, comma"\n'
    "messages,3,unknown_role,sender_role is not a known role,S2,c1,m2,alien,"
    '2026-11-18T10:00:00Z,u,text,"line\nbreak"\n'
    "messages,4,missing_value,required value shop_id is missing,,c1,m3,buyer,"
    "2026-11-18T10:00:00Z,u,text,x\n"
    "messages,5,bad_timestamp,sent_at is not an accepted timestamp (ISO-8601 or Unix "
    "seconds/milliseconds),S3,c1,m3,buyer,2026-11-18T10:00:00+25:00,,,\n"
)
"""The quarantine CSV of `mixed` as written before bad rows were set aside (byte for byte)."""


@pytest.fixture
def mixed(data: Path) -> Path:
    """Six messages: two good (S1), four bad for four reasons, one with a quoted line break."""
    (data / "messages.csv").write_text(
        f"{HEADER}\n"
        "S1,c1,m1,buyer,2026-11-17T10:00:00Z,u,text,hi\n"
        ' S2 ,c1,m1,buyer,garbage,u,text,"quoted, comma"\n'
        'S2,c1,m2,alien,2026-11-18T10:00:00Z,u,text,"line\nbreak"\n'
        ",c1,m3,buyer,2026-11-18T10:00:00Z,u,text,x\n"
        "S3,c1,m3,buyer,2026-11-18T10:00:00+25:00,,,\n"
        "S1,c1,m2,seller,2026-11-17T10:30:00Z,u,text,ok\n",
        encoding="utf-8",
    )
    return data


@pytest.fixture
def many(data: Path) -> Path:
    """302 messages of three shops: rows 1, 4, 7... bad (100), then rows 2 and 3 again."""
    rows = []
    for n in range(300):
        sent = "never" if n % 3 == 0 else f"2026-11-17T10:{n % 60:02d}:00Z"
        rows.append(f"S{n % 3 + 1 if n % 3 else 9},c{n % 7},m{n},buyer,{sent}")
    rows += rows[1:3]
    write_csv(data, "messages", MESSAGES_HEADER + "\n" + "\n".join(rows) + "\n")
    return data


def loaded(folder: Path, engine: str, **kwargs: Any) -> Dataset:
    """The folder loaded by the pandas engine, or by the disk engine 7 rows at a time."""
    if engine == "pandas":
        return load(folder, Policy(), **kwargs)
    with disk_engine(block_rows=7) as on_disk:
        return load(folder, Policy(), engine=on_disk, **kwargs)


ENGINES = pytest.mark.parametrize("engine", ["pandas", "disk"])


@ENGINES
def test_quarantine_csv_is_byte_identical_to_the_held_rows(
    mixed: Path, tmp_path: Path, engine: str
) -> None:
    """Written a block at a time from the spill, the CSV is the one written from all rows held."""
    dataset = loaded(mixed, engine)
    written = output.write_quarantine(dataset, tmp_path / "q")
    assert written == [tmp_path / "q" / "messages.csv"]
    assert written[0].read_bytes() == MESSAGES_QUARANTINE.encode("utf-8")


@ENGINES
def test_quarantine_csv_of_many_batches_is_that_of_one_frame(
    many: Path, tmp_path: Path, engine: str
) -> None:
    """Bad rows spilled block by block come back in row order, as one CSV of every bad row."""
    dataset = loaded(many, engine)
    output.write_quarantine(dataset, tmp_path)
    frame = dataset.quarantine["messages"]
    assert (tmp_path / "messages.csv").read_text(encoding="utf-8") == csv_text(frame)
    assert frame["row_number"].tolist() == list(range(1, 301, 3))


@ENGINES
def test_rows_read_are_used_quarantined_or_duplicates(many: Path, engine: str) -> None:
    """Counts add up, and the per-shop and per-reason counts kept match the spilled rows."""
    dataset = loaded(many, engine)
    counts = dataset.counts["messages"]
    assert (counts.rows_read, counts.rows_quarantined, counts.rows_duplicate) == (302, 100, 2)
    assert counts.rows_used + counts.rows_quarantined + counts.rows_duplicate == counts.rows_read
    rows = dataset.quarantine["messages"]
    assert len(rows) == counts.rows_quarantined
    expected = rows["shop_id"].value_counts().sort_index().to_dict()
    assert dataset.quarantined_by_shop.sort_index().to_dict() == expected == {"S9": 100}
    assert dataset.quarantine.reasons("messages").to_dict() == {"bad_timestamp": 100}


class Recorded:
    """The spill files a test's loads open (they have no name to look for)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.handles: list[IO[bytes]] = []
        self.folder = folder
        opened = tempfile.TemporaryFile

        def recording(*args: Any, **kwargs: Any) -> IO[bytes]:
            handle = opened(*args, **{**kwargs, "dir": folder})
            self.handles.append(handle)
            return handle

        monkeypatch.setattr(spill_module.tempfile, "TemporaryFile", recording)

    def all_closed(self) -> bool:
        """Whether every spill file opened is closed (an unnamed file is then gone)."""
        return bool(self.handles) and all(h.closed for h in self.handles)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Recorded]:
    """Spill files opened under a folder of their own, recorded."""
    folder = tmp_path / "spill"
    folder.mkdir()
    yield Recorded(monkeypatch, folder)


@ENGINES
def test_spill_files_are_removed_after_the_run(
    mixed: Path, tmp_path: Path, recorded: Recorded, engine: str
) -> None:
    """The spill leaves no file with a name, and its files are closed (gone) once closed."""
    dataset = loaded(mixed, engine)
    output.write_quarantine(dataset, tmp_path / "q")
    assert list(recorded.folder.iterdir()) == []
    assert not recorded.all_closed()
    dataset.quarantine.close()
    assert recorded.all_closed()


@ENGINES
def test_spill_files_are_removed_when_the_load_fails(
    mixed: Path, recorded: Recorded, engine: str
) -> None:
    """--strict stops the load after the bad rows were spilled: their files go with it."""
    with pytest.raises(StrictModeError):
        loaded(mixed, engine, strict=True)
    assert recorded.all_closed()
    assert list(recorded.folder.iterdir()) == []


def test_spill_of_a_restarted_table_keeps_only_the_last_reading() -> None:
    """A block starting at row 1 again (the reader starting over) drops what was spilled."""
    spill = QuarantineSpill("messages")
    first = pd.DataFrame({"row_number": [2], "reason": ["x"], "shop_id": ["S1"]})
    spill.add(first, 1)
    spill.add(first.assign(row_number=[2], reason=["y"]), 1)
    assert spill.rows == 1
    assert spill.reasons.to_dict() == {"y": 1}
    assert spill.frame()["reason"].tolist() == ["y"]
    spill.close()


def test_spill_gives_blocks_back_in_row_order_with_every_column() -> None:
    """Blocks checked out of order (two threads) come back in row order; a column missing from
    a block is empty there, as when the blocks were stacked."""
    spill = QuarantineSpill("messages")
    spill.add(pd.DataFrame({"row_number": [5, 6], "reason": ["b", "b"], "extra": ["e", "f"]}), 5)
    spill.add(pd.DataFrame({"row_number": [1, 3], "reason": ["a", "a"]}), 1)
    frames = list(Quarantine({"messages": spill}).batches("messages"))
    assert [f.columns.tolist() for f in frames] == [["row_number", "reason", "extra"]] * 2
    assert pd.concat(frames)["row_number"].tolist() == [1, 3, 5, 6]
    assert pd.concat(frames)["extra"].isna().tolist() == [True, True, False, False]
    spill.close()


def test_a_dataset_built_with_a_dict_of_frames_still_writes_them(tmp_path: Path) -> None:
    """Library users building a Dataset by hand keep passing held frames."""
    frame = pd.DataFrame({"table": ["ratings"], "row_number": [1], "reason": ["bad_rating"]})
    dataset = Dataset(
        messages=pd.DataFrame(),
        ratings=pd.DataFrame(),
        holiday_mode=pd.DataFrame(),
        zones=pd.Series(dtype="string"),
        shops=pd.DataFrame(),
        quarantine={"ratings": frame, "shops": frame.iloc[:0]},  # type: ignore[arg-type]
        counts={},
        shop_ids=pd.Index([], dtype="string"),
    )
    assert list(dataset.quarantine) == ["ratings"]
    output.write_quarantine(dataset, tmp_path)
    assert (tmp_path / "ratings.csv").read_text() == csv_text(frame)


FIVE = pa.table(
    {
        "shop_id": ["S1"] * 5,
        "conversation_id": ["c1"] * 5,
        "message_id": [f"m{n}" for n in range(5)],
        "sender_role": ["buyer"] * 5,
        "sent_at": ["2026-11-17T10:00:00Z"] * 5,
    }
)
"""Five messages."""


@pytest.fixture
def parquet_of_five(data: Path) -> Path:
    """A data folder whose messages.parquet holds five rows (a few hundred bytes)."""
    write_parquet(data, "messages", FIVE)
    return data


@pytest.mark.parametrize(
    ("disk_from_rows", "expected"), [(5, "disk"), (6, "pandas")], ids=["at-limit", "under"]
)
def test_auto_chooses_by_the_rows_in_parquet_metadata(
    parquet_of_five: Path, disk_from_rows: int, expected: str
) -> None:
    """A small Parquet file of many rows goes to the disk engine: its rows say what it unpacks
    to, not its bytes."""
    assert engines.chosen_name("auto", parquet_of_five, disk_from_rows=disk_from_rows) == expected


def test_auto_chooses_by_the_rows_of_a_parquet_folder(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows of every file of a Parquet dataset folder count, against the module's limit."""
    folder = data / "messages"
    folder.mkdir()
    write_parquet(folder, "a", FIVE)
    write_parquet(folder, "b", FIVE)
    assert engines.parquet_rows(folder) == 10
    monkeypatch.setattr(engines, "DISK_FROM_ROWS", 10)
    with engines.choose("auto", data) as engine:
        assert engine.name == "disk"
    monkeypatch.setattr(engines, "DISK_FROM_ROWS", 11)
    assert engines.chosen_name("auto", data) == "pandas"


@ENGINES
def test_repeats_within_a_block_count_as_duplicates_once_per_shop(data: Path, engine: str) -> None:
    """A message repeated many times is dropped as a duplicate as its block is checked; the
    counts are those of the duplicate rule, each shop once in the per-shop duplicates."""
    rows = ["S1,c1,m1,buyer,2026-11-17T10:00:00Z"] * 30 + [
        "S2,c1,m1,buyer,2026-11-17T11:00:00Z"
    ] * 5
    write_csv(data, "messages", MESSAGES_HEADER + "\n" + "\n".join(rows) + "\n")
    dataset = loaded(data, engine)
    counts = dataset.counts["messages"]
    assert (counts.rows_read, counts.rows_used, counts.rows_duplicate) == (35, 2, 33)
    assert dataset.duplicates_by_shop.sort_index().to_dict() == {"S1": 29, "S2": 4}
    if engine == "pandas":  # the weekly job's engine: it holds the used rows it counts
        assert message_rows_by_shop(dataset)["read"].to_dict() == {"S1": 30, "S2": 5}
