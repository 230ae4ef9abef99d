"""Messages checked block by block give the same dataset as one block (read.map_blocks)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cs_metrics.read as read
from cs_metrics.generate import GeneratorConfig, generate, write_tables
from cs_metrics.pipeline import Dataset, evaluate, load
from cs_metrics.policy import Policy

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
    monkeypatch.setattr(read, "CHUNK_ROWS", block_rows)
    monkeypatch.setattr(read, "PARQUET_BLOCK_ROWS", block_rows)
    # CSV and JSON Lines blocks are cut by size: about `block_rows` rows of this data.
    monkeypatch.setattr(read, "CSV_BLOCK_BYTES", min(block_rows * 60, 2**25))
    monkeypatch.setattr(read, "JSONL_BLOCK_BYTES", min(block_rows * 150, 2**25))
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

    monkeypatch.setattr(read, "CHUNK_ROWS", 1)
    monkeypatch.setattr(read, "JSONL_BLOCK_BYTES", 1)
    (tmp_path / "messages.jsonl").write_text(
        '{"shop_id":"S1","conversation_id":"c1","message_id":"m1","sender_role":"buyer"}\n' * 3
    )
    with pytest.raises(InputError, match="required column missing: sent_at"):
        load(tmp_path, Policy())
