"""Messages checked block by block give the same dataset as one block (blocks.map_blocks)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cs_metrics.generate import GeneratorConfig, generate, write_tables
from cs_metrics.pipeline import Dataset, evaluate, load
from cs_metrics.policy import Policy
from cs_metrics.readers import csv as csv_reader
from cs_metrics.readers import jsonl, parquet

MANGLED = pd.DataFrame(
    {
        "shop_id": ["shop_0001"] * 4,
        "conversation_id": ["7.9E+18", "7.9E+18", "c-x", "c-x"],
        "message_id": ["1.2E+18", "1.2E+18", "41.0", "42.0"],
        "sender_role": ["buyer", "seller", "buyer", "buyer"],
        "sent_at": ["2026-11-17T01:00:00Z"] * 4,
    }
)
"""Spreadsheet-mangled ids, one collapsed into a duplicate, added in several blocks."""


@pytest.fixture(scope="module", params=["csv", "jsonl", "parquet"])
def messy(request: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 12-shop folder with bad rows, plus duplicates and mangled ids spread out."""
    folder = tmp_path_factory.mktemp(f"blocks_{request.param}")
    tables = generate(
        GeneratorConfig(shops=12, start=dt.date(2026, 11, 9), days=15, messages=3000, seed=3)
    )
    messages = tables["messages"]
    repeats = messages.sample(40, random_state=1)  # duplicates, some far from their first row
    tables["messages"] = pd.concat(
        [messages.iloc[:900], MANGLED, messages.iloc[900:], repeats, MANGLED], ignore_index=True
    )
    write_tables(tables, folder, "csv")
    text = pd.read_csv(folder / "messages.csv", dtype=str, keep_default_na=False)
    if request.param == "jsonl":
        text.to_json(folder / "messages.jsonl", orient="records", lines=True, force_ascii=False)
        (folder / "messages.csv").unlink()
    if request.param == "parquet":
        text.to_parquet(folder / "messages.parquet", row_group_size=500)
        (folder / "messages.csv").unlink()
    return folder


def loaded(folder: Path, block_rows: int, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    """The folder loaded with blocks of `block_rows` rows (checked on two threads)."""
    monkeypatch.setattr(csv_reader, "CHUNK_ROWS", block_rows)
    monkeypatch.setattr(jsonl, "CHUNK_ROWS", block_rows)
    monkeypatch.setattr(parquet, "PARQUET_BLOCK_ROWS", block_rows)
    # CSV and JSON Lines blocks are cut by size: about `block_rows` rows of this data.
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", min(block_rows * 60, 2**25))
    monkeypatch.setattr(jsonl, "JSONL_BLOCK_BYTES", min(block_rows * 150, 2**25))
    return load(folder, Policy())


def test_many_blocks_give_the_one_block_dataset(
    messy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Used rows, quarantine, counts and warnings do not depend on the block size."""
    whole = loaded(messy, 10**9, monkeypatch)
    blocks = loaded(messy, 97, monkeypatch)
    assert whole.counts["messages"].rows_duplicate >= 40
    assert whole.counts["messages"].rows_quarantined > 0
    assert blocks.counts == whole.counts
    assert list(blocks.warnings) == list(whole.warnings)
    assert any("scientific notation" in w and "in 4 row(s)" in w for w in whole.warnings)
    assert list(blocks.shop_ids) == list(whole.shop_ids)
    pd.testing.assert_frame_equal(
        blocks.messages.drop(columns=["shop_key", "conversation_key"]),
        whole.messages.drop(columns=["shop_key", "conversation_key"]),
    )
    pd.testing.assert_frame_equal(blocks.quarantine["messages"], whole.quarantine["messages"])
    week = (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    pd.testing.assert_frame_equal(
        evaluate(blocks, *week, Policy()).metrics, evaluate(whole, *week, Policy()).metrics
    )


def test_a_required_column_missing_from_every_object_is_found_after_the_last_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON Lines columns are known only at the end: the error still comes, naming the column."""
    from cs_metrics.errors import InputError

    monkeypatch.setattr(csv_reader, "CHUNK_ROWS", 1)
    monkeypatch.setattr(jsonl, "CHUNK_ROWS", 1)
    monkeypatch.setattr(jsonl, "JSONL_BLOCK_BYTES", 1)
    (tmp_path / "messages.jsonl").write_text(
        '{"shop_id":"S1","conversation_id":"c1","message_id":"m1","sender_role":"buyer"}\n' * 3
    )
    with pytest.raises(InputError, match="required column missing: sent_at"):
        load(tmp_path, Policy())


# Pieces of a table (what a Dask worker reads): the same rows, numbered as in the table.


def test_pieces_of_a_parquet_folder_read_the_rows_of_the_whole(tmp_path: Path) -> None:
    """Row groups of two files cut into pieces: together, the rows and numbers of one read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cs_metrics.readers import map_blocks, map_piece, table_pieces

    folder = tmp_path / "messages"
    folder.mkdir()
    for number in range(2):
        ids = [f"m{number}-{i}" for i in range(10)]
        table = pa.table(
            {
                "shop_id": ["S1"] * 10,
                "conversation_id": ["c1"] * 10,
                "message_id": ids,
                "sender_role": ["buyer"] * 10,
                "sent_at": [f"2026-11-17T10:00:{i:02d}Z" for i in range(10)],
            }
        )
        pq.write_table(table, folder / f"part-{number}.parquet", row_group_size=3)
    pieces = table_pieces(folder, 3)
    # Row groups of 3, 3, 3 and 1 rows per file; pieces of at least 7 rows (20 / 3).
    assert [p.first_row for p in pieces] == [0, 9, 16]
    whole = pd.concat(map_blocks("messages", folder, lambda block: block), ignore_index=True)
    parts = [b for piece in pieces for b in map_piece("messages", piece, lambda block: block)]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert whole["row_number"].tolist() == list(range(1, 21))


def test_a_csv_is_one_piece(tmp_path: Path) -> None:
    """A CSV cannot be cut safely (a quoted field may hold line breaks): one piece, whole."""
    from cs_metrics.readers import table_pieces

    path = tmp_path / "messages.csv"
    path.write_text("shop_id,conversation_id,message_id,sender_role,sent_at\n")
    (piece,) = table_pieces(path, 8)
    assert (piece.groups, piece.first_row) == (None, 0)


@pytest.mark.parametrize("threads", [0, 2])
def test_then_takes_each_result_once_in_file_order(
    messy: Path, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`func` may run on threads; `then` sees every block's result here, one at a time, in file
    order, and its own result is what is kept."""
    import threading

    from cs_metrics.readers import ROW, map_blocks, table_paths

    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 20_000)
    monkeypatch.setattr(jsonl, "JSONL_BLOCK_BYTES", 40_000)
    monkeypatch.setattr(parquet, "PARQUET_BLOCK_ROWS", 300)
    seen: list[tuple[int, int]] = []
    here = threading.get_ident()

    def first_and_last(block: pd.DataFrame) -> tuple[int, int]:
        return int(block[ROW].iloc[0]), int(block[ROW].iloc[-1])

    def then(rows: tuple[int, int]) -> tuple[int, int]:
        assert threading.get_ident() == here
        seen.append(rows)
        return rows[0], -rows[1]

    path = table_paths(messy)["messages"]
    kept = map_blocks("messages", path, first_and_last, threads=threads, then=then)
    assert len(seen) > 3
    assert kept == [(a, -b) for a, b in seen]
    # Every row once, blocks in file order.
    assert [a for a, _ in seen] == [1] + [b + 1 for _, b in seen[:-1]]
