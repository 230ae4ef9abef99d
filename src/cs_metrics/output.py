"""Results as SPEC 7 JSON, CSV, a table for people, and the per-chat drill-down; atomic writes."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.metrics import METRIC_FIELDS
from cs_metrics.pipeline import Dataset, Evaluation
from cs_metrics.policy import STATUS_METRICS

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


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            Path(tmp).replace(path)
        except OSError as exc:  # name the file the user asked for, not the temporary one
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def csv_text(frame: pd.DataFrame) -> str:
    """A frame as CSV text: header, no index, `\n` line ends."""
    return csv_bytes(frame).decode("utf-8")


CSV_BLOCK_ROWS = 2**20
"""Rows per block when Arrow writes a CSV (memory holds a block's text, not the file's twice)."""


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as UTF-8 CSV: pandas' `to_csv` text (header, no index, `\n` line ends, quotes only
    where needed), built by Arrow for text and number columns; pandas writes any other frame.

    Arrow also quotes a value holding a bare CR, which pandas leaves bare (readers end a row there).
    """
    fast = _arrow_csv(frame) if frame.shape[1] else None
    if fast is not None:
        return fast
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode("utf-8")


def _arrow_csv(frame: pd.DataFrame) -> bytes | None:
    """`csv_bytes` by Arrow, block by block (None: a column of a dtype left to pandas)."""
    names = list(frame.columns)
    if len(set(names)) < len(names) or not all(isinstance(n, str) and n for n in names):
        return None  # repeated, empty or non-text column names: pandas' header
    header = ",".join(_csv_quoted(pa.array(names)).to_pylist())
    blocks = [(header + "\n").encode("utf-8")]
    for start in range(0, len(frame), CSV_BLOCK_ROWS):
        block = frame.iloc[start : start + CSV_BLOCK_ROWS]
        columns = [_csv_fields(block[c]) for c in block.columns]
        if any(c is None for c in columns):
            return None
        text = [c.cast(pa.large_string()) for c in columns]
        comma, newline = pa.scalar(",", pa.large_string()), pa.scalar("\n", pa.large_string())
        lines = pc.binary_join_element_wise(*text, comma)
        if len(text) == 1:  # an empty line would be no row: a lone empty value is written ""
            lines = pc.if_else(pc.equal(lines, ""), pa.scalar('""', pa.large_string()), lines)
        blocks.append(
            _text_bytes(
                pc.binary_join_element_wise(lines, pa.scalar("", pa.large_string()), newline)
            )
        )
    return b"".join(blocks)


def _csv_fields(column: pd.Series) -> pa.Array | None:
    """A column's CSV fields as to_csv writes them (None: a dtype left to pandas)."""
    dtype = column.dtype
    if dtype == np.float64:
        numbers = column.to_numpy()
        # repr of each distinct value (by its bits, so -0.0 stays -0.0), as to_csv writes floats.
        bits, codes = np.unique(numbers.view(np.int64), return_inverse=True)
        texts = [repr(float(x)) for x in bits.view(np.float64)]
        values = pa.array(texts, pa.string()).take(pa.array(codes.ravel()))
        return pc.if_else(pa.array(np.isnan(numbers)), "", values)
    if dtype == np.bool_ or isinstance(dtype, pd.BooleanDtype):
        truth = pa.array(column, type=pa.bool_(), from_pandas=True)
        return pc.fill_null(pc.if_else(truth, "True", "False"), "")
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return pc.fill_null(pa.array(column, from_pandas=True).cast(pa.string()), "")
    if isinstance(dtype, pd.CategoricalDtype):
        if not len(dtype.categories):
            values = pa.nulls(len(column), pa.string())  # every value missing
        elif pd.api.types.infer_dtype(dtype.categories) != "string":
            return None  # pandas writes numbers, dates, booleans its own way
        else:
            values = pa.array(column).cast(pa.string())
    elif isinstance(dtype, pd.StringDtype) or (
        dtype == np.object_ and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    ):
        values = pa.array(column, type=pa.large_string(), from_pandas=True)
    else:
        return None
    return _csv_quoted(pc.fill_null(values, ""))


def _csv_quoted(text: pa.Array) -> pa.Array:
    """Texts in double quotes (inner quotes doubled) where they hold `,` `"` CR or LF."""
    mark, empty = pa.scalar('"', text.type), pa.scalar("", text.type)
    quoted = pc.binary_join_element_wise(mark, pc.replace_substring(text, '"', '""'), mark, empty)
    return pc.if_else(pc.match_substring_regex(text, '[,"\r\n]'), quoted, text)


def _text_bytes(text: pa.Array) -> bytes:
    """The concatenated bytes of a text array with no nulls."""
    text = text.cast(pa.large_string())
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    _, offsets, data = text.buffers()
    first, last = np.frombuffer(offsets, np.int64)[[text.offset, text.offset + len(text)]]
    return b"" if data is None else data.slice(int(first), int(last - first)).to_pybytes()


def _umask() -> int:
    """The process's file-creation mask (mkstemp's files are private; outputs should not be)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def iso_utc(instant: pd.Timestamp | None) -> str | None:
    """An instant as ISO-8601 in UTC, or None."""
    if instant is None or pd.isna(instant):
        return None
    return pd.Timestamp(instant).tz_convert("UTC").isoformat()


def iso_local(instants: pd.Series, zones: pd.Series) -> pd.Series:
    """Instants as ISO-8601 text with each row's local offset (missing stays missing)."""
    out = pd.Series(pd.NA, index=instants.index, dtype="string")
    for zone, idx in zones.groupby(zones, sort=False).groups.items():
        out.loc[idx] = iso_text(instants.loc[idx].dt.tz_convert(str(zone)))
    return out


def iso_text(instants: pd.Series) -> pd.Series:
    """Aware instants as `YYYY-MM-DDThh:mm:ss[.ffffff]+hh:mm` text, vectorised."""
    missing = instants.isna().to_numpy()
    wall = instants.dt.tz_localize(None).to_numpy("datetime64[us]")
    utc = instants.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    seconds = wall.astype("datetime64[s]")
    micros = np.where(missing, 0, (wall - seconds).astype("int64"))
    # Arrow's cast writes `YYYY-MM-DD hh:mm:ss` ten times as fast as its strftime.
    whole = pc.utf8_replace_slice(pa.array(seconds, mask=missing).cast(pa.string()), 10, 11, "T")
    digits = pc.utf8_lpad(pa.array(micros).cast(pa.string()), width=6, padding="0")
    fraction = pc.if_else(pa.array(micros > 0), pc.binary_join_element_wise(".", digits, ""), "")
    offset = np.where(missing, 0, (wall - utc).astype("timedelta64[s]").astype("int64"))
    distinct, codes = np.unique(offset, return_inverse=True)
    zones = pa.array([offset_text(int(o)) for o in distinct], pa.string())
    zone = zones.take(pa.array(codes.ravel(), pa.int64()))
    text = pc.binary_join_element_wise(whole, fraction, zone, "")
    return pd.Series(pd.arrays.ArrowStringArray(text.cast(pa.large_string())), index=instants.index)


def offset_text(seconds: int) -> str:
    """A UTC offset as `+hh:mm` (`+hh:mm:ss` for an old local mean time), as isoformat writes it."""
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


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
    "action",
    "violation_points_active",
    "name",
    "market",
    *(f"status_{m}" for m in STATUS_METRICS),
)
"""The columns of the weekly metrics.csv (also when the week has no shop)."""


def to_csv(records: list[dict[str, Any]], empty_fields: tuple[str, ...] = SHOP_FIELDS) -> str:
    """One CSV row per shop: the SPEC 7 field names, nested `status` as `status_<metric>`
    (`empty_fields` is the header of a list of no shops)."""
    flat = [
        {
            **{k: v for k, v in r.items() if not isinstance(v, dict)},
            **{f"{k}_{m}": x for k, v in r.items() if isinstance(v, dict) for m, x in v.items()},
        }
        for r in records
    ]
    frame = pd.DataFrame.from_records(flat, columns=list(flat[0]) if flat else list(empty_fields))
    return csv_text(frame)


def percent(value: Any) -> str:
    """A fraction as a percentage with one decimal, `-` when null."""
    return "-" if value is None else f"{value * 100:.1f}%"


def minutes(value: Any) -> str:
    """Minutes with one decimal, `-` when null."""
    return "-" if value is None else f"{value:.1f}"


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
    return out.sort_values(
        ["shop_id", "received_at_utc", "conversation_id"], kind="stable"
    ).reset_index(drop=True)


def chats_csv(rows: pd.DataFrame) -> bytes:
    """The drill-down as UTF-8 CSV, instants in ISO-8601."""
    frame = rows.copy()
    for column in ("received_at_utc", "responded_at_utc", "deadline_at_utc"):
        frame[column] = iso_text(frame[column])
    return csv_bytes(frame)


def chats_parquet(rows: pd.DataFrame) -> bytes:
    """The drill-down as Parquet bytes with typed UTC timestamps."""
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_quarantine(dataset: Dataset, folder: Path) -> list[Path]:
    """One CSV per table with bad rows: row number, reason code, message, the original values."""
    written = []
    for name, frame in dataset.quarantine.items():
        path = folder / f"{name}.csv"
        write_atomic(path, csv_text(frame))
        written.append(path)
    return written


def findings_text(findings: pd.DataFrame, summary: Mapping[str, Any], fmt: str) -> str:
    """Scan findings as JSON ({findings, summary}), CSV, or a table for people."""
    rows = findings.copy()
    if len(rows):
        rows["sent_at"] = iso_text(rows["sent_at"].dt.tz_convert("UTC"))
    if fmt == "json":
        records = [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict(orient="records")]
        return to_json({"findings": records, "summary": summary})
    if fmt == "csv":
        return csv_text(rows)
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
