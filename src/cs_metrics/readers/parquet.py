"""Parquet tables (one file or a folder of files, Hive partitions allowed) in blocks of rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cs_metrics.readers.folder import dataset_files
from cs_metrics.readers.frames import arrow_to_frame

EARLIEST_LOCAL = pd.Timedelta(hours=16)
"""More than any zone has ever been ahead of UTC (today UTC+14; America/Metlakatla's local mean
time before 1867, +15:13:42): a naive local time is an instant no earlier than the same wall time
read as UTC, minus this."""


@dataclass(frozen=True)
class RowGroups:
    """Row groups of a Parquet table to read (per file, in read order); the rest are left out."""

    keep: dict[Path, list[int]]
    skipped_groups: int
    skipped_rows: int


def row_groups_up_to(path: Path, cutoff: pd.Timestamp) -> RowGroups:
    """Row groups of a Parquet messages table up to the last that may hold a message by `cutoff`.

    Only groups at the end of the read order are left out, and only when the files' own sent_at
    statistics prove every message in them was sent after the cut-off (typed timestamps or
    dates; a naive one is taken at the earliest instant it can be in any zone). SPEC 4 ignores
    such messages, so the metrics do not change; only `input` and the shops seen cover fewer
    rows.
    """
    groups: list[tuple[Path, int, int, bool]] = []
    for file in parquet_files(path):
        metadata = pq.read_metadata(file)
        column = _column_index(metadata, "sent_at")
        for index in range(metadata.num_row_groups):
            group = metadata.row_group(index)
            earliest = None if column is None else _earliest_instant(group.column(column))
            after = earliest is not None and earliest > cutoff
            groups.append((file, index, group.num_rows, after))
    last = max((i for i, (*_, after) in enumerate(groups) if not after), default=-1)
    keep: dict[Path, list[int]] = {}
    for file, index, _, _ in groups[: last + 1]:
        keep.setdefault(file, []).append(index)
    skipped = groups[last + 1 :]
    return RowGroups(keep, len(skipped), sum(rows for _, _, rows, _ in skipped))


def parquet_row_groups(path: Path) -> dict[Path, list[int]]:
    """The rows of each row group of each file of a Parquet table, files in read order."""
    return {
        file: [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        for file in parquet_files(path)
        for meta in [pq.read_metadata(file)]
    }


def parquet_files(path: Path) -> list[Path]:
    """The files of a Parquet table (one file, or a dataset folder's files in path order)."""
    return dataset_files(path) if path.is_dir() else [path]


def _column_index(metadata: pq.FileMetaData, name: str) -> int | None:
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    return names.index(name) if name in names else None


def _earliest_instant(column: pq.ColumnChunkMetaData) -> pd.Timestamp | None:
    """The earliest instant a typed timestamp column chunk can hold, by its statistics."""
    stats = column.statistics
    if stats is None or not stats.has_min_max:
        return None
    low = stats.min
    if isinstance(low, dt.datetime) and low.tzinfo is not None:
        return pd.Timestamp(low)
    if isinstance(low, dt.date):  # naive date-time or date: local time in some zone
        return pd.Timestamp(low).tz_localize("UTC") - EARLIEST_LOCAL
    return None


PARQUET_BLOCK_ROWS = 2**20
"""Rows per block of a Parquet file: a block is checked while the next one is read."""


def parquet_blocks(
    path: Path, wanted: tuple[str, ...], categories: tuple[str, ...] = ()
) -> Iterator[pd.DataFrame]:
    """Parquet in blocks of rows: timestamp columns stay typed; everything else becomes text,
    but for the `categories` read as dictionaries (FEW_VALUES), which stay categories."""
    schema = pq.read_schema(path)
    columns = [c for c in schema.names if c in wanted]
    file = pq.ParquetFile(path, read_dictionary=_few_values(schema, columns))
    empty = True
    for batch in file.iter_batches(batch_size=PARQUET_BLOCK_ROWS, columns=columns):
        empty = False
        yield arrow_to_frame(pa.Table.from_batches([batch]), categories)
    if empty:
        yield arrow_to_frame(file.schema_arrow.empty_table().select(columns))


FEW_VALUES = ("shop_id", "sender_role", "message_type", "timezone", "market")
"""Text columns with few distinct values: read from Parquet as dictionaries, several times faster
than decoding every row's text (they are expanded to text once read)."""


def _few_values(schema: pa.Schema, columns: list[str]) -> list[str]:
    """The FEW_VALUES columns among `columns` that Parquet stores as text."""
    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)
    return [
        c
        for c in columns
        if c in FEW_VALUES and any(is_text(schema.field(c).type) for is_text in text)
    ]


def read_parquet_dataset(
    path: Path, wanted: tuple[str, ...], groups: RowGroups | None = None
) -> pd.DataFrame:
    """A Parquet dataset folder (Hive partitions allowed) or file, in path order, then row order.

    Every row group is read unless `groups` leaves some out (see `row_groups_up_to`).
    """
    files = parquet_files(path)
    hive = (
        {"partitioning": _hive_text(path, files), "partition_base_dir": str(path)}
        if path.is_dir()
        else {}
    )
    schema = _one_schema(files, hive.get("partitioning"))
    columns = [c for c in schema.names if c in wanted]
    options = ds.ParquetReadOptions(dictionary_columns=set(_few_values(schema, columns)))
    dataset = ds.dataset(
        files, schema=schema, format=ds.ParquetFileFormat(read_options=options), **hive
    )
    if groups is not None:
        fragments = [
            fragment.subset(row_group_ids=groups.keep[Path(fragment.path)])
            for fragment in dataset.get_fragments()
            if Path(fragment.path) in groups.keep
        ]
        dataset = ds.FileSystemDataset(fragments, dataset.schema, dataset.format)
    return arrow_to_frame(dataset.to_table(columns=columns))


def _one_schema(files: list[Path], partitioning: ds.Partitioning | None) -> pa.Schema:
    """The schema every file of a dataset is read as.

    Arrow would take the first file's: an empty partition whose columns are typed null (pandas
    and this project's `generate` write such) made every later file's text fail to cast. Null
    columns take the other files' type; a column typed differently in two files is read as text.
    """
    schemas = [pq.read_schema(file) for file in files]
    if partitioning is not None:
        schemas.append(partitioning.schema)
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    kinds: dict[str, set[pa.DataType]] = {}
    for schema in schemas:
        for field in schema:
            kinds.setdefault(field.name, set()).add(field.type)
    return pa.schema(
        [
            (
                name,
                next(iter(typed))
                if len(typed := kinds[name] - {pa.null()}) == 1
                else pa.null()
                if not typed
                else pa.large_string(),
            )
            for name in kinds
        ]
    )


def _hive_text(folder: Path, files: list[Path]) -> ds.Partitioning:
    """Hive partitions of a dataset folder, every value as text (`shop_id=007` is not shop 7,
    which Arrow's own inference would make it)."""
    keys = {
        part.split("=", 1)[0]: None
        for file in files
        for part in file.relative_to(folder).parts[:-1]
        if "=" in part
    }
    return ds.partitioning(pa.schema([(key, pa.string()) for key in keys]), flavor="hive")
