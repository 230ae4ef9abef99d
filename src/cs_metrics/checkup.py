"""Check a data folder without computing anything: per table, what was read, used and set aside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics.engines import Engine
from cs_metrics.files import iso_utc
from cs_metrics.pipeline import METRICS_ONLY, Dataset, MessagesSummary, load
from cs_metrics.policy import Policy
from cs_metrics.readers import TABLES, table_paths
from cs_metrics.reasons import Warn

CLEAN, PROBLEMS, UNUSABLE = "clean", "problems", "unusable"
EXIT_STATUS = {CLEAN: 0, PROBLEMS: 1, UNUSABLE: 2}
"""Exit status of `cs-metrics validate` per status (unusable input arrives as an InputError)."""
SHOWN_SHOPS = 5
"""How many shop ids a table's entry lists (the count covers all of them)."""
TIMESTAMPS: dict[str, tuple[str, ...]] = {
    "messages": ("sent_at",),
    "ratings": ("rated_at",),
    "holiday_mode": ("start", "end"),
    "shops": (),
}


@dataclass(frozen=True)
class UsedRows:
    """What a table's checkup says of its used (good, non-duplicate) rows."""

    first: pd.Timestamp | None
    """The earliest instant in the table's time columns (None when there is none)."""
    last: pd.Timestamp | None
    shop_ids: pd.Index


def checkup(
    folder: Path,
    policy: Policy,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Per table: rows read/used/quarantined (by reason), warnings, time range, shops; a status.

    The messages are loaded by `engine` (default: in memory); only their summary is used.
    Unusable input (missing file or column, unreadable file, bad --date-format) is not a status
    here: `load` raises its InputError/UsageError, which the CLI maps to exit 2.
    """
    # Only the columns the checks look at: message text and sender ids are never checked.
    dataset = load(
        folder,
        policy,
        message_columns=METRICS_ONLY,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
        engine=engine,
    )
    used = {
        name: used_rows(frame_of(dataset, name), name)
        for name in dataset.counts
        if name != "messages"
    }
    messages = dataset.summary
    assert messages is not None  # `load` always summarises the messages
    return checkup_of(folder, dataset, {"messages": used_messages(messages), **used})


def checkup_of(folder: Path, dataset: Dataset, used: dict[str, UsedRows]) -> dict[str, Any]:
    """The checkup of a loaded folder, given each table's used rows in brief."""
    dataset.check_usable(folder)
    paths = table_paths(folder)
    tables = {name: table_entry(dataset, name, paths[name], used[name]) for name in dataset.counts}
    warnings = [warning_entry(line) for line in dataset.warnings]
    problems = bool(warnings) or any(t["rows_quarantined"] for t in tables.values())
    return {
        "data": str(folder),
        "status": PROBLEMS if problems else CLEAN,
        "tables": tables,
        "shops_found": len(dataset.shop_ids),
        "shop_ids": [str(s) for s in dataset.shop_ids[:SHOWN_SHOPS]],
        "warnings": warnings,
    }


def table_entry(dataset: Dataset, name: str, path: Path, used: UsedRows) -> dict[str, Any]:
    """One table's checkup: counts, quarantined rows by reason, warnings by code, range, shops."""
    reasons = dataset.quarantine.reasons(name).sort_index()  # counts kept, not the rows
    warned: dict[str, int] = {}
    for line in dataset.warnings:
        if getattr(line, "table", None) == name:
            warned[line.code] = warned.get(line.code, 0) + line.rows  # type: ignore[attr-defined]
    return {
        "file": path.name,
        **dataset.counts[name].as_dict(),
        "quarantined_by_reason": {str(k): int(v) for k, v in reasons.items()},
        "warnings_by_code": dict(sorted(warned.items())),
        "time_from": iso_utc(used.first, zulu=True),
        "time_to": iso_utc(used.last, zulu=True),
        "shops_found": len(used.shop_ids),
        "shop_ids": sorted(str(s) for s in used.shop_ids)[:SHOWN_SHOPS],
    }


def frame_of(dataset: Dataset, name: str) -> pd.DataFrame:
    """The good, non-duplicate rows of one table."""
    frames = {
        "messages": dataset.messages,
        "ratings": dataset.ratings,
        "holiday_mode": dataset.holiday_mode,
        "shops": dataset.shops,
    }
    return frames[name]


def used_rows(frame: pd.DataFrame, name: str) -> UsedRows:
    """A table's used rows in brief: the range of its time columns and its distinct shops."""
    shops = pd.Index(frame["shop_id"].dropna().unique()) if "shop_id" in frame else pd.Index([])
    first, last = time_range(frame, TIMESTAMPS[name])
    return UsedRows(first, last, shops)


def used_messages(summary: MessagesSummary) -> UsedRows:
    """The used messages in brief, from their summary (whatever engine holds them)."""
    return UsedRows(summary.earliest, summary.latest, summary.shop_ids)


def time_range(
    used: pd.DataFrame, columns: tuple[str, ...]
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The earliest and latest instant in `columns` (None when there is none)."""
    values = [used[c].dropna() for c in columns if c in used and len(used[c].dropna())]
    if not values:
        return None, None
    return min(v.min() for v in values), max(v.max() for v in values)


def warning_entry(line: str) -> dict[str, Any]:
    """A warning as data: table (None when about several), code, rows and the message."""
    return {
        "table": getattr(line, "table", None),
        "code": getattr(line, "code", Warn.TIMEZONE_DEFAULTED.value),
        "rows": getattr(line, "rows", None),
        "message": str(line),
    }


def checkup_text(report: dict[str, Any]) -> str:
    """The checkup for people: one aligned line per table, then reasons, warnings and shops."""
    head = ("table", "file", "read", "used", "quarantined", "duplicate", "from", "to", "shops")
    rows = [head]
    for name in (n for n in TABLES if n in report["tables"]):
        t = report["tables"][name]
        rows.append(
            (
                name,
                t["file"],
                str(t["rows_read"]),
                str(t["rows_used"]),
                str(t["rows_quarantined"]),
                str(t["rows_duplicate"]),
                t["time_from"] or "-",
                t["time_to"] or "-",
                str(t["shops_found"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    numeric = {2, 3, 4, 5, 8}
    lines = [f"data: {report['data']}", f"status: {report['status']}", ""]
    for row in rows:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    reasons = [
        (name, code, count)
        for name, t in report["tables"].items()
        for code, count in t["quarantined_by_reason"].items()
    ]
    if reasons:
        lines += ["", "quarantined rows by reason:"]
        lines += aligned(reasons)
    codes = [
        (name, code, count)
        for name, t in report["tables"].items()
        for code, count in t["warnings_by_code"].items()
    ]
    if codes:
        lines += ["", "warnings by code (rows):"]
        lines += aligned(codes)
    if report["warnings"]:
        lines += ["", "warnings:"]
        lines += [f"  {w['message']}" for w in report["warnings"]]
    shown = ", ".join(report["shop_ids"])
    more = report["shops_found"] - len(report["shop_ids"])
    lines += ["", f"shops found: {report['shops_found']}" + (f" ({shown}" if shown else "")]
    if shown:
        lines[-1] += f" and {more} more)" if more else ")"
    return "\n".join(lines) + "\n"


def aligned(rows: list[tuple[str, str, int]]) -> list[str]:
    """`table  code  count` lines with aligned columns."""
    first = max(len(r[0]) for r in rows)
    second = max(len(r[1]) for r in rows)
    return [f"  {t.ljust(first)}  {c.ljust(second)}  {n}" for t, c, n in rows]
