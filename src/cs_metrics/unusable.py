"""A messages table with rows but no usable row (SPEC 6a): the one-line error that says why.

Reports built on such a table would say "no chats" for every shop; the run stops instead, naming
the most common reason and, when the timestamps are dates in another form (day-first dates from
a spreadsheet, say), the `--date-format` under which they read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cs_metrics.errors import InputError
from cs_metrics.validate import InputCounts, Reason

SAMPLE_ROWS = 2000
"""Timestamps tried against each candidate format: enough to tell day-first from month-first."""

CANDIDATE_FORMATS = (
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d/%m/%y %H:%M",
    "%m/%d/%y %H:%M",
)
"""Date forms spreadsheets and other tools write, day-first before month-first."""


def formats_that_read(values: pd.Series) -> list[str]:
    """The candidate formats under which every sampled, non-empty value is a timestamp."""
    text = values.dropna().astype("string").str.strip()
    text = text.loc[text != ""].head(SAMPLE_ROWS)
    if text.empty:
        return []
    found = []
    for form in CANDIDATE_FORMATS:  # a few formats, each over the whole sample at once
        parsed = pd.to_datetime(text, format=form, errors="coerce")
        if parsed.notna().all():
            found.append(form)
    return found


def date_format_hint(values: pd.Series) -> str:
    """A sentence suggesting --date-format for these timestamps ('' when none fits)."""
    forms = formats_that_read(values)
    if not forms:
        return ""
    first = forms[0]
    day_first = first.startswith(("%d", "%Y"))
    others = [f for f in forms[1:] if f.startswith("%m") != first.startswith("%m")]
    text = (
        f"; the sent_at values read as {'day-first ' if day_first else ''}dates with "
        f"--date-format '{first}'"
    )
    if others:
        text += f" (or '{others[0]}': every day is 12 or less, so check which the export uses)"
    return text


def check_usable(
    path: Path,
    counts: InputCounts,
    quarantine: pd.DataFrame | None,
    reason_counts: pd.Series | None = None,
) -> None:
    """InputError when the messages table has rows but none could be used (SPEC 6a).

    Every command that evaluates or checks a data folder calls this after loading it; loading
    itself stays tolerant, so a library user can still inspect such a table's quarantine.
    `reason_counts` (rows per reason) is given when `quarantine` holds only some of the rows:
    those first of the most common reason.
    """
    if counts.rows_read == 0 or counts.rows_used or counts.rows_duplicate:
        return
    reasons = pd.Series(dtype="string") if quarantine is None else quarantine["reason"]
    top = reasons.value_counts() if reason_counts is None else reason_counts
    top = top.sort_values(ascending=False, kind="stable")
    if top.empty:
        return
    reason = str(top.index[0])
    messages = quarantine["message"] if quarantine is not None else pd.Series(dtype="string")
    sentence = str(messages.loc[reasons == reason].iloc[0])
    hint = ""
    if reason == Reason.BAD_TIMESTAMP.value and quarantine is not None and "sent_at" in quarantine:
        hint = date_format_hint(quarantine.loc[reasons == reason, "sent_at"])
    raise InputError(
        f"{path}: no usable row among {counts.rows_read} message rows; most common reason "
        f"({int(top.iloc[0])} rows): {sentence}{hint}"
    )
