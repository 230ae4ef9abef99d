"""The block mapper: a table file read block by block in file order, rows numbered, each block
handed to a function (in threads), and pieces of a table that can be read alone."""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pyarrow as pa

import cs_metrics.readers.csv as csv_reader
from cs_metrics.errors import InputError
from cs_metrics.readers.csv import NextReader, csv_blocks
from cs_metrics.readers.folder import OPTIONAL_COLUMNS, ROW, TABLES, RawTable, table_paths
from cs_metrics.readers.frames import Missing, concat_blocks, first_line
from cs_metrics.readers.jsonl import jsonl_blocks
from cs_metrics.readers.parquet import (
    RowGroups,
    parquet_blocks,
    parquet_row_groups,
    read_parquet_dataset,
)


def read_table(name: str, path: Path, optional: tuple[str, ...] | None = None) -> RawTable:
    """Read one table file (required and wanted optional columns), check it, number its rows."""
    blocks = map_blocks(name, path, lambda block: block, optional)
    columns = list(blocks[0].columns) if blocks else [*TABLES[name], ROW]
    return RawTable(name, path, concat_blocks(blocks, columns))


T = TypeVar("T")


def map_blocks(
    name: str,
    path: Path,
    func: Callable[[pd.DataFrame], T],
    optional: tuple[str, ...] | None = None,
    groups: RowGroups | None = None,
    threads: int = 0,
    csv_block_bytes: int | None = None,
    first_row: int = 0,
    then: Callable[[T], T] | None = None,
    categories: tuple[str, ...] = (),
) -> list[T]:
    """`func` of each block of rows of a table file, in file order, rows numbered from 1.

    Files are read in blocks (CSV_BLOCK_BYTES or `csv_block_bytes` of CSV, JSONL_BLOCK_BYTES of
    JSON Lines, PARQUET_BLOCK_ROWS of Parquet, CHUNK_ROWS rows for the fallback readers), so a
    caller that keeps only what it needs of each block never holds the whole file. A CSV is
    read by Arrow's reader; one it refuses is read again by pandas' (the reference: the same
    values where both read a file), and one whose rows that cannot split, by the tolerant reader
    (results of an earlier attempt are dropped; a `func` with side effects sees rows numbered
    from 1 again). With `groups`, a Parquet table is read only in the row groups it keeps. With
    `threads`, `func` runs on that many threads while the next blocks are read (only for a
    `func` without side effects: calls may overlap). `then`, when given, takes each result here,
    one at a time in file order, and what it gives back is kept (the place for side effects).
    `first_row` rows come before the first one read (a piece of the table, see
    `table_pieces`): numbers continue from there. Columns named in `categories` come as pandas
    categories where the file keeps them as dictionaries (a Parquet file, its few-valued text
    columns); elsewhere they are text.
    """
    wanted = TABLES[name] + (OPTIONAL_COLUMNS[name] if optional is None else optional)
    # Looked up on the module at each call, so a test can narrow the chain.
    for reader in csv_reader.CSV_READERS:
        # pandas' reader turns its warnings into errors while it reads: with `func` on other
        # threads, their own warning filters could undo that or leave it on.
        workers = threads if reader == csv_reader.CSV_READERS[0] else 0
        try:
            blocks = _blocks(path, wanted, reader, groups, csv_block_bytes, categories)
            return _map_blocks(name, path, blocks, func, workers, first_row, then)
        except NextReader:
            continue
    raise AssertionError("the tolerant CSV reader refuses no file")


@dataclass(frozen=True)
class Piece:
    """A part of a table that can be read alone, e.g. by a Dask worker: some Parquet row groups,
    or the whole table (CSV and JSON Lines, whose rows cannot be found without reading all that
    comes before them: a quoted field may hold line breaks)."""

    path: Path
    groups: RowGroups | None
    """The row groups to read (None: the whole table)."""
    first_row: int
    """Rows of the table before the piece's first row (its rows are numbered from here)."""


def table_pieces(path: Path, parts: int, groups: RowGroups | None = None) -> list[Piece]:
    """The table cut into at most `parts` pieces of about equal rows, in read order.

    A Parquet table is cut between row groups (of `groups` when given, else all of them);
    any other table is one piece.
    """
    if not (path.is_dir() or path.suffix == ".parquet"):
        return [Piece(path, None, 0)]
    found = [
        (file, index, rows)
        for file, kept in parquet_row_groups(path).items()
        for index, rows in enumerate(kept)
        if groups is None or index in groups.keep.get(file, [])
    ]
    if not found:
        return [Piece(path, groups, 0)]
    total = sum(rows for *_, rows in found)
    share = max(1, -(-total // max(1, parts)))
    pieces: list[Piece] = []
    keep: dict[Path, list[int]] = {}
    first = done = 0
    for file, index, rows in found:
        keep.setdefault(file, []).append(index)
        done += rows
        if done - first >= share:
            pieces.append(Piece(path, RowGroups(keep, 0, 0), first))
            keep, first = {}, done
    if keep:
        pieces.append(Piece(path, RowGroups(keep, 0, 0), first))
    return pieces


def map_piece(
    name: str,
    piece: Piece,
    func: Callable[[pd.DataFrame], T],
    optional: tuple[str, ...] | None = None,
) -> list[T]:
    """`map_blocks` over one piece of a table: the rows it reads are numbered as in the table."""
    return map_blocks(name, piece.path, func, optional, piece.groups, first_row=piece.first_row)


def _blocks(
    path: Path,
    wanted: tuple[str, ...],
    reader: str,
    groups: RowGroups | None = None,
    csv_block_bytes: int | None = None,
    categories: tuple[str, ...] = (),
) -> Iterator[pd.DataFrame | Missing]:
    """The blocks of a table file (nothing is read before the first one is asked for)."""
    if path.is_dir():
        yield read_parquet_dataset(path, wanted, groups)
    elif path.suffix == ".parquet" and groups is None:
        yield from parquet_blocks(path, wanted, categories)
    elif path.suffix == ".parquet":
        yield read_parquet_dataset(path, wanted, groups)
    elif path.suffix == ".jsonl":
        yield from jsonl_blocks(path, wanted)
    else:
        yield from csv_blocks(path, wanted, reader, csv_block_bytes)


def _map_blocks(
    name: str,
    path: Path,
    blocks: Iterator[pd.DataFrame | Missing],
    func: Callable[[pd.DataFrame], T],
    threads: int = 0,
    first_row: int = 0,
    then: Callable[[T], T] | None = None,
) -> list[T]:
    after = then or _same
    results: list[T] = []
    running: deque[Future[T]] = deque()
    rows = first_row
    first = True
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except (InputError, NextReader):
                raise
            except (OSError, UnicodeDecodeError, ValueError, pa.ArrowException, csv.Error) as exc:
                raise InputError(f"{path}: unreadable file ({first_line(exc)})") from exc
            if isinstance(block, Missing):
                _check_columns(name, path, block.present)
                continue
            if first:
                _check_columns(name, path, block.columns)
                first = False
            block = block.reset_index(drop=True)
            block[ROW] = pd.RangeIndex(rows + 1, rows + len(block) + 1)
            rows += len(block)
            if not threads:
                results.append(after(func(block)))
                continue
            running.append(pool.submit(func, block))
            # At most `threads` blocks wait, so memory holds a few blocks, not the file.
            if len(running) > threads:
                results.append(after(running.popleft().result()))
        results.extend(after(future.result()) for future in running)
    return results


def _same(result: T) -> T:
    return result


def _check_columns(name: str, path: Path, columns: Iterable[str]) -> None:
    missing = [c for c in TABLES[name] if c not in set(columns)]
    if missing:
        raise InputError(f"{path}: required column missing: {', '.join(missing)}")


def read_folder(
    folder: Path, message_columns: tuple[str, ...] | None = None
) -> dict[str, RawTable]:
    """Read every table present in `folder` (messages: only the optional columns asked for)."""
    return {
        name: read_table(name, path, message_columns if name == "messages" else None)
        for name, path in table_paths(folder).items()
    }
