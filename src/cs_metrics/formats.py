"""Numbers as people read them: the one way every output writes a rate or a duration."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

TERMINAL_MISSING = "-"
"""What a missing value prints as in terminal tables and messages."""


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def percent(value: Any, missing: str = TERMINAL_MISSING) -> str:
    """A fraction as a percentage with one decimal (`85.3%`); `missing` when there is none."""
    return missing if is_missing(value) else f"{value * 100:.1f}%"


def minutes(value: Any, missing: str = TERMINAL_MISSING) -> str:
    """Minutes with one decimal (`12.5`); `missing` when there are none."""
    return missing if is_missing(value) else f"{value:.1f}"


LOCAL_TIME = "%a %d %b %H:%M"
"""How an instant is named for people: `Tue 17 Nov 14:05`, in the shop's own zone."""


def local_time(instant: Any, zone: str) -> str:
    """One instant (aware, or ISO text with an offset) as LOCAL_TIME in `zone`."""
    return f"{pd.Timestamp(instant).tz_convert(zone):{LOCAL_TIME}}"
