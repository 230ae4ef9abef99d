"""A data folder's tables: which files hold them, their columns, and the raw table type."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cs_metrics.errors import InputError

TABLES: dict[str, tuple[str, ...]] = {
    "messages": ("shop_id", "conversation_id", "message_id", "sender_role", "sent_at"),
    "ratings": ("shop_id", "conversation_id", "rating", "rated_at"),
    "holiday_mode": ("shop_id", "start", "end"),
    "shops": ("shop_id",),
}


OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "messages": ("sender_id", "message_type", "content"),
    "ratings": (),
    "holiday_mode": (),
    "shops": ("name", "market", "timezone"),
}


REQUIRED_SOMEWHERE = frozenset(c for columns in TABLES.values() for c in columns)
"""Columns some table requires (a JSON Lines block with one of them all null is read line by
line, which tells a key never written from a key written as null)."""


TIMESTAMP_COLUMNS = frozenset({"sent_at", "rated_at", "start", "end"})


FORMATS = ("csv", "parquet", "jsonl")


ROW = "row_number"
"""Column holding each row's 1-based position among the file's data rows (header excluded)."""


LINE_BYTES_MAX = 1 << 26
"""The longest line of a CSV or JSON Lines file (64 MiB): a longer one is no message, and the
readers would take minutes and gigabytes on it."""


def size_text(count: int) -> str:
    """A limit in bytes as people read it."""
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count:,} bytes"


PARSE_ERROR = "_parse_error"
"""Column set on rows the reader could not split into fields (e.g. a JSON line, no object)."""


@dataclass(frozen=True)
class RawTable:
    """One input table as read: text columns (typed for Parquet timestamps), plus its origin."""

    name: str
    path: Path
    frame: pd.DataFrame


def table_paths(folder: Path) -> dict[str, Path]:
    """The file of each table present in `folder`; two formats of one table is an error."""
    if not folder.is_dir():
        raise InputError(f"{folder}: data folder not found")
    found: dict[str, Path] = {}
    for name in TABLES:
        files = [folder / f"{name}.{ext}" for ext in FORMATS]
        # A file named just `messages` (no extension) is no table: its format is unknown.
        present = [p for p in files if p.is_file()]
        if is_parquet_dataset(folder / name):
            present.append(folder / name)
        if len(present) > 1:
            names = ", ".join(p.name for p in present)
            raise InputError(f"{folder}: table {name} is given in two formats ({names}); keep one")
        if present:
            found[name] = present[0]
    if "messages" not in found:
        raise InputError(
            f"{folder}: messages table not found "
            "(messages.csv, .parquet, .jsonl or a messages/ folder of Parquet files)"
        )
    return found


def is_parquet_dataset(path: Path) -> bool:
    """A folder of Parquet files, e.g. Hive partitions `messages/date=2026-11-16/part-0.parquet`."""
    return path.is_dir() and bool(dataset_files(path))


def dataset_files(folder: Path) -> list[Path]:
    """The `.parquet` files under a folder, in path order, through symbolic links too.

    A partition folder or file that is a symbolic link (a partition kept on another disk) is read
    like any other: skipping it would lose its rows without a word. A link that loops back to a
    folder it is inside, or that leads nowhere, is an InputError.
    """
    found: list[Path] = []
    for top, folders, files in os.walk(folder, followlinks=True):
        here = Path(top)
        # The folders walked through to get here, as they really are: a link back to one loops.
        parts = here.relative_to(folder).parts
        walked = {folder.joinpath(*parts[:i]).resolve() for i in range(len(parts) + 1)}
        for name in folders:
            inner = (here / name).resolve()
            if inner in walked:
                raise InputError(
                    f"{here / name}: a symbolic link loops back to {inner}; remove the link"
                )
        for name in files:
            if not name.endswith(".parquet"):
                continue
            file = here / name
            if not file.exists():
                raise InputError(f"{file}: a symbolic link to a file that does not exist")
            found.append(file)
    return sorted(found)
