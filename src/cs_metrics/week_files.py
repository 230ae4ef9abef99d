"""One evaluated week on disk: `OUT/<as-of>/` written from, and read back into, `WeekResults`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cs_metrics import files, history, output
from cs_metrics.errors import UsageError
from cs_metrics.pipeline import Dataset


def week_folder(out: Path, as_of: dt.date) -> Path:
    """OUT/<as-of>/."""
    return out / as_of.isoformat()


CSV_CELLS = "csv_cells"
"""The metrics.json key saying how the week's CSVs hold text cells: `spreadsheet_safe` (a
formula-like cell has one more leading `'`) or `raw` (absent: raw, as older versions wrote)."""
PRIVATE_FILES = frozenset({"chats.csv", "findings.csv"})
"""Files holding raw buyer data (ids, message text): readable by their owner only."""


def write_week(
    results: WeekResults, dataset: Dataset, out: Path, raw_csv: bool = False
) -> list[Path]:
    """Write metrics.json, metrics.csv, chats.csv, ratings.csv, holiday_mode.csv, quarantine/
    (CSV text cells spreadsheet-safe unless `raw_csv`)."""
    folder = week_folder(out, results.as_of)
    doc = {**results.doc, CSV_CELLS: "raw" if raw_csv else "spreadsheet_safe"}
    texts: dict[str, str | bytes] = {
        "metrics.json": output.to_json(doc),
        "metrics.csv": output.to_csv(results.doc["shops"], output.WEEKLY_CSV_FIELDS, raw=raw_csv),
        "chats.csv": output.chats_csv(results.chats, raw=raw_csv),
        "ratings.csv": files.csv_text(_iso_columns(results.ratings, ("rated_at",)), raw=raw_csv),
        "holiday_mode.csv": files.csv_text(
            _iso_columns(results.holiday_periods, ("start", "end")), raw=raw_csv
        ),
        "findings.csv": files.csv_text(_iso_columns(results.findings, ("sent_at",)), raw=raw_csv),
    }
    written = []
    for name, text in texts.items():
        mode = files.PRIVATE_MODE if name in PRIVATE_FILES else None
        files.write_atomic(folder / name, text, mode=mode)
        written.append(folder / name)
    quarantine = output.write_quarantine(dataset, folder / "quarantine")
    # A table with no bad rows this time: its file from an earlier run would be stale.
    for old in (folder / "quarantine").glob("*.csv"):
        if old not in quarantine:
            old.unlink()
    return written + quarantine


def _iso_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out and len(out):
            out[column] = files.iso_text(out[column].dt.tz_convert("UTC"))
    return out


def load_week(out: Path, as_of: dt.date, history_path: Path) -> WeekResults:
    """Read a stored week back from OUT/<as-of>/ and the history store (for re-rendering)."""
    folder = week_folder(out, as_of)
    metrics = folder / "metrics.json"
    if not metrics.exists():
        raise UsageError(f"{metrics}: no stored results for {as_of}; run `cs-metrics weekly` first")
    doc = json.loads(metrics.read_text(encoding="utf-8"))
    safe = doc.pop(CSV_CELLS, "raw") == "spreadsheet_safe"
    chats = _read_csv(
        folder / "chats.csv", ("received_at_utc", "responded_at_utc", "deadline_at_utc"), safe
    )
    shop_ids = [s["shop_id"] for s in doc["shops"]]
    hist = history.records(history_path, shop_ids)
    return WeekResults(
        as_of=as_of,
        doc=doc,
        chats=chats,
        ratings=_read_csv(folder / "ratings.csv", ("rated_at",), safe),
        holiday_periods=_read_csv(folder / "holiday_mode.csv", ("start", "end"), safe),
        findings=_read_csv(folder / "findings.csv", ("sent_at",), safe),
        history=hist.loc[hist["as_of"] <= as_of.isoformat()].reset_index(drop=True),
    )


def _read_csv(path: Path, instants: tuple[str, ...], safe: bool) -> pd.DataFrame:
    """A stored CSV as written from the results (`safe`: the spreadsheet quotes taken off)."""
    if not path.exists() or path.stat().st_size <= 1:
        return pd.DataFrame()
    text_columns = dict.fromkeys(
        (
            "shop_id",
            "conversation_id",
            "first_message_id",
            "buyer_id",
            "responder_id",
            "response_message_id",
            "message_id",
            "sender_id",
        ),
        "string",
    )
    frame = pd.read_csv(path, dtype=text_columns, keep_default_na=True)
    if safe:
        frame = files.spreadsheet_original(frame)
    for column in instants:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


@dataclass
class WeekResults:
    """Everything the Monday report needs about one evaluated week, as stored in OUT/<as-of>/."""

    as_of: dt.date
    doc: dict
    """metrics.json: SPEC 7 plus status, action, points, name and market per shop."""
    chats: pd.DataFrame
    """The week's chats, one row each (output.CHAT_COLUMNS)."""
    ratings: pd.DataFrame
    """The ratings counted in the week: shop_id, conversation_id, rating, rated_at."""
    holiday_periods: pd.DataFrame
    """Holiday Mode periods that touch the week: shop_id, start, end (NaT = still on)."""
    findings: pd.DataFrame
    """Compliance-scan findings of the week (may be empty)."""
    history: pd.DataFrame
    """Stored evaluations of these shops up to and including this week (history.COLUMNS)."""
