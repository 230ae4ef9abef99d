"""What every importer shares: the summary of an import and atomic writes of the tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cs_metrics import files
from cs_metrics.errors import UsageError
from cs_metrics.readers import OPTIONAL_COLUMNS, TABLES

MESSAGE_COLUMNS = TABLES["messages"] + OPTIONAL_COLUMNS["messages"]
SHOP_COLUMNS = TABLES["shops"] + OPTIONAL_COLUMNS["shops"]
TABLE_FORMATS = ("csv", "parquet", "jsonl")

# --- TikTok Shop Customer Service API ------------------------------------------------------


# --- IBM Twitter customer care ----------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    """A source record (dump page or conversation) that was not imported, and why."""

    file: str
    line: int
    reason: str


@dataclass
class ImportSummary:
    """What an import read, skipped, dropped and wrote."""

    source: str
    records_read: int = 0
    """Dump lines (pages) read, or conversations read."""
    records_skipped: list[Skipped] = field(default_factory=list)
    messages_written: int = 0
    duplicates_dropped: int = 0
    """Messages whose (shop_id, message_id) was already imported (overlapping pages)."""
    unknown_roles: int = 0
    """Messages whose sender role is not known: imported as `system`."""
    unknown_types: int = 0
    """Messages whose type is not known: imported as `system`."""
    bad_messages: int = 0
    """Message entries that are not objects (left out) or lack an id or time (written with the
    value missing, so that loading the folder quarantines them)."""
    files_written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def pages_read(self) -> int:
        """Alias of records_read for dump imports."""
        return self.records_read

    @property
    def pages_skipped(self) -> int:
        """How many records were skipped."""
        return len(self.records_skipped)

    def lines(self) -> list[str]:
        """A short human-readable account, one fact per line (for the command line)."""
        out = [
            f"{self.source}: {self.records_read} record(s) read, "
            f"{len(self.records_skipped)} skipped, {self.messages_written} message(s) written",
        ]
        if self.duplicates_dropped:
            out.append(f"{self.duplicates_dropped} duplicate message(s) dropped")
        if self.unknown_roles or self.unknown_types:
            out.append(
                f"{self.unknown_roles} unknown sender role(s) and {self.unknown_types} unknown "
                "message type(s) imported as system"
            )
        if self.bad_messages:
            out.append(f"{self.bad_messages} malformed message(s) (left out or quarantined later)")
        out.extend(f"skipped {s.file}:{s.line}: {s.reason}" for s in self.records_skipped[:20])
        if len(self.records_skipped) > 20:
            out.append(f"... and {len(self.records_skipped) - 20} more skipped")
        out.extend(self.notes)
        out.extend(f"wrote {p}" for p in self.files_written)
        return out


# ============================================================================================
# TikTok Shop API dump -> SPEC tables
# ============================================================================================


# --------------------------------------------------------------------------------------------
# SPEC tables -> TikTok Shop API dump (the inverse, for the round-trip test and demos)
# --------------------------------------------------------------------------------------------


# ============================================================================================
# IBM Twitter customer care -> SPEC tables
# ============================================================================================


# ============================================================================================
# Writing
# ============================================================================================


def refuse_other_formats(data: Path, table: str, fmt: str) -> None:
    """Stop before writing when `data` holds `table` in another format (SPEC 1 forbids two)."""
    others = [data / f"{table}.{ext}" for ext in TABLE_FORMATS if ext != fmt]
    present = [p.name for p in others if p.exists()]
    if present:
        raise UsageError(
            f"{data}: already holds {', '.join(present)}; remove it before importing {table}"
        )


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as Parquet atomically."""
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    files.write_atomic(path, buffer.getvalue().to_pybytes())
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame as UTF-8 CSV atomically."""
    files.write_atomic(path, frame.to_csv(index=False, lineterminator="\n"))
    return path
