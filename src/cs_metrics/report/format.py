"""How the report writes numbers, durations, days and statuses for people (Jinja filters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from cs_metrics.chats import EXCLUDED, LATE, ON_TIME, PENDING, UNRESPONDED
from cs_metrics.enforcement import FAIL, NOT_ASSESSED, PASS, VIOLATION_POINT, WARNING, WITHHELD
from cs_metrics.report.charts import WEEKDAYS, is_nan, pct

NOT_ASSESSED_ACTION = "not_assessed"


def minutes_text(value: float | None) -> str:
    """Minutes for people: `4.2 min`, `3 h 05 min`, `2 d 4 h`; an en dash when null."""
    if value is None or is_nan(value):
        return "–"
    if value < 60:
        return f"{value:.1f} min"
    whole = round(value)
    if whole < 24 * 60:
        return f"{whole // 60} h {whole % 60:02d} min"
    return f"{whole // 1440} d {(whole % 1440) // 60} h"


def points_change(value: float | None) -> str:
    """A change of a rate in percentage points, signed; an en dash when unknown."""
    if value is None or is_nan(value):
        return "–"
    if abs(value) < 0.0005:
        return "±0.0 pp"
    return f"{'+' if value > 0 else '−'}{abs(value) * 100:.1f} pp"


def count(value: int) -> str:
    """A whole number with thousands separators."""
    return f"{int(value):,}"


def raw(value: float | None) -> str:
    """A number for a data attribute (full precision, as in metrics.json); empty when null."""
    return "" if value is None or is_nan(value) else repr(value)


def day_label(value: dt.date) -> str:
    """`Mon 16 Nov`."""
    return f"{WEEKDAYS[value.weekday()]} {value.day} {value:%b}"


STATUS_LABELS = {PASS: "pass", FAIL: "fail", NOT_ASSESSED: "not assessed"}
ACTION_LABELS = {
    VIOLATION_POINT: "1 violation point",
    WARNING: "Warning",
    WITHHELD: "Withheld",
    "none": "None",
    NOT_ASSESSED_ACTION: "Not assessed",
}


CHAT_STATUS_LABELS = {
    UNRESPONDED: "no reply",
    LATE: "late",
    PENDING: "pending",
    ON_TIME: "on time",
    EXCLUDED: "Holiday Mode",
}


def status_label(value: str) -> str:
    """pass / fail / not assessed."""
    return STATUS_LABELS.get(value, value)


def action_label(value: str) -> str:
    """The recommended action as shown to people."""
    return ACTION_LABELS.get(value, value)


def chat_status_label(value: str) -> str:
    """A chat status as shown to people."""
    return CHAT_STATUS_LABELS.get(value, value)


FILTERS = {
    "pct": pct,
    "raw": raw,
    "minutes": minutes_text,
    "pp": points_change,
    "count": count,
    "day": day_label,
    "status_label": status_label,
    "action_label": action_label,
    "chat_status": chat_status_label,
}


def as_number(value: Any) -> float | None:
    """A plain float, or None for null/NaN."""
    if value is None or value is pd.NA or pd.isna(value):
        return None
    return float(value)
