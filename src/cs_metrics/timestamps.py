"""Timestamps of SPEC 1 to UTC instants, with a reason for each value that is not one."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import (
    arrow_chunks,
    column_taken,
    dictionary_codes,
    missing_text,
    value_bytes,
)
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


Zones: TypeAlias = pd.Series | Callable[[], pd.Series]
"""Each row's shop zone (by the rows' index), or a function that gives them: called only when
some value is a local time (most exports write every instant with its offset)."""


def parse_instants(
    values: pd.Series, zones: Zones, date_format: str | None = None, *, from_bytes: bool = True
) -> tuple[pd.Series, pd.Series]:
    """UTC instants from SPEC timestamps (or `date_format`), with a reason for each bad value.

    With `from_bytes` (the default), text in the usual forms is read off its bytes
    (`exact_instants`); without, every value is parsed by its parts (the same results).
    """
    instants, reasons = _parse_instants(values, zones, date_format, from_bytes)
    outside = (instants < FIRST_INSTANT) | (instants > LAST_INSTANT)
    if outside.any():
        instants = instants.mask(outside)
        reasons = reasons.mask(outside, Reason.BAD_TIMESTAMP.value)
    return instants, reasons


def _parse_instants(
    values: pd.Series, zones: Zones, date_format: str | None, from_bytes: bool
) -> tuple[pd.Series, pd.Series]:
    index = values.index
    if date_format is not None:
        checked_date_format(date_format)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(UTC).astype(INSTANT), _no_reasons(index)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _localize(values.astype("datetime64[us]"), _resolved(zones))
    text = values.astype("string")
    if not from_bytes:
        return _parse_text(text, _resolved(zones), date_format)
    # The usual forms are read off their bytes (`exact_instants`); the rest, if any, by parts.
    read, ticks = exact_instants(arrow_chunks(text))
    if not read.any():
        return _parse_text(text, _resolved(zones), date_format)
    if read.all():
        reasons = _no_reasons(index)
    else:
        rest, rest_reasons = _parse_text(text[~read], _resolved(zones), date_format)
        ticks[~read] = rest.to_numpy(dtype="datetime64[us]").view("int64")
        reasons = pd.Series(pd.NA, index=index, dtype="string")
        reasons[~read] = rest_reasons.to_numpy()
    return pd.Series(ticks.view("datetime64[us]"), index=index).dt.tz_localize(UTC), reasons


def _resolved(zones: Zones) -> pd.Series:
    return zones if isinstance(zones, pd.Series) else zones()


def _parse_text(
    text: pd.Series, zones: pd.Series, date_format: str | None
) -> tuple[pd.Series, pd.Series]:
    """`parse_instants` of text, form by form (ISO-8601 by its parts, epoch numbers, the user's
    `date_format`)."""
    index = text.index
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


EXACT_FORMS = (
    "0000-00-00T00:00:00Z",
    "0000-00-00T00:00:00+00:00",
    "0000-00-00T00:00:00+0000",
    "0000-00-00T00:00:00.000Z",
    "0000-00-00T00:00:00.000+00:00",
    "0000-00-00T00:00:00.000000Z",
    "0000-00-00T00:00:00.000000+00:00",
)
"""The forms of _ISO timestamps with a zone that `exact_instants` reads from their bytes: `0` a
digit, `T` a `T` or a space, `+` a sign; exports write most timestamps in one of them."""

EXACT_YEARS = (1900, 2200)
"""Years `exact_instants` reads; timestamps of others take the general path (its checks of the
calendar's ends)."""


def exact_instants(text: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Which values are a valid timestamp in one of EXACT_FORMS, and their UTC instants (int64
    microseconds; any number where not read).

    Read off each value's bytes at the form's fixed places, with numpy over all rows at once:
    the same instants `_parse_text` gives these values, several times faster than its regular
    expression, string joins and pandas parse. Other values (another form, an impossible date,
    a year outside EXACT_YEARS) are left to it.
    """
    read = np.zeros(len(text), dtype=bool)
    ticks = np.zeros(len(text), dtype=np.int64)
    first = 0
    for chunk in text.chunks:
        if not len(chunk):
            continue
        starts, stops, data = value_bytes(chunk)
        lengths = stops - starts
        if chunk.null_count:
            lengths = np.where(chunk.is_valid().to_numpy(zero_copy_only=False), lengths, 0)
        for form in EXACT_FORMS:
            fits = lengths == len(form)
            if fits.all():  # a column of one form: its values are taken as they lie
                ok, values = _form_instants(form, data, starts)
                at = slice(first, first + len(chunk))
                ticks[at] = np.where(ok, values, ticks[at])  # forms of one length: one fits
                read[at] |= ok
            elif fits.any():
                rows = np.flatnonzero(fits)
                ok, values = _form_instants(form, data, starts[rows])
                read[first + rows[ok]] = True
                ticks[first + rows[ok]] = values[ok]
        first += len(chunk)
    return read, ticks


def _form_instants(
    form: str, data: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For values of `form`'s length starting at `starts` in `data`: which are that form with a
    real date and time, and their UTC instants (int64 microseconds)."""
    matrix = _form_bytes(data, starts, len(form))
    ok = np.ones(len(matrix), dtype=bool)
    for at, want in enumerate(form):
        got = matrix[:, at]
        if want == "0":
            ok &= got - np.uint8(ord("0")) <= 9  # below `0` wraps round to above 9
        elif want in "T+":
            ok &= (got == ord(want)) | (got == ord(" " if want == "T" else "-"))
        else:
            ok &= got == ord(want)
    zone_at = len(form) - 1 if form.endswith("Z") else form.index("+")

    def number(at: int, width: int) -> np.ndarray:
        value = np.zeros(len(matrix), dtype=np.int32)
        for k in range(width):
            value *= 10
            value += matrix[:, at + k]
            value -= ord("0")
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    # Days since 1970 by a table of each month's first day over the years read; a month's
    # length is the gap to the next one's (leap years included).
    month_at = (np.clip(year, *EXACT_YEARS) - EXACT_YEARS[0]) * 12 + np.clip(month, 1, 12) - 1
    month_days = _MONTH_STARTS[month_at + 1] - _MONTH_STARTS[month_at]
    ok &= (year >= EXACT_YEARS[0]) & (year <= EXACT_YEARS[1]) & (month >= 1) & (month <= 12)
    ok &= (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _MONTH_STARTS[month_at] + day - 1
    minutes = (days.astype(np.int64) * 24 + hour) * 60 + minute
    if form[zone_at] == "+":
        offset_hours, offset_minutes = number(zone_at + 1, 2), number(len(form) - 2, 2)
        ok &= (offset_hours <= 23) & (offset_minutes <= 59)
        offset = offset_hours * 60 + offset_minutes
        minutes -= np.where(matrix[:, zone_at] == ord("-"), -offset, offset)
    micros = (minutes * 60 + second) * 1_000_000
    # Digits after the point are microseconds, padded on the right (`.5` is 500000).
    fraction = zone_at - 20 if form[19] == "." else 0
    if fraction:
        micros += number(20, fraction) * 10 ** (6 - fraction)
    return ok, micros


def _form_bytes(data: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """The `width` bytes of each value starting at `starts`, one row per value: a view of the
    data itself when the values lie end to end (a column of one form, as most are)."""
    first = int(starts[0])
    if int(starts[-1]) - first == (len(starts) - 1) * width:
        return data[first : first + len(starts) * width].reshape(-1, width)
    matrix = np.empty((len(starts), width), dtype=np.uint8)
    for at in range(width):
        matrix[:, at] = data[starts + at]
    return matrix


def _month_starts() -> np.ndarray:
    """Days from 1970-01-01 to the first of each month of EXACT_YEARS, month by month, and of
    the month after the last."""
    first = np.datetime64(f"{EXACT_YEARS[0]:04d}-01", "M")
    months = first + np.arange((EXACT_YEARS[1] - EXACT_YEARS[0] + 1) * 12 + 1)
    return months.astype("datetime64[D]").astype(np.int64).astype(np.int32)


_MONTH_STARTS = _month_starts()


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
    # A block has few shops: each one's zone is looked up once, then taken by its code.
    codes, distinct = dictionary_codes(arrow_chunks(shop_id))
    zone_of = pd.Series(pd.arrays.ArrowStringArray(distinct)).map(zones).astype("string")
    return pd.Series(column_taken(zone_of, codes, fill=True), index=shop_id.index)
