"""Results as SPEC 7 JSON, CSV, a table for people, and the per-chat drill-down; atomic writes."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import column_taken
from cs_metrics.enforcement import STATUS_METRICS
from cs_metrics.files import (
    PRIVATE_MODE,
    Writer,
    csv_bytes,
    csv_text,
    csv_writer,
    iso_local,
    iso_text,
    iso_utc,
    write_atomic,
)
from cs_metrics.formats import minutes, percent
from cs_metrics.metrics import METRIC_FIELDS
from cs_metrics.pipeline import Dataset, Evaluation

SHOP_FIELDS = ("shop_id", "timezone", "window_start", "window_end", *METRIC_FIELDS)
CHAT_COLUMNS = (
    "shop_id",
    "conversation_id",
    "first_message_id",
    "buyer_id",
    "buyer_messages",
    "received_at_utc",
    "received_at_local",
    "responded_at_utc",
    "responded_at_local",
    "responder_role",
    "responder_id",
    "response_message_id",
    "response_minutes",
    "deadline_at_utc",
    "status",
    "timezone",
)


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers to Python, NaN/NA to None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def shop_records(evaluation: Evaluation, extra: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """One SPEC 7 object per shop, sorted by shop_id (with `extra` columns appended)."""
    m = evaluation.metrics.copy()
    m["window_start"] = iso_local(m["window_start"], m["timezone"])
    m["window_end"] = iso_local(m["window_end"], m["timezone"])
    m = m.sort_values("shop_id")
    records = []
    for row in m[list(SHOP_FIELDS)].to_dict(orient="records"):
        records.append({k: _plain(v) for k, v in row.items()})
    if extra is not None:
        by_shop = extra.set_index("shop_id").to_dict(orient="index")
        for record in records:
            record.update(by_shop.get(record["shop_id"], {}))
    return records


def input_counts(dataset: Dataset) -> dict[str, dict[str, int]]:
    """The SPEC 8 row counts per table given."""
    return {name: counts.as_dict() for name, counts in dataset.counts.items()}


def result_document(
    dataset: Dataset, evaluation: Evaluation, extra: pd.DataFrame | None = None, **top: Any
) -> dict[str, Any]:
    """The SPEC 7 document: cutoff, shops, input (and any extra top-level fields)."""
    doc: dict[str, Any] = {
        "cutoff": iso_utc(evaluation.cutoff),
        "window_first_day": evaluation.start.isoformat(),
        "window_last_day": evaluation.end.isoformat(),
        **top,
        "shops": shop_records(evaluation, extra),
        "input": input_counts(dataset),
    }
    return doc


def to_json(doc: Mapping[str, Any]) -> str:
    """Pretty, stable JSON text."""
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


WEEKLY_CSV_FIELDS = (
    *SHOP_FIELDS,
    "coverage",
    "bad_row_share",
    "action",
    "violation_points_active",
    "last_message_at",
    "name",
    "market",
    *(f"status_{m}" for m in STATUS_METRICS),
)
"""The columns of the weekly metrics.csv (also when the week has no shop)."""


def to_csv(
    records: list[dict[str, Any]], empty_fields: tuple[str, ...] = SHOP_FIELDS, *, raw: bool = False
) -> str:
    """One CSV row per shop: the SPEC 7 field names, nested `status` as `status_<metric>`
    (`empty_fields` is the header of a list of no shops; text cells spreadsheet-safe unless
    `raw`)."""
    flat = [
        {
            **{k: v for k, v in r.items() if not isinstance(v, dict)},
            **{f"{k}_{m}": x for k, v in r.items() if isinstance(v, dict) for m, x in v.items()},
        }
        for r in records
    ]
    frame = pd.DataFrame.from_records(flat, columns=list(flat[0]) if flat else list(empty_fields))
    return csv_text(frame, raw=raw)


def to_table(doc: Mapping[str, Any]) -> str:
    """An aligned text table for people: rates as percentages, a line on quarantined rows."""
    rows = [
        {
            "shop": s["shop_id"],
            "chats": str(s["chats"]),
            "assessed": str(s["chats_assessed"]),
            "12h rate": percent(s["response_rate_12h"]),
            "late": str(s["chats_responded_late"]),
            "missed": str(s["chats_unresponded"]),
            "pending": str(s["chats_pending"]),
            "holiday": str(s["chats_excluded_holiday_mode"]),
            "FRT mean": minutes(s["first_response_minutes_mean"]),
            "FRT p90": minutes(s["first_response_minutes_p90"]),
            "CSAT": percent(s["satisfaction_rate"]),
            "ratings": str(s["ratings"]),
            **(
                {"status": s["status"]["response_rate_12h"], "action": s["action"]}
                if "action" in s
                else {}
            ),
        }
        for s in doc["shops"]
    ]
    lines = [
        f"Window {doc['window_first_day']} .. {doc['window_last_day']} (each shop's local days), "
        f"cut-off {doc['cutoff'] or 'none (no messages)'}"
    ]
    if rows:
        headers = list(rows[0])
        widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
        left = {"shop", "status", "action"}

        def fmt(cells: Mapping[str, str]) -> str:
            return "  ".join(
                cells[h].ljust(widths[h]) if h in left else cells[h].rjust(widths[h])
                for h in headers
            ).rstrip()

        lines += [fmt({h: h for h in headers}), fmt({h: "-" * widths[h] for h in headers})]
        lines += [fmt(r) for r in rows]
    else:
        lines.append("(no shops)")
    lines.append(input_line(doc["input"]))
    return "\n".join(lines) + "\n"


def input_line(counts: Mapping[str, Mapping[str, int]]) -> str:
    """One line on rows read, used, quarantined and duplicated per table."""
    parts = [
        f"{name} {c['rows_read']} read, {c['rows_used']} used, "
        f"{c['rows_quarantined']} quarantined, {c['rows_duplicate']} duplicate"
        for name, c in counts.items()
    ]
    return "Input: " + "; ".join(parts)


def chat_rows(chats: pd.DataFrame) -> pd.DataFrame:
    """The per-chat drill-down: UTC and local instants, responder, minutes on the clock, status."""
    zones = chats["timezone"].astype("string") if "timezone" in chats else pd.Series(dtype="string")
    out = pd.DataFrame(
        {
            "shop_id": chats["shop_id"],
            "conversation_id": chats["conversation_id"],
            "first_message_id": chats["first_message_id"],
            "buyer_id": chats["buyer_id"],
            "buyer_messages": chats["buyer_messages"],
            "received_at_utc": chats["received_at"],
            "received_at_local": iso_local(chats["received_at"], zones),
            "responded_at_utc": chats["responded_at"],
            "responded_at_local": iso_local(chats["responded_at"], zones),
            "responder_role": chats["responder_role"],
            "responder_id": chats["responder_id"],
            "response_message_id": chats["response_message_id"],
            "response_minutes": chats["response_minutes"],
            "deadline_at_utc": chats["deadline_at"],
            "status": chats["status"].astype("string"),
            "timezone": zones,
        }
    )
    # Arrow's stable sort of the three keys, as `sort_values(kind="stable")` orders them (text
    # by code point, missing values last) in a fifth of the time.
    order = pc.sort_indices(
        pa.Table.from_pandas(out[CHAT_ORDER], preserve_index=False),
        sort_keys=[(column, "ascending", "at_end") for column in CHAT_ORDER],
    ).to_numpy()
    return pd.DataFrame({c: column_taken(out[c], order) for c in out.columns})


CHAT_ORDER = ["shop_id", "received_at_utc", "conversation_id"]
"""The drill-down's rows by shop, then when the chat began, then conversation."""


def chats_csv(rows: pd.DataFrame, *, raw: bool = False) -> bytes:
    """The drill-down as UTF-8 CSV, instants in ISO-8601 (spreadsheet-safe unless `raw`)."""
    return csv_bytes(_chats_text(rows), raw=raw)


def chats_csv_writer(rows: pd.DataFrame, *, raw: bool = False) -> Writer:
    """`chats_csv` for `write_atomic`, written a block of rows at a time (a week of millions of
    chats is never held as one text)."""
    return csv_writer(_chats_text(rows), raw=raw)


def _chats_text(rows: pd.DataFrame) -> pd.DataFrame:
    """The drill-down with its UTC instants as ISO-8601 text."""
    frame = rows.copy(deep=False)
    for column in ("received_at_utc", "responded_at_utc", "deadline_at_utc"):
        frame[column] = iso_text(frame[column])
    return frame


def chats_parquet(rows: pd.DataFrame) -> bytes:
    """The drill-down as Parquet bytes with typed UTC timestamps."""
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_quarantine(dataset: Dataset, folder: Path, raw_csv: bool = False) -> list[Path]:
    """One CSV per table with bad rows: row number, reason code, message, the original values
    (text cells spreadsheet-safe unless `raw_csv`; owner-only: they hold raw buyer data).

    The rows are written a block at a time as they are read back from where the run set them
    aside (all of them may not fit in memory); the text is that of one CSV of all the rows.
    """
    written = []
    for name in dataset.quarantine:
        path = folder / f"{name}.csv"
        batches = dataset.quarantine.batches(name)
        write_atomic(path, partial(_write_quarantine_csv, batches, raw_csv), mode=PRIVATE_MODE)
        written.append(path)
    return written


def _write_quarantine_csv(batches: Iterator[pd.DataFrame], raw_csv: bool, handle: BinaryIO) -> None:
    """Bad rows as CSV, the header once, then each batch's rows."""
    for number, batch in enumerate(batches):
        text = csv_bytes(batch, raw=raw_csv)
        # Every batch has the same columns, so the same header: written once.
        header = len(csv_bytes(batch.iloc[:0], raw=raw_csv))
        handle.write(text if number == 0 else text[header:])


def findings_text(
    findings: pd.DataFrame, summary: Mapping[str, Any], fmt: str, *, raw_csv: bool = False
) -> str:
    """Scan findings as JSON ({findings, summary}), CSV (spreadsheet-safe unless `raw_csv`), or
    a table for people."""
    rows = findings.copy()
    if len(rows):
        rows["sent_at"] = iso_text(rows["sent_at"].dt.tz_convert("UTC"))
    if fmt == "json":
        records = [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict(orient="records")]
        return to_json({"findings": records, "summary": summary})
    if fmt == "csv":
        return csv_text(rows, raw=raw_csv)
    lines = [f"{summary['findings']} finding(s)"]
    if summary["findings"]:
        share = percent(summary["auto_reply_share"])
        lines[0] += f", {summary['from_auto_reply']} from auto-replies ({share})"
    for shop_id, shop in summary["shops"].items():
        categories = ", ".join(f"{c} {n}" for c, n in shop["by_category"].items())
        senders = ", ".join(f"{s} {n}" for s, n in shop["by_sender"].items())
        lines.append(f"{shop_id}: {shop['findings']} ({categories}); by sender: {senders}")
    for r in rows.itertuples():
        origin = " [auto-reply: sent to every buyer]" if r.from_auto_reply else ""
        lines.append(
            f"  {r.sent_at}  {r.shop_id}/{r.conversation_id}/{r.message_id}  {r.category} "
            f"({r.rule_id}, section {r.section}){origin}: {r.excerpt}"
        )
    return "\n".join(lines) + "\n"
