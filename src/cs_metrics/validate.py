"""Check raw tables row by row: typed good rows, quarantined bad rows with reasons, counts.

The duplicate rule (SPEC 8) is settled apart, in `duplicates`, once the rows are checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cs_metrics.arrow_text import (
    all_digits,
    arrow_chunks,
    arrow_strings,
    clean_text,
    dictionary_codes,
    first_bytes,
    missing_text,
)
from cs_metrics.readers import PARSE_ERROR, ROW, TABLES, RawTable
from cs_metrics.reasons import ID_COLUMNS, MANGLED_IDS, InputCounts, InputWarning, Reason, Warn
from cs_metrics.timestamps import known_timezones, parse_instants, row_zones

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
AS_CATEGORIES = ("sender_role",)
"""Message columns the check takes as pandas categories where a reader has them so (a Parquet
file's dictionaries): each distinct role is cleaned and mapped once, not once per row."""


assert all(pattern.startswith("[0-9]") for pattern, *_ in MANGLED_IDS)  # see _full_matches


@dataclass
class Checked:
    """One table after validation."""

    good: pd.DataFrame
    quarantine: pd.DataFrame
    counts: InputCounts
    warnings: list[str] = field(default_factory=list)


def canonical_roles(roles: pd.Series) -> pd.Series:
    """Sender roles (text or categories) mapped to buyer/seller/auto_reply/system; unknown roles
    become missing."""
    if isinstance(roles.dtype, pd.CategoricalDtype):
        codes, distinct = roles.cat.codes.to_numpy(), roles.cat.categories.tolist()
    else:
        found, values = dictionary_codes(arrow_chunks(roles))
        codes, distinct = found, values.to_pylist()
    # Python's lower case of each distinct role (Arrow's maps `İ` to `i`, not to `i̇`).
    lower = pd.Series([role.lower() for role in distinct], dtype=object)
    canonical = lower.map(ROLE_ALIASES).astype(ROLES)
    lookup = np.append(canonical.cat.codes.to_numpy(), -1)  # code -1 (missing) stays missing
    return pd.Series(pd.Categorical.from_codes(lookup[codes], dtype=ROLES), index=roles.index)


def first_reason(checks: list[tuple[pd.Series, str, str]], index: pd.Index) -> pd.DataFrame:
    """Per row, the first failing check's reason code and message (missing when the row is good)."""
    which = np.full(len(index), -1, dtype="int64")
    for number, (failed, _, _) in enumerate(checks):
        fails = failed.to_numpy(dtype=bool, na_value=False)
        if fails.any():  # most checks fail nowhere
            which[fails & (which == -1)] = number
    reasons = pd.Series([r for _, r, _ in checks] + [pd.NA], dtype="string")
    messages = pd.Series([m for _, _, m in checks] + [pd.NA], dtype="string")
    bad = which >= 0
    code = pd.Series(pd.NA, index=index, dtype="string") if bad.any() else missing_text(index)
    message = code.copy()
    if bad.any():
        code.iloc[bad] = reasons.to_numpy()[which[bad]]
        message.iloc[bad] = messages.to_numpy()[which[bad]]
    return pd.DataFrame({"reason": code, "message": message})


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
    so a value's text would depend on the other bad rows)."""
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
    lines: list[str] = []
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
    first = first_bytes(arrow)
    maybe = (first >= ord("0")) & (first <= ord("9"))
    if not maybe.any():
        return none
    if all_digits(arrow):  # marketplace ids: no value can match, known without a row's look
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
        clean["sent_at"], partial(row_zones, clean["shop_id"], zones, clean["sent_at"]), date_format
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
        good[column] = clean_text(frame[column]) if column in frame else missing_text(frame.index)
    good[ROW] = frame[ROW]
    if not ok.all():
        good = good[ok]
    return MessageRows(good, quarantine_rows(frame, reasons, "messages"), len(frame), findings)


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
        clean["rated_at"],
        partial(row_zones, clean["shop_id"], zones, clean["rated_at"]),
        date_format,
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
    """Ratings 1..5 written as whole numbers (`5`, `5.0`); anything else is missing.

    Each distinct text is read once (a table of ratings holds a few: `1` to `5`, maybe `5.0`).
    """
    codes, distinct = dictionary_codes(arrow_chunks(values))
    text = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([distinct], pa.large_string())))
    whole = text.str.fullmatch(r"[0-9]+(?:\.0+)?").fillna(False).astype(bool)
    number = pd.to_numeric(text.where(whole), errors="coerce")
    rating = number.where((number >= 1) & (number <= 5)).fillna(0).to_numpy("int8")
    found = np.append(rating, 0).astype("int8")[codes]  # code -1 (missing) finds 0: no rating
    return pd.Series(pd.arrays.IntegerArray(found, found == 0), index=values.index)


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


@dataclass(frozen=True)
class BlockCheck:
    """One block of message rows checked: the shops it names (bad rows too) and its rows."""

    shop_ids: pd.Index
    rows: MessageRows


@dataclass(frozen=True)
class MessageCheck:
    """The per-block check of the messages table, the same for every engine and worker.

    Picklable (a Dask worker receives it): the known zones of the shops table, and the settings.
    """

    known_zones: pd.Series
    """The time zone of each shop of the shops table, indexed by shop_id."""
    default_timezone: str
    date_format: str | None = None
    reject_mangled_ids: bool = False

    def __call__(self, block: pd.DataFrame) -> BlockCheck:
        """The shop_ids seen in a block of message rows, and the block after the row checks."""
        shops = seen_shop_ids(block)
        zones = self.known_zones.reindex(shops).fillna(self.default_timezone).astype("string")
        rows = check_message_rows(
            block,
            zones,
            date_format=self.date_format,
            reject_mangled_ids=self.reject_mangled_ids,
        )
        return BlockCheck(shops, rows)
