"""Timestamps (SPEC 1): accepted forms, zones, typed Parquet times, local-time gaps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import compute, run, shop, write_csv, write_parquet
from cs_metrics import timestamps
from cs_metrics.reasons import Reason
from cs_metrics.timestamps import parse_instants

UTC = dt.UTC


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=UTC))


def parse_one(text: str, zone: str = "UTC") -> tuple[pd.Timestamp | None, str | None]:
    """One timestamp text parsed in a shop zone: (instant, reason)."""
    instants, reasons = parse_instants(pd.Series([text], dtype="string"), pd.Series([zone]))
    instant, reason = instants.iloc[0], reasons.iloc[0]
    return (None if pd.isna(instant) else instant), (None if pd.isna(reason) else reason)


GOOD_TIMESTAMPS = [
    ("2026-11-17T10:00:00Z", "Asia/Singapore", utc(2026, 11, 17, 10)),
    ("2026-11-17 10:00:00Z", "UTC", utc(2026, 11, 17, 10)),
    ("2026-11-17T10:00:00+08:00", "UTC", utc(2026, 11, 17, 2)),
    ("2026-11-17T10:00:00+0800", "UTC", utc(2026, 11, 17, 2)),
    ("2026-11-17T10:00:00-05:30", "UTC", utc(2026, 11, 17, 15, 30)),
    ("2026-11-17T10:00:00-0530", "UTC", utc(2026, 11, 17, 15, 30)),
    ("2026-11-17T10:00Z", "UTC", utc(2026, 11, 17, 10)),
    ("2026-11-17T10:00:00", "Asia/Singapore", utc(2026, 11, 17, 2)),
    ("2026-11-17 10:00", "America/Los_Angeles", utc(2026, 11, 17, 18)),
    ("2026-11-17", "Asia/Singapore", utc(2026, 11, 16, 16)),
    ("2026-11-17", "UTC", utc(2026, 11, 17)),
    ("2026-11-17T10:00:00.5Z", "UTC", utc(2026, 11, 17, 10, 0, 0, 500000)),
    ("2026-11-17T10:00:00.001+00:00", "UTC", utc(2026, 11, 17, 10, 0, 0, 1000)),
    ("2026-11-17T10:00:00.123456", "Asia/Singapore", utc(2026, 11, 17, 2, 0, 0, 123456)),
    ("1794877200", "Asia/Singapore", utc(2026, 11, 17, 1)),
    ("0", "UTC", utc(1970, 1, 1)),
    ("99999999999", "UTC", utc(5138, 11, 16, 9, 46, 39)),
    ("10000000000", "UTC", utc(2286, 11, 20, 17, 46, 40)),
    ("100000000000", "UTC", utc(1973, 3, 3, 9, 46, 40)),
    ("1794877200000", "UTC", utc(2026, 11, 17, 1)),
    ("1794877200123", "UTC", utc(2026, 11, 17, 1, 0, 0, 123000)),
    ("2026-03-29T02:30:00+01:00", "Europe/London", utc(2026, 3, 29, 1, 30)),
    ("2026-03-29T00:30:00", "Europe/London", utc(2026, 3, 29, 0, 30)),
]


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    GOOD_TIMESTAMPS,
    ids=[
        "Z",
        "space_separator_Z",
        "plus_hh_colon_mm",
        "plus_hhmm",
        "minus_hh_colon_mm",
        "minus_hhmm",
        "minutes_only_Z",
        "naive_is_shop_local",
        "naive_minutes_only_la",
        "date_only_is_local_midnight",
        "date_only_utc",
        "fraction_half_second",
        "fraction_millisecond",
        "naive_fraction_micro",
        "unix_seconds_10_digits",
        "unix_zero",
        "unix_seconds_11_digits_year_5138",
        "unix_seconds_year_2286",
        "unix_milliseconds_from_12_digits",
        "unix_milliseconds_13_digits",
        "unix_milliseconds_with_millis",
        "offset_given_in_london_gap_is_fine",
        "naive_before_london_gap",
    ],
)
def test_accepted_timestamp_forms(text: str, zone: str, expected: pd.Timestamp) -> None:
    assert parse_one(text, zone) == (expected, None)


@pytest.mark.parametrize(
    ("text", "date_format", "expected"),
    [
        ("17/11/2026 10:29:60", "%d/%m/%Y %H:%M:%S", None),
        ("17/11/2026 10:29:61", "%d/%m/%Y %H:%M:%S", None),
        ("17/11/2026 10:29:59", "%d/%m/%Y %H:%M:%S", utc(2026, 11, 17, 10, 29, 59)),
        ("16/06/2061 06:16:16", "%d/%m/%Y %H:%M:%S", utc(2061, 6, 16, 6, 16, 16)),
        ("2026-11-17 10:00:60 +0000", "%Y-%m-%d %H:%M:%S %z", None),
    ],
)
def test_date_format_seconds_stop_at_59(
    text: str, date_format: str, expected: pd.Timestamp | None
) -> None:
    """Found in review: with --date-format, pandas' %S took 60 and 61 and rolled over."""
    instants, reasons = parse_instants(
        pd.Series([text], dtype="string"), pd.Series(["UTC"]), date_format
    )
    assert (None if pd.isna(instants.iloc[0]) else instants.iloc[0]) == expected
    assert pd.isna(reasons.iloc[0]) == (expected is not None)


@pytest.mark.parametrize(
    ("text", "zone", "reason"),
    [
        ("junk", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:00:00+08", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-02-30", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T24:00:00Z", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:29:60Z", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-22 23:59:61", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:60Z", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:00:00.Z", "UTC", Reason.BAD_TIMESTAMP),
        ("17/11/2026", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-11-17T10:00:00 UTC", "UTC", Reason.BAD_TIMESTAMP),
        ("+1794877200", "UTC", Reason.BAD_TIMESTAMP),
        ("1794877200.5", "UTC", Reason.BAD_TIMESTAMP),
        ("2026-03-29T01:30:00", "Europe/London", Reason.LOCAL_TIME_GAP),
        ("2026-10-25T01:30:00", "Europe/London", Reason.LOCAL_TIME_GAP),
        ("2026-09-06", "America/Santiago", Reason.LOCAL_TIME_GAP),
    ],
    ids=[
        "junk",
        "offset_hours_only",
        "no_such_date",
        "hour_24",
        "second_60_found_in_audit",
        "second_61_naive",
        "minute_60",
        "hour_without_minutes",
        "empty_fraction",
        "day_first_date",
        "zone_name_suffix",
        "signed_number",
        "decimal_number",
        "london_spring_gap",
        "london_autumn_overlap",
        "date_only_midnight_missing_in_santiago",
    ],
)
def test_rejected_timestamps_have_a_reason(text: str, zone: str, reason: Reason) -> None:
    assert parse_one(text, zone) == (None, reason.value)


def test_typed_parquet_timestamps_with_zone_are_instants_and_without_are_local(
    data: Path,
) -> None:
    """Zoned typed sent_at is that instant; naive typed holiday `start` is the shop's local time."""
    aware = pa.array(
        [dt.datetime(2026, 11, 17, 2, tzinfo=UTC), dt.datetime(2026, 11, 17, 2, 30, tzinfo=UTC)],
        pa.timestamp("us", "UTC"),
    )
    write_parquet(
        data,
        "messages",
        pa.table(
            {
                "shop_id": ["S1", "S1"],
                "conversation_id": ["c1", "c1"],
                "message_id": ["m1", "m2"],
                "sender_role": ["buyer", "seller"],
                "sent_at": aware,
            }
        ),
    )
    write_parquet(
        data,
        "holiday_mode",
        pa.table(
            {
                "shop_id": ["S1"],
                "start": pa.array([dt.datetime(2026, 11, 17, 10, 10)], pa.timestamp("ms")),
                "end": pa.array([dt.datetime(2026, 11, 17, 10, 20)], pa.timestamp("ms")),
            }
        ),
    )
    write_csv(data, "shops", "shop_id,market\nS1,SG\n")
    doc = compute(data)
    s1 = shop(doc, "S1")
    # 02:00Z..02:30Z is 10:00..10:30 in Singapore; 10 minutes of Holiday Mode come off.
    assert s1["first_response_minutes_mean"] == 20.0
    assert doc["input"]["holiday_mode"]["rows_used"] == 1


def test_typed_parquet_naive_timestamp_in_a_dst_gap_is_a_bad_row(data: Path) -> None:
    write_parquet(
        data,
        "messages",
        pa.table(
            {
                "shop_id": ["L1", "L1"],
                "conversation_id": ["c1", "c1"],
                "message_id": ["m1", "m2"],
                "sender_role": ["buyer", "seller"],
                "sent_at": pa.array(
                    [dt.datetime(2026, 3, 29, 1, 30), dt.datetime(2026, 3, 29, 3, 0)],
                    pa.timestamp("us"),
                ),
            }
        ),
    )
    write_csv(data, "shops", "shop_id,market\nL1,GB\n")
    dataset, _ = run(data, start="2026-03-23", end="2026-03-29")
    assert dataset.counts["messages"].rows_quarantined == 1
    assert list(dataset.quarantine["messages"]["reason"]) == [Reason.LOCAL_TIME_GAP.value]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet="0123456789-:T .,+Zz\n٣", max_size=32),
            st.from_regex(timestamps._ISO, fullmatch=True),
        ),
        max_size=8,
    )
)
def test_iso_parts_by_arrow_match_python_regex(values):
    """Arrow's RE2 finds the parts of a timestamp exactly where Python's `re` does."""
    text = pd.Series(values, dtype="string")
    got = timestamps._iso_parts(text)
    want = text.str.extract(timestamps._ISO)
    assert got.astype(object).where(got.notna(), None).to_numpy().tolist() == (
        want.astype(object).where(want.notna(), None).to_numpy().tolist()
    )


EDGES = {
    "year": ["0000", "0001", "1899", "2201", "9999"],
    "month": ["00", "13"],
    "day": ["00", "29", "30", "31", "32"],
    "hour": ["24", "99"],
    "minute": ["60"],
    "second": ["60", "61"],
    "offset_hour": ["24", "99"],
    "offset_minute": ["60", "99"],
    "separator": ["t", "_", "  "],
    "fraction": [".", ".5", ".1234", ".1234567", ".12a"],
    "zone": ["", "z", "−08:00", "+8:00", "+08:0", "+08:00:00", "UTC"],
    "tail": ["\n", " ", "\n\n", "Z"],
}
"""Per field of a timestamp, values at or past its edges (each tried alone on a valid value)."""


@st.composite
def near_exact_timestamps(draw: st.DrawFn) -> str | None:
    """A valid timestamp in one of the forms read from bytes (or the like), perhaps with one
    field at or past its edges (29 February of any year, hour 24, second 60, offset +08:60,
    years beyond the read ones, other separators, fractions and zones), a stray byte or a
    trailing newline."""
    if draw(st.integers(0, 19)) == 0:
        return None
    field = {
        "year": f"{draw(st.integers(1900, 2200)):04d}",
        "month": f"{draw(st.integers(1, 12)):02d}",
        "day": f"{draw(st.integers(1, 28)):02d}",
        "hour": f"{draw(st.integers(0, 23)):02d}",
        "minute": f"{draw(st.integers(0, 59)):02d}",
        "second": f"{draw(st.integers(0, 59)):02d}",
        "offset_hour": f"{draw(st.integers(0, 23)):02d}",
        "offset_minute": f"{draw(st.integers(0, 59)):02d}",
        "separator": draw(st.sampled_from(["T", " "])),
        "fraction": draw(st.sampled_from(["", ".123", ".123456"])),
        "zone": draw(st.sampled_from(["Z", "+", "-"])),
        "tail": "",
    }
    broken = draw(st.sampled_from([None, None, "stray", "leap", *EDGES]))
    if broken in EDGES:
        field[broken] = draw(st.sampled_from(EDGES[broken]))
    if broken == "leap":
        field["year"] = draw(st.sampled_from(["1900", "2000", "2001", "2024", "2025", "2100"]))
        field["month"], field["day"] = "02", "29"
    zone = field["zone"]
    if zone in ("+", "-"):
        colon = draw(st.sampled_from([":", ""]))
        zone += field["offset_hour"] + colon + field["offset_minute"]
    text = (
        f"{field['year']}-{field['month']}-{field['day']}{field['separator']}"
        f"{field['hour']}:{field['minute']}:{field['second']}{field['fraction']}{zone}"
        f"{field['tail']}"
    )
    if broken == "stray":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(["/", ":", "٣", "0", ""])) + text[at + 1 :]
    return text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(near_exact_timestamps(), min_size=1, max_size=40),
    st.integers(0, 10),
    st.randoms(use_true_random=False),
    st.sampled_from([None, "%Y-%m-%d %H:%M:%S"]),
)
def test_timestamps_read_from_bytes_equal_the_general_parse(values, cut, rand, date_format):
    """`parse_instants` (the usual forms read off their bytes, the rest by parts) gives each value
    the instant and reason the general parse alone gives it, in chunks of a column with an index
    of its own, with or without a `date_format` for the rest."""
    at = min(cut, len(values))
    arrow = pa.array(values, pa.large_string())
    chunked = pa.chunked_array([arrow.slice(0, at), arrow.slice(at)], pa.large_string())
    index = list(range(100, 100 + len(values)))
    rand.shuffle(index)
    text = pd.Series(pd.arrays.ArrowStringArray(chunked), index=index)
    zones = pd.Series(["Asia/Singapore"] * len(values), index=index)
    instants, reasons = parse_instants(text, zones, date_format)
    want_instants, want_reasons = parse_instants(text, zones, date_format, from_bytes=False)
    assert instants.index.equals(text.index) and want_instants.index.equals(text.index)
    assert instants.dtype == want_instants.dtype
    assert instants.tolist() == want_instants.tolist()
    assert reasons.fillna("-").tolist() == want_reasons.fillna("-").tolist()


def test_every_exact_form_is_read_from_bytes() -> None:
    """One value of each form (and a space for the `T`) is read off its bytes, as the general
    parse reads it: the fast path is taken, not only agreed with."""
    values = [
        "2024-02-29T23:59:59Z",
        "2026-11-09T00:34:15+08:00",
        "2026-11-09 00:34:15-0130",
        "2026-11-09T00:34:15.123Z",
        "2026-11-09T00:34:15.123+05:45",
        "2026-11-09T00:34:15.123456Z",
        "1900-01-01T00:00:00.000001-12:00",
    ]
    text = pd.Series(values, dtype="string")
    read, _ = timestamps.exact_instants(pa.chunked_array([pa.array(values, pa.large_string())]))
    assert read.all()
    zones = pd.Series(["UTC"] * len(values))
    assert parse_instants(text, zones)[0].tolist() == (
        parse_instants(text, zones, from_bytes=False)[0].tolist()
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.none() | st.sampled_from(["s1", "s2", "s3", "S1", "s10"]), max_size=12),
    st.dictionaries(
        st.sampled_from(["s1", "s2", "S1", "s9"]),
        st.none() | st.sampled_from(["Asia/Singapore", "UTC", "Asia/Jakarta"]),
    ),
    st.integers(0, 12),
)
def test_row_zones_are_each_rows_shop_zone(shops, known, cut):
    """Each row's zone by its shop's code, as pandas' map of the shop ids gives it (unknown and
    missing shops, and shops with no zone, missing), over a column in two chunks."""
    arrow = pa.array(shops, pa.large_string())
    at = min(cut, len(shops))
    chunked = pa.chunked_array([arrow.slice(0, at), arrow.slice(at)], pa.large_string())
    shop_id = pd.Series(pd.arrays.ArrowStringArray(chunked), index=range(10, 10 + len(shops)))
    zones = pd.Series(list(known.values()), index=list(known.keys()), dtype="string")
    text = pd.Series(["2026-11-17 10:00"] * len(shops), dtype="string", index=shop_id.index)
    got = timestamps.row_zones(shop_id, zones, text)
    assert got.index.equals(shop_id.index)
    want = shop_id.map(zones)
    assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in want]


def test_zones_are_worked_out_only_when_a_value_needs_one() -> None:
    """Given as a function, the rows' zones are asked for only when some value is a local time:
    instants written with their offset need none."""
    asked: list[int] = []

    def zones() -> pd.Series:
        asked.append(1)
        return pd.Series(["Asia/Singapore", "Asia/Singapore"], index=[7, 3])

    zoned = pd.Series(["2026-11-17T10:00:00+08:00", "2026-11-17 02:00:00Z"], index=[7, 3])
    instants, _ = parse_instants(zoned.astype("string"), zones)
    assert asked == [] and instants.tolist() == [utc(2026, 11, 17, 2), utc(2026, 11, 17, 2)]
    local = pd.Series(["2026-11-17T10:00:00+08:00", "2026-11-17 10:00:00"], index=[7, 3])
    instants, _ = parse_instants(local.astype("string"), zones)
    assert asked == [1] and instants.tolist() == [utc(2026, 11, 17, 2), utc(2026, 11, 17, 2)]
