"""Read the input tables of a data folder as raw text columns, one row per input row."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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
FORMATS = ("csv", "parquet", "jsonl")
ROW = "row_number"
"""Column holding each row's 1-based position among the file's data rows (header excluded)."""
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
        candidates = [folder / f"{name}.{ext}" for ext in FORMATS]
        present = [p for p in candidates if p.exists()]
        if len(present) > 1:
            names = ", ".join(p.name for p in present)
            raise InputError(f"{folder}: table {name} is given in two formats ({names}); keep one")
        if present:
            found[name] = present[0]
    if "messages" not in found:
        raise InputError(f"{folder}: messages table not found (messages.csv, .parquet or .jsonl)")
    return found


def read_table(name: str, path: Path, optional: tuple[str, ...] | None = None) -> RawTable:
    """Read one table file (required and wanted optional columns), check it, number its rows."""
    readers = {".csv": _read_csv, ".parquet": _read_parquet, ".jsonl": _read_jsonl}
    wanted = TABLES[name] + (OPTIONAL_COLUMNS[name] if optional is None else optional)
    try:
        frame = readers[path.suffix](path, wanted)
    except InputError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, pa.ArrowException, csv.Error) as exc:
        raise InputError(f"{path}: unreadable file ({_first_line(exc)})") from exc
    missing = [c for c in TABLES[name] if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: required column missing: {', '.join(missing)}")
    frame[ROW] = pd.RangeIndex(1, len(frame) + 1)
    return RawTable(name, path, frame.reset_index(drop=True))


def read_folder(
    folder: Path, message_columns: tuple[str, ...] | None = None
) -> dict[str, RawTable]:
    """Read every table present in `folder` (messages: only the optional columns asked for)."""
    return {
        name: read_table(name, path, message_columns if name == "messages" else None)
        for name, path in table_paths(folder).items()
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_csv(path: Path, wanted: tuple[str, ...]) -> pd.DataFrame:
    """CSV as text; rows with too many fields are kept, flagged in PARSE_ERROR."""
    options = {
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "encoding": "utf-8-sig",
        "skip_blank_lines": True,
    }
    try:
        header = pd.read_csv(path, nrows=0, **options).columns
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: file is empty (no header row)") from exc
    usecols = [c for c in header if c in wanted]
    try:
        # All columns are read: with usecols the parser would not notice rows with extra fields.
        frame = pd.read_csv(path, engine="c", **options)[usecols]
    except pd.errors.ParserError:
        frame = _read_csv_tolerant(path, usecols, options)
    if PARSE_ERROR not in frame.columns:
        frame[PARSE_ERROR] = pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame


def _read_csv_tolerant(path: Path, usecols: list[str], options: dict) -> pd.DataFrame:
    """Slow path for a CSV with malformed rows: keep them as rows flagged malformed."""

    def on_bad(fields: list[str]) -> list[str]:
        return [*fields[: len(header)], ",".join(fields[len(header) :])]

    header = list(pd.read_csv(path, nrows=0, **options).columns)
    frame = pd.read_csv(
        path,
        engine="python",
        on_bad_lines=on_bad,
        names=[*header, "_extra"],
        header=None,
        skiprows=1,
        **options,
    )
    flagged = frame.pop("_extra").fillna("").astype(str) != ""
    frame[PARSE_ERROR] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame.loc[flagged, PARSE_ERROR] = "row has more fields than the header"
    return frame[[*usecols, PARSE_ERROR]]


def _read_parquet(path: Path, wanted: tuple[str, ...]) -> pd.DataFrame:
    """Parquet: timestamp columns stay typed; everything else becomes text."""
    schema = pq.read_schema(path)
    columns = [c for c in schema.names if c in wanted]
    table = pq.read_table(path, columns=columns)
    return _arrow_to_frame(table)


def _arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table to a frame of text columns, keeping timestamp columns typed."""
    frame = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            frame[name] = column.to_pandas()
        elif pa.types.is_integer(column.type):
            frame[name] = column.to_pandas().astype("Int64").astype("string")
        else:
            frame[name] = (
                column.cast(pa.string()).to_pandas(types_mapper=pd.ArrowDtype).astype("string")
            )
    frame[PARSE_ERROR] = pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame


def _read_jsonl(path: Path, wanted: tuple[str, ...]) -> pd.DataFrame:
    """JSON Lines: one object per non-blank line; other lines are kept as flagged rows."""
    text = path.read_bytes().decode("utf-8-sig")
    lines = [line for line in io.StringIO(text, newline=None).read().split("\n") if line.strip()]
    records = [_json_object(line) for line in lines]
    objects = [r for r in records if isinstance(r, dict)]
    # With no object at all there are no keys to judge columns by: every line is a bad row.
    present = set().union(*(r.keys() for r in objects)) if objects else set(wanted)
    frame = pd.DataFrame(
        [r if isinstance(r, dict) else {} for r in records],
        columns=[c for c in wanted if c in present],
        index=pd.RangeIndex(len(records)),
    )
    for column in frame.columns:
        frame[column] = _json_values_as_text(frame[column])
    errors = [None if isinstance(r, dict) else r for r in records]
    frame[PARSE_ERROR] = pd.Series(errors, index=frame.index, dtype="string")
    return frame


def _json_object(line: str) -> dict | str:
    """A parsed JSON object, or the reason the line is not one."""
    try:
        value = json.loads(line)
    except ValueError:
        return "line is not valid JSON"
    return value if isinstance(value, dict) else "line is JSON but not an object"


def _json_values_as_text(values: pd.Series) -> pd.Series:
    """JSON scalars as text the way they were written (numbers stay whole, null is missing)."""

    def as_text(value: object) -> object:
        if value is None or (isinstance(value, float) and value != value):
            return pd.NA
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    return values.astype(object).map(as_text).astype("string")
