"""Validate raw tables: typed good rows, quarantined bad rows with reasons, duplicates, counts."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.errors import UsageError
from cs_metrics.read import PARSE_ERROR, ROW, TABLES, RawTable

ROLE_ALIASES: dict[str, str] = {
    "buyer": "buyer",
    "customer": "buyer",
    "seller": "seller",
    "shop": "seller",
    "customer_service": "seller",
    "agent": "seller",
    "auto_reply": "auto_reply",
    "robot": "auto_reply",
    "bot": "auto_reply",
    "faq": "auto_reply",
    "system": "system",
    "platform": "system",
}
ROLES = pd.CategoricalDtype(["buyer", "seller", "auto_reply", "system"])
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


class Reason(StrEnum):
    """Why a row was quarantined (machine-readable code)."""

    MALFORMED_ROW = "malformed_row"
    MISSING_VALUE = "missing_value"
    BAD_TIMESTAMP = "bad_timestamp"
    LOCAL_TIME_GAP = "nonexistent_or_ambiguous_local_time"
    UNKNOWN_ROLE = "unknown_role"
    BAD_RATING = "bad_rating"
    UNKNOWN_TIMEZONE = "unknown_timezone"
    END_BEFORE_START = "end_before_start"
    ID_SCIENTIFIC_NOTATION = "id_scientific_notation"
    """Only with `reject_mangled_ids`: by default such rows are used, with a warning."""
    ID_FLOAT_SUFFIX = "id_float_suffix"
    """Only with `reject_mangled_ids`: by default such rows are used, with a warning."""


class Warn(StrEnum):
    """Why rows that are used anyway deserve a look (machine-readable code of a warning)."""

    ID_SCIENTIFIC_NOTATION = "id_scientific_notation"
    ID_FLOAT_SUFFIX = "id_float_suffix"
    ID_COLLAPSED_DUPLICATES = "id_collapsed_duplicates"
    TIMEZONE_DEFAULTED = "timezone_defaulted"
    ROWS_NOT_READ = "rows_not_read"


class InputWarning(str):
    """A warning line as printed, that also carries its table, code and number of rows."""

    table: str
    code: str
    rows: int

    def __new__(cls, text: str, *, table: str, code: str, rows: int = 0) -> InputWarning:
        """The warning `text` about `rows` rows of `table`, with its `code`."""
        line = super().__new__(cls, text)
        line.table, line.code, line.rows = table, code, rows
        return line


ID_COLUMNS = ("shop_id", "conversation_id", "message_id")
SCIENTIFIC_ID = r"[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+"
"""An id a spreadsheet showed in scientific notation (`1.79E+18`): its last digits are lost."""
FLOAT_ID = r"[0-9]+\.0+"
"""An id a spreadsheet turned into a decimal number (`3.0` for `3`)."""
AS_TEXT = "re-export with the column formatted as text"
MANGLED_IDS: tuple[tuple[str, Reason, Warn, str], ...] = (
    (
        SCIENTIFIC_ID,
        Reason.ID_SCIENTIFIC_NOTATION,
        Warn.ID_SCIENTIFIC_NOTATION,
        "{column} is in scientific notation: a spreadsheet turned a long id into scientific "
        f"notation and lost its last digits; {AS_TEXT}",
    ),
    (
        FLOAT_ID,
        Reason.ID_FLOAT_SUFFIX,
        Warn.ID_FLOAT_SUFFIX,
        f"{{column}} ends in .0: a spreadsheet turned an id into a decimal number; {AS_TEXT}",
    ),
)


assert all(pattern.startswith("[0-9]") for pattern, *_ in MANGLED_IDS)  # see _full_matches


@dataclass(frozen=True)
class InputCounts:
    """Rows of one table: every row read is used, quarantined or a duplicate."""

    rows_read: int
    rows_used: int
    rows_quarantined: int
    rows_duplicate: int

    def as_dict(self) -> dict[str, int]:
        """The four counts under their SPEC names."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_quarantined": self.rows_quarantined,
            "rows_duplicate": self.rows_duplicate,
        }


@dataclass
class Checked:
    """One table after validation."""

    good: pd.DataFrame
    quarantine: pd.DataFrame
    counts: InputCounts
    warnings: list[str] = field(default_factory=list)
    duplicates_by_shop: pd.Series = field(default_factory=lambda: pd.Series(dtype="int64"))
    """Rows counted as duplicates, per shop_id (messages only)."""


def clean_text(values: pd.Series) -> pd.Series:
    """Text with surrounding white space removed and empty values as missing."""
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return values
    text = pa.chunked_array(arrow_strings(values))
    if any(_maybe_padded(chunk) for chunk in text.chunks):
        stripped = pc.utf8_trim_whitespace(text)
        # Keep the original column (not a second copy) when nothing was stripped.
        if pc.any(pc.not_equal(pc.binary_length(stripped), pc.binary_length(text))).as_py():
            text = stripped
    empty = pc.equal(pc.binary_length(text), 0)
    if pc.any(empty).as_py():
        text = pc.if_else(empty, pa.scalar(None, text.type), text)
    return pd.Series(pd.arrays.ArrowStringArray(text), index=values.index, name=values.name)


def _maybe_padded(text: pa.Array) -> bool:
    """Whether a value may begin or end with white space (a quick look before trimming).

    True when some value's first or last byte is not a visible ASCII character.
    """
    starts, stops, data = _value_bytes(text)
    filled = stops > starts  # empty values have no bytes (they become missing)
    edges = np.concatenate([data[starts[filled]], data[stops[filled] - 1]])
    return bool(((edges <= 0x20) | (edges >= 0x7F)).any())


def _value_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each value of a large_string array starts and stops in its data bytes, and those."""
    _, offsets, data = text.buffers()
    ends = np.frombuffer(offsets, dtype="int64")[text.offset : text.offset + len(text) + 1]
    raw = np.zeros(0, "uint8") if data is None else np.frombuffer(data, dtype="uint8")
    return ends[:-1], ends[1:], raw


def arrow_strings(values: pd.Series) -> pa.ChunkedArray | pa.Array:
    """Text values as an Arrow large_string array (without a detour through Python objects)."""
    if not (isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"):
        values = values.astype("string[pyarrow]")
    array = values.array
    arrow = array._pa_array if hasattr(array, "_pa_array") else array.__arrow_array__()
    return arrow.cast(pa.large_string()) if arrow.type != pa.large_string() else arrow


def arrow_chunks(values: pd.Series) -> pa.ChunkedArray:
    """Text values as Arrow large_string chunks, sharing the column's buffers."""
    return pa.chunked_array(arrow_strings(values))


def dictionary_codes(values: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """One int64 code per value in order of first appearance (-1: missing), and the values.

    The chunks are hashed one by one into one dictionary: no combined copy of the column.
    """
    encoded = pc.dictionary_encode(values)
    if not encoded.num_chunks:
        return np.zeros(0, dtype="int64"), pa.array([], values.type)
    codes = [chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False) for chunk in encoded.chunks]
    return np.concatenate(codes).astype("int64"), encoded.chunk(0).dictionary


def text_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """One int64 code per distinct text value (-1 for missing), and the number of values."""
    arrow = arrow_chunks(values)
    numbers = whole_numbers(arrow)
    codes, distinct = dictionary_codes(arrow if numbers is None else numbers)
    return codes, len(distinct)


WIDEST_NUMBER = 19
"""Digits of the widest id read as a number: every 19-digit number fits in 64 bits unsigned."""


def whole_numbers(text: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """Ids of digits only (as the marketplace's are) as unsigned 64-bit numbers, else None.

    Only when no id has a leading zero, so distinct texts stay distinct numbers: hashing
    numbers is several times faster than hashing their text.
    """
    if not len(text) or text.null_count == len(text):
        return None
    if not pc.all(pc.ascii_is_decimal(text)).as_py() or pc.any(pc.starts_with(text, "0")).as_py():
        return None
    if pc.max(pc.binary_length(text)).as_py() > WIDEST_NUMBER:
        return None
    return pc.cast(text, pa.uint64())


def canonical_roles(roles: pd.Series) -> pd.Series:
    """Sender roles mapped to buyer/seller/auto_reply/system; unknown roles become missing."""
    codes, distinct = dictionary_codes(arrow_chunks(roles))
    # Python's lower case of each distinct role (Arrow's maps `İ` to `i`, not to `i̇`).
    lower = pd.Series([role.lower() for role in distinct.to_pylist()], dtype=object)
    canonical = lower.map(ROLE_ALIASES).astype(ROLES)
    lookup = np.append(canonical.cat.codes.to_numpy(), -1)  # code -1 (missing) stays missing
    return pd.Series(pd.Categorical.from_codes(lookup[codes], dtype=ROLES), index=roles.index)


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
        # values with such digits are parsed again (found in review).
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
    return pd.Series(pd.NA, index=index, dtype="string")


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


def first_reason(checks: list[tuple[pd.Series, str, str]], index: pd.Index) -> pd.DataFrame:
    """Per row, the first failing check's reason code and message (missing when the row is good)."""
    which = np.full(len(index), -1, dtype="int64")
    for number, (failed, _, _) in enumerate(checks):
        take = np.asarray(failed.fillna(False), dtype=bool) & (which == -1)
        which[take] = number
    reasons = pd.Series([r for _, r, _ in checks] + [pd.NA], dtype="string")
    messages = pd.Series([m for _, _, m in checks] + [pd.NA], dtype="string")
    bad = which >= 0
    code = pd.Series(pd.NA, index=index, dtype="string") if bad.any() else _missing_text(index)
    message = code.copy()
    if bad.any():
        code.iloc[bad] = reasons.to_numpy()[which[bad]]
        message.iloc[bad] = messages.to_numpy()[which[bad]]
    return pd.DataFrame({"reason": code, "message": message})


def _missing_text(index: pd.Index) -> pd.Series:
    """A text column of missing values, built without a Python object per row."""
    nulls = pa.chunked_array([pa.nulls(len(index), pa.large_string())])
    return pd.Series(pd.arrays.ArrowStringArray(nulls), index=index)


def missing_checks(
    frame: pd.DataFrame, columns: tuple[str, ...]
) -> list[tuple[pd.Series, str, str]]:
    """One check per required column: the value must be present."""
    return [
        (frame[c].isna(), Reason.MISSING_VALUE.value, f"required value {c} is missing")
        for c in columns
    ]


def parse_error_check(raw: pd.DataFrame) -> tuple[pd.Series, str, str]:
    """Rows the reader could not split into fields."""
    errors = raw[PARSE_ERROR] if PARSE_ERROR in raw.columns else pd.Series(pd.NA, index=raw.index)
    return errors.notna(), Reason.MALFORMED_ROW.value, "row could not be read as a record"


def quarantine_rows(raw: pd.DataFrame, reasons: pd.DataFrame, table: str) -> pd.DataFrame:
    """Bad rows as read, with their row number, reason code and message."""
    bad = reasons["reason"].notna()
    if not bad.any():  # the common case: no row is bad (selecting none of many rows is slow)
        raw, reasons, bad = raw.iloc[:0], reasons.iloc[:0], bad.iloc[:0]
    original = raw.loc[bad].drop(columns=[PARSE_ERROR, ROW], errors="ignore")
    message = reasons.loc[bad, "message"]
    if PARSE_ERROR in raw.columns:
        detail = raw.loc[bad, PARSE_ERROR]
        message = message.mask(detail.notna(), detail)
    head = pd.DataFrame(
        {
            "table": table,
            ROW: raw.loc[bad, ROW],
            "reason": reasons.loc[bad, "reason"],
            "message": message,
        }
    )
    return pd.concat([head, original.apply(_as_text)], axis=1).reset_index(drop=True)


def _as_text(column: pd.Series) -> pd.Series:
    """A quarantined column as text; typed instants each by their own `isoformat` (pandas'
    text of a column pads every value to the finest fraction among the rows converted with it,
    so it depended on the other bad rows: found in audit)."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column.map(lambda t: t.isoformat(), na_action="ignore").astype("string")
    return column.astype("string")


@dataclass(frozen=True)
class IdFinding:
    """Rows of one id column in one mangled form: how many, and the first example."""

    form: int
    """Position of the form in MANGLED_IDS."""
    column: str
    rows: int
    example: str


def mangled_id_findings(
    clean: pd.DataFrame, reject: bool
) -> tuple[list[tuple[pd.Series, str, str]], list[IdFinding]]:
    """Ids a spreadsheet mangled (`1.79E+18`, `3.0`): checks when rejected, else findings."""
    checks: list[tuple[pd.Series, str, str]] = []
    findings: list[IdFinding] = []
    columns = [c for c in ID_COLUMNS if c in clean]
    patterns = [pattern for pattern, *_ in MANGLED_IDS]
    matches = {c: _full_matches(clean[c], patterns) for c in columns}
    for form, (_, reason, _, text) in enumerate(MANGLED_IDS):
        for column in columns:
            matched = matches[column][form]
            if reject:
                checks.append((matched, reason.value, text.format(column=column)))
            elif matched.any():
                example = str(clean[column][matched].iloc[0])
                findings.append(IdFinding(form, column, int(matched.sum()), example))
    return checks, findings


def id_warnings(findings: list[IdFinding], table: str) -> list[str]:
    """One warning line per id column and form, over all blocks of a table (in block order)."""
    merged: dict[tuple[int, int], IdFinding] = {}
    for f in findings:
        key = (f.form, ID_COLUMNS.index(f.column))
        first = merged.get(key)
        merged[key] = f if first is None else replace(first, rows=first.rows + f.rows)
    lines = []
    for key in sorted(merged):
        f = merged[key]
        _, _, code, text = MANGLED_IDS[f.form]
        message = text.format(column=f.column)
        line = f"{table}: {message} (in {f.rows} row(s), e.g. {f.example!r}; used as they are)"
        lines.append(InputWarning(line, table=table, code=code.value, rows=f.rows))
    return lines


def mangled_id_checks(
    clean: pd.DataFrame, table: str, reject: bool
) -> tuple[list[tuple[pd.Series, str, str]], list[str]]:
    """Ids a spreadsheet mangled (`1.79E+18`, `3.0`): checks when rejected, else warnings."""
    checks, findings = mangled_id_findings(clean, reject)
    return checks, id_warnings(findings, table)


def _full_matches(values: pd.Series, patterns: list[str]) -> list[pd.Series]:
    """Which text values match each pattern whole (each pattern begins with a digit)."""
    arrow = arrow_chunks(values)
    none = [pd.Series(False, index=values.index) for _ in patterns]
    # Cheap first passes: candidates begin with a digit and are not all digits.
    first = np.concatenate([np.zeros(0, "uint8"), *map(_first_bytes, arrow.chunks)])
    maybe = (first >= ord("0")) & (first <= ord("9"))
    if not maybe.any():
        return none
    maybe &= ~pc.ascii_is_decimal(arrow).fill_null(True).to_numpy(zero_copy_only=False)
    if not maybe.any():
        return none
    # The patterns run over the distinct candidates only (few: ids repeat across rows).
    distinct = pc.unique(arrow.filter(pa.array(maybe)))
    found = []
    for pattern in patterns:
        hits = distinct.filter(pc.match_substring_regex(distinct, f"^(?:{pattern})$"))
        matched = pc.is_in(arrow, value_set=hits).fill_null(False) if len(hits) else None
        found.append(
            pd.Series(matched.to_numpy(zero_copy_only=False), index=values.index)
            if matched is not None
            else pd.Series(False, index=values.index)
        )
    return found


def _first_bytes(text: pa.Array) -> np.ndarray:
    """The first byte of each value (0 for an empty or missing one)."""
    starts, stops, data = _value_bytes(text)
    first = np.zeros(len(text), dtype="uint8")
    filled = stops > starts
    if text.null_count:
        filled &= text.is_valid().to_numpy(zero_copy_only=False)
    first[filled] = data[starts[filled]]
    return first


def collapsed_id_warnings(ids: pd.Series, duplicate: pd.Series, table: str) -> list[str]:
    """A warning when rows counted as duplicates have scientific-notation ids (likely collapsed)."""
    repeated = ids[duplicate.to_numpy()].astype("string")
    collapsed = repeated.str.fullmatch(SCIENTIFIC_ID).fillna(False).astype(bool)
    rows = int(collapsed.sum())
    if not rows:
        return []
    example = repeated[collapsed].iloc[0]
    line = (
        f"{table}: {rows} row(s) counted as duplicates have a message_id in scientific notation "
        f"(e.g. {example!r}): probably different messages whose ids a spreadsheet collapsed into "
        f"one; {AS_TEXT}"
    )
    return [InputWarning(line, table=table, code=Warn.ID_COLLAPSED_DUPLICATES.value, rows=rows)]


CONVERSATION_KEYS = ("shop_key", "conversation_key")
"""Integer columns of merged messages: equal in both, same conversation (SPEC 2)."""


def id_numbers(values: pd.Series) -> np.ndarray:
    """One integer per distinct id: the id itself when every one is a whole number, else a code.

    Marketplace ids are numbers: used as they are, they need no hashing.
    """
    arrow = arrow_chunks(values)
    numbers = whole_numbers(arrow)
    if numbers is not None and not numbers.null_count:
        return numbers.to_numpy()
    return dictionary_codes(arrow)[0]


def row_zones(shop_id: pd.Series, zones: pd.Series, instants: pd.Series) -> pd.Series:
    """Each row's shop zone, for reading naive times (typed aware instants need none)."""
    if isinstance(instants.dtype, pd.DatetimeTZDtype):
        return pd.Series(UTC, index=shop_id.index, dtype="string")
    return shop_id.map(zones)


def seen_shop_ids(raw: pd.DataFrame) -> pd.Index:
    """Every non-empty shop_id in the table's rows, bad and duplicate rows included."""
    if "shop_id" not in raw.columns:
        return pd.Index([], dtype="string")
    distinct = pd.Series(pa.chunked_array(arrow_strings(raw["shop_id"])).unique(), dtype="string")
    return pd.Index(clean_text(distinct).dropna().unique(), dtype="string")


def check_shops(
    raw: RawTable,
    market_zones: Mapping[str, str],
    default_tz: str,
    *,
    reject_mangled_ids: bool = False,
) -> Checked:
    """Shops: known IANA zones; first good row per shop wins; each shop's effective zone."""
    frame = raw.frame
    clean = pd.DataFrame(
        {c: clean_text(frame[c]) for c in ("shop_id", "name", "market", "timezone") if c in frame}
    )
    for column in ("name", "market", "timezone"):
        if column not in clean:
            clean[column] = pd.Series(pd.NA, index=frame.index, dtype="string")
    zones = known_timezones()
    unknown_zone = clean["timezone"].notna() & ~clean["timezone"].isin(zones)
    id_checks, id_warnings = mangled_id_checks(clean, "shops", reject_mangled_ids)
    checks = [
        parse_error_check(frame),
        *missing_checks(clean, TABLES["shops"]),
        *id_checks,
        (unknown_zone, Reason.UNKNOWN_TIMEZONE.value, "timezone is not a known IANA zone name"),
    ]
    reasons = first_reason(checks, frame.index)
    ok = reasons["reason"].isna()
    good = clean[ok]
    duplicate = good["shop_id"].duplicated(keep="first")
    good = good[~duplicate].copy()
    good["market"] = good["market"].map(str.upper, na_action="ignore")  # Python's upper case
    by_market = good["market"].map(dict(market_zones))
    good["timezone"] = good["timezone"].fillna(by_market)
    warnings = [
        *id_warnings,
        *(
            InputWarning(
                f"shop {shop}: no timezone and no known market; using {default_tz}",
                table="shops",
                code=Warn.TIMEZONE_DEFAULTED.value,
                rows=1,
            )
            for shop in good.loc[good["timezone"].isna(), "shop_id"]
        ),
    ]
    good["timezone"] = good["timezone"].fillna(default_tz)
    return checked(
        frame, reasons, "shops", good.reset_index(drop=True), int(duplicate.sum()), warnings
    )


@dataclass
class MessageRows:
    """One block of message rows after the per-row checks (duplicates are not known yet)."""

    good: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int
    findings: list[IdFinding]


def check_message_rows(
    frame: pd.DataFrame,
    zones: pd.Series,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
) -> MessageRows:
    """Messages: required values, known roles, timestamps (one block of rows)."""
    required = TABLES["messages"]
    clean = pd.DataFrame({c: clean_text(frame[c]) for c in required})
    role = canonical_roles(clean["sender_role"])
    sent_at, time_reason = parse_instants(
        clean["sent_at"], row_zones(clean["shop_id"], zones, clean["sent_at"]), date_format
    )
    id_checks, findings = mangled_id_findings(clean, reject_mangled_ids)
    checks = [
        parse_error_check(frame),
        *missing_checks(clean, required),
        *id_checks,
        (role.isna(), Reason.UNKNOWN_ROLE.value, "sender_role is not a known role"),
        *_timestamp_checks(time_reason, "sent_at", date_format),
    ]
    reasons = first_reason(checks, frame.index)
    ok = reasons["reason"].isna().to_numpy()
    good = pd.DataFrame(
        {
            "shop_id": clean["shop_id"],
            "conversation_id": clean["conversation_id"],
            "message_id": clean["message_id"],
            "sender_role": role,
            "sent_at": sent_at,
        }
    )
    for column in ("sender_id", "message_type", "content"):
        good[column] = clean_text(frame[column]) if column in frame else _missing_text(frame.index)
    good[ROW] = frame[ROW]
    if not ok.all():
        good = good[ok]
    return MessageRows(good, quarantine_rows(frame, reasons, "messages"), len(frame), findings)


def merged_messages(blocks: list[MessageRows]) -> Checked:
    """Checked blocks as one table: repeated message_ids are duplicates, conversations keyed."""
    good = (
        pd.concat([b.good for b in blocks], ignore_index=True)
        if len(blocks) != 1
        else blocks[0].good.reset_index(drop=True)
    )
    # Arrow and numpy release the GIL: conversation ids are keyed on a second core meanwhile.
    with ThreadPoolExecutor(1) as pool:
        conversation = pool.submit(id_numbers, good["conversation_id"])
        shop, _ = text_codes(good["shop_id"])
        duplicate = pd.Series(repeated_ids(shop, good["message_id"]), index=good.index)
        good["shop_key"], good["conversation_key"] = shop, conversation.result()
    used = good[~duplicate].reset_index(drop=True) if duplicate.any() else good
    warnings = [
        *id_warnings([f for b in blocks for f in b.findings], "messages"),
        *collapsed_id_warnings(good["message_id"], duplicate, "messages"),
    ]
    quarantine = [b.quarantine for b in blocks if len(b.quarantine)]
    return Checked(
        good=used,
        quarantine=pd.concat(quarantine, ignore_index=True) if quarantine else blocks[0].quarantine,
        counts=_counts(sum(b.rows_read for b in blocks), len(used), int(duplicate.sum())),
        warnings=warnings,
        duplicates_by_shop=good.loc[duplicate.to_numpy(), "shop_id"].value_counts(),
    )


def check_messages(
    raw: RawTable,
    zones: pd.Series,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
) -> Checked:
    """Messages: required values, known roles, timestamps; repeated message_ids are duplicates."""
    rows = check_message_rows(
        raw.frame, zones, date_format=date_format, reject_mangled_ids=reject_mangled_ids
    )
    return merged_messages([rows])


def repeated_ids(shop: np.ndarray, ids: pd.Series) -> np.ndarray:
    """Which rows repeat the id of an earlier row of the same shop (`shop` holds shop codes)."""
    arrow = arrow_chunks(ids)
    numbers = whole_numbers(arrow)
    if numbers is None or numbers.null_count:
        return repeated_pairs(shop, text_codes(ids)[0])
    # Numeric ids: a stable sort (fast on ids that mostly rise, as the marketplace's do) finds
    # the values that occur more than once; only their rows are compared as (shop, id) pairs.
    values = numbers.to_numpy()
    ordered = np.sort(values, kind="stable")
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    repeated = np.zeros(len(values), dtype=bool)
    if not len(shared):
        return repeated
    rows = np.flatnonzero(np.isin(values, shared))
    codes, _ = pd.factorize(values[rows])
    repeated[rows] = repeated_pairs(shop[rows], codes.astype("int64"))
    return repeated


def repeated_pairs(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Which (first, second) code pairs occurred in an earlier row (codes >= 0).

    `second` codes number values in order of first appearance (as `text_codes` does), so a row
    whose code is not above every earlier one may repeat a value: only those codes are compared.
    """
    if not len(second):
        return np.zeros(0, dtype=bool)
    earlier_max = np.maximum.accumulate(np.concatenate([[-1], second[:-1]]))
    maybe = (second <= earlier_max) & (second >= 0)  # a missing value (-1) repeats nothing
    if not maybe.any():
        return maybe
    involved = np.zeros(int(second.max()) + 1, dtype=bool)
    involved[second[maybe]] = True
    rows = np.flatnonzero(involved[second])
    pairs = pd.Series(first[rows] * (int(second.max()) + 1) + second[rows])
    repeated = np.zeros(len(second), dtype=bool)
    repeated[rows] = pairs.duplicated().to_numpy()
    return repeated


def check_ratings(
    raw: RawTable,
    zones: pd.Series,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
) -> Checked:
    """Ratings: whole numbers 1..5 and SPEC timestamps."""
    frame = raw.frame
    required = TABLES["ratings"]
    clean = pd.DataFrame({c: clean_text(frame[c]) for c in required})
    rating = whole_rating(clean["rating"])
    rated_at, time_reason = parse_instants(
        clean["rated_at"], row_zones(clean["shop_id"], zones, clean["rated_at"]), date_format
    )
    id_checks, warnings = mangled_id_checks(clean, "ratings", reject_mangled_ids)
    checks = [
        parse_error_check(frame),
        *missing_checks(clean, required),
        *id_checks,
        (rating.isna(), Reason.BAD_RATING.value, "rating is not a whole number from 1 to 5"),
        *_timestamp_checks(time_reason, "rated_at", date_format),
    ]
    reasons = first_reason(checks, frame.index)
    ok = reasons["reason"].isna().to_numpy()
    good = pd.DataFrame(
        {
            "shop_id": clean["shop_id"],
            "conversation_id": clean["conversation_id"],
            "rating": rating,
            "rated_at": rated_at,
            ROW: frame[ROW],
        }
    )[ok].reset_index(drop=True)
    return checked(frame, reasons, "ratings", good, 0, warnings)


def check_holiday_mode(
    raw: RawTable,
    zones: pd.Series,
    *,
    date_format: str | None = None,
    reject_mangled_ids: bool = False,
) -> Checked:
    """Holiday Mode periods: SPEC timestamps, an empty end means still on, end not before start."""
    frame = raw.frame
    clean = pd.DataFrame({c: clean_text(frame[c]) for c in TABLES["holiday_mode"]})
    shop_zones = clean["shop_id"].map(zones)
    start, start_reason = parse_instants(clean["start"], shop_zones, date_format)
    end, end_reason = parse_instants(clean["end"], shop_zones, date_format)
    id_checks, warnings = mangled_id_checks(clean, "holiday_mode", reject_mangled_ids)
    checks = [
        parse_error_check(frame),
        *missing_checks(clean, ("shop_id", "start")),
        *id_checks,
        *_timestamp_checks(start_reason, "start", date_format),
        *_timestamp_checks(end_reason, "end", date_format),
        (end < start, Reason.END_BEFORE_START.value, "end is before start"),
    ]
    reasons = first_reason(checks, frame.index)
    ok = reasons["reason"].isna().to_numpy()
    good = pd.DataFrame({"shop_id": clean["shop_id"], "start": start, "end": end})[ok]
    return checked(frame, reasons, "holiday_mode", good.reset_index(drop=True), 0, warnings)


def whole_rating(values: pd.Series) -> pd.Series:
    """Ratings 1..5 written as whole numbers (`5`, `5.0`); anything else is missing."""
    whole = values.str.fullmatch(r"[0-9]+(?:\.0+)?").fillna(False).astype(bool)
    number = pd.to_numeric(values.where(whole), errors="coerce")
    return number.where((number >= 1) & (number <= 5)).astype("Int8")


def _timestamp_checks(
    reason: pd.Series, column: str, date_format: str | None = None
) -> list[tuple[pd.Series, str, str]]:
    forms = "ISO-8601 or Unix seconds/milliseconds"
    if date_format is not None:
        forms = f"ISO-8601, Unix seconds/milliseconds or --date-format {date_format}"
    return [
        (
            reason == Reason.BAD_TIMESTAMP.value,
            Reason.BAD_TIMESTAMP.value,
            f"{column} is not an accepted timestamp ({forms})",
        ),
        (
            reason == Reason.LOCAL_TIME_GAP.value,
            Reason.LOCAL_TIME_GAP.value,
            f"{column} is a local time that does not exist or is ambiguous in the shop's timezone",
        ),
    ]


def checked(
    frame: pd.DataFrame,
    reasons: pd.DataFrame,
    table: str,
    used: pd.DataFrame,
    duplicates: int,
    warnings: list[str],
) -> Checked:
    """One validated table: its used rows, quarantine, counts and warnings."""
    return Checked(
        good=used,
        quarantine=quarantine_rows(frame, reasons, table),
        counts=_counts(len(frame), len(used), duplicates),
        warnings=list(warnings),
    )


def _counts(read: int, used: int, duplicate: int) -> InputCounts:
    return InputCounts(read, used, read - used - duplicate, duplicate)
