"""Timestamps of SPEC 1 to UTC instants, with a reason for each value that is not one."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import arrow_chunks, missing_text
from cs_metrics.errors import UsageError
from cs_metrics.reasons import Reason

UTC = "UTC"


_ISO = (
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[T ](?P<hm>[0-9]{2}:[0-9]{2})(?::(?P<sec>[0-5][0-9])(?:\.(?P<frac>[0-9]+))?)?)?"
    r"(?P<zone>Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
"""Seconds stop at 59 (pandas' `%S` would take 60 and 61 and roll over into the next minute)."""


_WHOLE = r"^[0-9]+$"


MILLISECONDS_FROM = 100_000_000_000


INSTANT = "datetime64[us, UTC]"


FIRST_INSTANT = pd.Timestamp(dt.datetime(1, 1, 1, tzinfo=dt.UTC))


LAST_INSTANT = pd.Timestamp(dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC))
"""Instants outside years 1-9999 in UTC (Python's datetime range) are bad timestamps."""


SAFE_WALL = (pd.Timestamp(dt.datetime(1, 1, 2)), pd.Timestamp(dt.datetime(9999, 12, 30)))
"""Instants are held in UTC with microsecond resolution (years 1 to 9999 and beyond)."""


def known_timezones() -> frozenset[str]:
    """IANA zone names this machine knows."""
    return frozenset(zoneinfo.available_timezones()) | {UTC}


def parse_instants(
    values: pd.Series, zones: pd.Series, date_format: str | None = None
) -> tuple[pd.Series, pd.Series]:
    """UTC instants from SPEC timestamps (or `date_format`), with a reason for each bad value."""
    instants, reasons = _parse_instants(values, zones, date_format)
    outside = (instants < FIRST_INSTANT) | (instants > LAST_INSTANT)
    if outside.any():
        instants = instants.mask(outside)
        reasons = reasons.mask(outside, Reason.BAD_TIMESTAMP.value)
    return instants, reasons


def _parse_instants(
    values: pd.Series, zones: pd.Series, date_format: str | None = None
) -> tuple[pd.Series, pd.Series]:
    index = values.index
    if date_format is not None:
        checked_date_format(date_format)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(UTC).astype(INSTANT), _no_reasons(index)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _localize(values.astype("datetime64[us]"), zones)
    text = values.astype("string")
    result = pd.Series(pd.NaT, index=index, dtype=INSTANT)
    reasons = pd.Series(Reason.BAD_TIMESTAMP.value, index=index, dtype="string")
    reasons = reasons.mask(text.isna())

    whole = text.str.fullmatch(_WHOLE).fillna(False).astype(bool)
    if whole.any():
        epoch = _epoch_instants(text[whole])
        result.loc[epoch.index] = epoch
        reasons.loc[epoch.index[epoch.notna()]] = pd.NA

    iso = _iso_parts(text)
    is_iso = iso["date"].notna() & ~whole
    if is_iso.any():
        iso = iso[is_iso]
        clock = iso["hm"].fillna("00:00") + ":" + iso["sec"].fillna("00")
        wall = pd.to_datetime(
            iso["date"] + " " + clock, format="%Y-%m-%d %H:%M:%S", errors="coerce"
        ).astype("datetime64[us]")
        wall = wall + pd.to_timedelta(_fraction_us(iso["frac"]), unit="us").to_numpy()
        zone = iso["zone"]
        offset_min, offset_ok = _offset_minutes(zone)
        aware = zone.notna()
        fixed = (wall - pd.to_timedelta(offset_min, unit="min")).dt.tz_localize(UTC)
        fixed = fixed.where(aware & offset_ok)
        naive_idx = iso.index[~aware]
        local, local_reasons = _localize(wall[~aware], zones.loc[naive_idx])
        combined = fixed.copy()
        combined.loc[naive_idx] = local
        result.loc[combined.index] = combined
        good = combined.notna()
        reasons.loc[combined.index[good]] = pd.NA
        gap = local_reasons[local_reasons.notna() & wall[~aware].notna()]
        reasons.loc[gap.index] = gap
    if date_format is not None:
        other = reasons == Reason.BAD_TIMESTAMP.value
        if other.any():
            formatted, formatted_reasons = _formatted_instants(
                text[other], zones.loc[other[other].index], date_format
            )
            result.loc[formatted.index] = formatted
            reasons.loc[formatted.index] = formatted_reasons
    return result, reasons


_ISO_RE2 = _ISO.removesuffix("$") + r"\n?$"
"""_ISO for Arrow's RE2, whose `$` is only the end: Python's also matches before a last `\n`."""


ISO_PARTS = ("date", "hm", "sec", "frac", "zone")


def _iso_parts(text: pd.Series) -> pd.DataFrame:
    """The named parts of _ISO timestamps, by Arrow (missing: no such part, or no timestamp)."""
    parts = pc.extract_regex(arrow_chunks(text), _ISO_RE2)
    columns = {}
    for name in ISO_PARTS:
        part = pc.struct_field(parts, name)
        # RE2 gives an empty text for a part that took no part in the match.
        part = pc.if_else(pc.equal(part, ""), pa.scalar(None, part.type), part)
        columns[name] = pd.Series(pd.arrays.ArrowStringArray(part), index=text.index)
    return pd.DataFrame(columns, index=text.index)


def checked_date_format(date_format: str) -> str:
    """A user's strptime-style date format (`%d/%m/%Y %H:%M`), or a UsageError saying why not."""
    hint = "a strptime format such as %d/%m/%Y %H:%M"
    if "%" not in date_format:
        raise UsageError(f"--date-format {date_format!r} is not {hint}")
    try:
        pd.to_datetime(pd.Series(["0"]), format=date_format, errors="coerce")
    except ValueError as exc:
        raise UsageError(f"--date-format {date_format!r} is not {hint} ({exc})") from exc
    return date_format


def _formatted_instants(
    text: pd.Series, zones: pd.Series, date_format: str
) -> tuple[pd.Series, pd.Series]:
    """UTC instants from values in the user's `date_format` (without a zone: shop-local time)."""
    aware = "%z" in date_format or "%Z" in date_format
    parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=aware)
    if "%S" in date_format:
        # pandas' %S takes 60 and 61 and rolls over; Python's strptime refuses them. Only
        # values with such digits are parsed again (the slow path stays rare).
        suspect = parsed.notna() & text.str.contains("6[01]", regex=True).fillna(False)
        refused = [not _strptime_ok(v, date_format) for v in text[suspect]]
        parsed[suspect[suspect].index[refused]] = pd.NaT
    if aware:
        instants = parsed.astype(INSTANT)
        reasons = _no_reasons(text.index).mask(instants.isna(), Reason.BAD_TIMESTAMP.value)
        return instants, reasons
    wall = parsed.astype("datetime64[us]")
    instants, reasons = _localize(wall, zones)
    return instants, reasons.mask(wall.isna(), Reason.BAD_TIMESTAMP.value)


def _strptime_ok(value: str, date_format: str) -> bool:
    """Whether Python's strptime reads `value` in `date_format` (seconds 00-59 only)."""
    try:
        dt.datetime.strptime(value, date_format)
    except ValueError:
        return False
    return True


def _no_reasons(index: pd.Index) -> pd.Series:
    return missing_text(index)


def _epoch_instants(digits: pd.Series) -> pd.Series:
    """UTC instants from whole numbers: Unix seconds, or milliseconds from 12 digits up."""
    significant = digits.str.lstrip("0").mask(lambda d: d == "", "0")
    short = significant.where(significant.str.len() <= 18)
    number = pd.to_numeric(short, errors="coerce").astype("Int64")
    millis = number >= MILLISECONDS_FROM
    limit = np.iinfo("int64").max
    fits = (millis & (number <= limit // 1_000)) | (~millis & (number <= limit // 1_000_000))
    micros = number.where(~millis, number * 1_000).where(millis, number * 1_000_000)
    micros = micros.where(fits.fillna(False))
    ticks = micros.fillna(0).astype("int64").to_numpy().view("datetime64[us]")
    instants = pd.Series(ticks, index=digits.index).dt.tz_localize(UTC)
    return instants.where(micros.notna())


def _fraction_us(fraction: pd.Series) -> pd.Series:
    """Microseconds from the digits after the decimal point (extra digits are cut)."""
    padded = fraction.fillna("0").str.slice(0, 6).str.pad(6, side="right", fillchar="0")
    return padded.astype("int64")


def _offset_minutes(zone: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Signed UTC offsets in minutes from `Z`, `+hh:mm` or `+hhmm`, and which ones are valid."""
    text = zone.fillna("Z").str.replace(":", "", regex=False)
    is_z = text == "Z"
    # _ISO lets a zone be only `Z` or a sign and four digits: the slices are digits.
    hours = text.str.slice(1, 3).where(~is_z, "0").astype("int64")
    minutes = text.str.slice(3, 5).where(~is_z, "0").astype("int64")
    sign = np.where(text.str.slice(0, 1) == "-", -1, 1)
    ok = (hours <= 23) & (minutes <= 59)
    return (sign * (hours * 60 + minutes)).fillna(0).astype("int64"), ok.fillna(False)


def _localize(wall: pd.Series, zones: pd.Series) -> tuple[pd.Series, pd.Series]:
    """UTC instants from naive local times in each row's zone; gaps and overlaps are reasons."""
    result = pd.Series(pd.NaT, index=wall.index, dtype=INSTANT)
    reasons = _no_reasons(wall.index)
    # Within a day of the calendar's ends a zone offset can leave years 1-9999: bad timestamps.
    safe = wall.between(SAFE_WALL[0], SAFE_WALL[1])
    reasons = reasons.mask(wall.notna() & ~safe, Reason.BAD_TIMESTAMP.value)
    wall = wall.where(safe)
    for zone, idx in wall.groupby(zones.astype("string").fillna(UTC), sort=False).groups.items():
        local = pd.DatetimeIndex(wall.loc[idx]).tz_localize(
            str(zone), ambiguous="NaT", nonexistent="NaT"
        )
        result.loc[idx] = local.tz_convert(UTC)
        lost = wall.loc[idx].notna().to_numpy() & local.isna()
        reasons.loc[idx[lost]] = Reason.LOCAL_TIME_GAP.value
    return result, reasons


def row_zones(shop_id: pd.Series, zones: pd.Series, instants: pd.Series) -> pd.Series:
    """Each row's shop zone, for reading naive times (typed aware instants need none)."""
    if isinstance(instants.dtype, pd.DatetimeTZDtype):
        utc = pa.repeat(pa.scalar(UTC, pa.large_string()), len(shop_id))
        return pd.Series(pd.arrays.ArrowStringArray(utc), index=shop_id.index)
    return shop_id.map(zones)
