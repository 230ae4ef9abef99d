"""Read the input tables of a data folder as raw text columns, one row per input row.

`folder` finds the tables and names their columns, `csv`, `jsonl` and `parquet` read each format
in blocks, and `blocks` maps a function over the blocks of a table (or of one piece of it) with
the rows numbered as in the file. The rest of the package imports from here.
"""

from cs_metrics.readers.blocks import (
    Piece,
    map_blocks,
    map_piece,
    read_folder,
    read_table,
    table_pieces,
)
from cs_metrics.readers.csv import csv_separator
from cs_metrics.readers.folder import (
    FORMATS,
    OPTIONAL_COLUMNS,
    PARSE_ERROR,
    ROW,
    TABLES,
    TIMESTAMP_COLUMNS,
    RawTable,
    is_parquet_dataset,
    table_paths,
)
from cs_metrics.readers.parquet import RowGroups, parquet_files, row_groups_up_to

__all__ = [
    "FORMATS",
    "OPTIONAL_COLUMNS",
    "PARSE_ERROR",
    "ROW",
    "TABLES",
    "TIMESTAMP_COLUMNS",
    "Piece",
    "RawTable",
    "RowGroups",
    "csv_separator",
    "is_parquet_dataset",
    "map_blocks",
    "map_piece",
    "parquet_files",
    "read_folder",
    "read_table",
    "row_groups_up_to",
    "table_paths",
    "table_pieces",
]
