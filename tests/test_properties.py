"""Invariants under random small inputs (hypothesis), and an independent loop-based oracle.

The oracle below re-implements SPEC sections 1-5 for the generated inputs in plain Python
(zoneinfo, datetime, loops), without using cs_metrics. Each example writes the tables to a
temporary folder and runs the real pipeline on it (~0.15 s per example), so the counts are
small; for a deeper search run e.g.
    CS_METRICS_EXAMPLES_SCALE=30 pytest tests/test_properties.py -k agrees
and add CS_METRICS_SHRINK=1 to shrink a failure to a minimal example.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import compute, run
from cs_metrics import output

UTC = dt.UTC
BASE = dt.datetime(2026, 10, 19, tzinfo=UTC)
SLOTS = 11 * 48
"""Half-hour slots from BASE: 19..29 October, across London's change on 25 October."""
START, END = "2026-10-22", "2026-10-28"
ZONES = {"A": "Asia/Singapore", "B": "Europe/London", "C": "UTC"}
"""A via market SG, B via its timezone column, C not in the shops table (run default: UTC)."""
ROLE_TEXT = {
    "buyer": ["buyer", "BUYER", "Customer"],
    "seller": ["seller", "AGENT", "Shop", "customer_service"],
    "auto_reply": ["auto_reply", "Bot", "FAQ", "robot"],
    "system": ["system", "PLATFORM"],
}
RATING_TEXT = {
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "5.0": 5,
    "4.0": 4,
    "4.5": None,
    "+5": None,
    "0": None,
    "6": None,
}
FIELDS = (
    "chats",
    "chats_assessed",
    "chats_excluded_holiday_mode",
    "chats_pending",
    "chats_responded_12h",
    "chats_responded_late",
    "chats_unresponded",
    "chats_responded",
    "response_rate_12h",
    "first_response_minutes_mean",
    "first_response_minutes_median",
    "first_response_minutes_p90",
    "ratings",
    "ratings_satisfied",
    "satisfaction_rate",
)
SCALE = float(os.environ.get("CS_METRICS_EXAMPLES_SCALE", "1"))
"""Multiply the example counts (each example runs the whole pipeline, ~0.15 s)."""


def examples(n: int) -> settings:
    """Bounded settings; shrinking only with CS_METRICS_SHRINK=1 (it can take minutes)."""
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[Phase.explicit, Phase.reuse, Phase.generate]
        + ([Phase.shrink] if os.environ.get("CS_METRICS_SHRINK") else []),
    )


# ---------------------------------------------------------------- generated input


@dataclass
class Message:
    shop: str
    conv: str
    mid: str
    role: str
    role_text: str
    at: dt.datetime
    form: str


@dataclass
class Period:
    shop: str
    start: dt.datetime
    end: dt.datetime | None
    form: str


@dataclass
class Rating:
    shop: str
    conv: str
    text: str
    at: dt.datetime
    form: str


@dataclass
class Data:
    messages: list[Message]
    periods: list[Period] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)
    cutoff: dt.datetime | None = None


FORMS = ["z", "offset_colon", "offset_hhmm", "unix_s", "unix_ms", "naive"]


def slot_time(slot: int, millis: int = 0) -> dt.datetime:
    return BASE + dt.timedelta(minutes=30 * slot, milliseconds=millis)


@st.composite
def instants(draw: st.DrawFn) -> dt.datetime:
    slot = draw(st.integers(0, SLOTS - 1))
    millis = draw(st.sampled_from([0, 0, 0, 0, 0, 1, -1]))
    return slot_time(slot, millis) if slot > 0 else slot_time(slot)


HALF_HOUR = dt.timedelta(minutes=30)
NEAR = [-2, 0, 1, 4, 12, 23, 24, 25, 30, 48]
GAPS = [0, 0, 1, 2, 6, 20, 23, 24, 25, 40]
"""Half-hours between a conversation's messages: ties, minutes, around 12 h (24), a day."""


@st.composite
def messages_strategy(draw: st.DrawFn, unique_ids: bool) -> list[Message]:
    """A few conversations, each a short script of messages a few half-hours apart."""
    out: list[Message] = []
    for _ in range(draw(st.integers(0, 7))):
        shop = draw(st.sampled_from("AABC"))
        conv = draw(st.sampled_from(["c1", "c2", "c3", "c4"]))
        slot = draw(st.integers(2 * 48, 10 * 48))
        for _ in range(draw(st.integers(1, 5))):
            slot += draw(st.sampled_from(GAPS))
            role = draw(
                st.sampled_from(["buyer", "buyer", "seller", "seller", "auto_reply", "system"])
            )
            i = len(out)
            mid = f"m{i}" if unique_ids else draw(st.sampled_from([f"m{i}"] * 5 + ["m0"]))
            millis = draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
            out.append(
                Message(
                    shop=shop,
                    conv=conv,
                    mid=mid,
                    role=role,
                    role_text=draw(st.sampled_from(ROLE_TEXT[role])),
                    at=slot_time(min(slot, SLOTS + 48), millis),
                    form=draw(st.sampled_from(FORMS)),
                )
            )
    return out


@st.composite
def data_strategy(draw: st.DrawFn, unique_ids: bool = True, explicit_cutoff: bool | None = None):
    messages = draw(messages_strategy(unique_ids))
    periods = []
    times = sorted({m.at.replace(microsecond=0) for m in messages})

    def near_a_message() -> dt.datetime:
        """Mostly a few half-hours from some message, so periods and cut-offs cut chats."""
        if times and draw(st.integers(0, 3)):
            return draw(st.sampled_from(times)) + draw(st.sampled_from(NEAR)) * HALF_HOUR
        return slot_time(draw(st.integers(2 * 48, 10 * 48)))

    for _ in range(draw(st.integers(0, 3))):
        start = near_a_message()
        kind = draw(st.sampled_from(["closed", "closed", "closed", "open", "empty", "backwards"]))
        length = draw(st.sampled_from([1, 2, 8, 24, 48, 96])) * HALF_HOUR
        end = {
            "closed": start + length,
            "open": None,
            "empty": start,
            "backwards": start - length,
        }[kind]
        periods.append(
            Period(draw(st.sampled_from("AAABC")), start, end, draw(st.sampled_from(FORMS)))
        )
    ratings = [
        Rating(
            shop=draw(st.sampled_from("ABC")),
            conv=draw(st.sampled_from(["c1", "c2", "c3", "c4"])),
            text=draw(st.sampled_from(sorted(RATING_TEXT))),
            at=draw(instants()),
            form=draw(st.sampled_from(FORMS)),
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    want_cutoff = draw(st.booleans()) if explicit_cutoff is None else explicit_cutoff
    cutoff = near_a_message() if want_cutoff else None
    return Data(messages, periods, ratings, cutoff)


def ts_text(at: dt.datetime, form: str, zone: str) -> str:
    """One instant written in one of the SPEC 1 forms (falls back to Z where a form can't)."""
    whole = at.microsecond == 0
    if form == "unix_s" and whole:
        return str(int(at.timestamp()))
    if form == "unix_ms":
        return str(round(at.timestamp() * 1000))
    if form == "offset_colon":
        return at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    if form == "offset_hhmm":
        text = at.astimezone(dt.timezone(-dt.timedelta(hours=5, minutes=30))).isoformat()
        return text[:-3] + text[-2:]
    if form == "naive":
        return at.astimezone(ZoneInfo(zone)).replace(tzinfo=None).isoformat(sep=" ")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_data(folder: Path, data: Data, order: list[int] | None = None) -> None:
    """The generated tables as CSV files (messages in `order` if given)."""
    rows = data.messages if order is None else [data.messages[i] for i in order]
    lines = ["shop_id,conversation_id,message_id,sender_role,sent_at"]
    lines += [
        f"{m.shop},{m.conv},{m.mid},{m.role_text},{ts_text(m.at, m.form, ZONES[m.shop])}"
        for m in rows
    ]
    (folder / "messages.csv").write_text("\n".join(lines) + "\n")
    (folder / "shops.csv").write_text("shop_id,market,timezone\nA,sg,\nB,,Europe/London\n")
    if data.periods:
        lines = ["shop_id,start,end"]
        for p in data.periods:
            end = "" if p.end is None else ts_text(p.end, p.form, ZONES[p.shop])
            lines.append(f"{p.shop},{ts_text(p.start, p.form, ZONES[p.shop])},{end}")
        (folder / "holiday_mode.csv").write_text("\n".join(lines) + "\n")
    if data.ratings:
        lines = ["shop_id,conversation_id,rating,rated_at"]
        lines += [
            f"{r.shop},{r.conv},{r.text},{ts_text(r.at, r.form, ZONES[r.shop])}"
            for r in data.ratings
        ]
        (folder / "ratings.csv").write_text("\n".join(lines) + "\n")


def cutoff_text(data: Data) -> str | None:
    return None if data.cutoff is None else data.cutoff.isoformat()


def run_pipeline(data: Data, order: list[int] | None = None, **kwargs: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder, data, order)
        return compute(folder, start=START, end=END, cutoff=cutoff_text(data), **kwargs)


def run_with_drilldown(data: Data) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The SPEC 7 document and the drill-down rows of one evaluation."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder, data)
        dataset, evaluation = run(folder, start=START, end=END, cutoff=cutoff_text(data))
        doc = json.loads(output.to_json(output.result_document(dataset, evaluation)))
        return doc, output.chat_rows(evaluation.chats).to_dict(orient="records")


# ---------------------------------------------------------------- the oracle


def naive_is_bad(at: dt.datetime, zone: str) -> bool:
    """A local wall time that is ambiguous in the zone cannot be given naively (SPEC 1)."""
    wall = at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    first = wall.replace(tzinfo=ZoneInfo(zone), fold=0)
    second = wall.replace(tzinfo=ZoneInfo(zone), fold=1)
    return first.utcoffset() != second.utcoffset()


def form_ok(at: dt.datetime, form: str, shop: str) -> bool:
    return not (form == "naive" and naive_is_bad(at, ZONES[shop]))


def merged(periods: list[tuple[dt.datetime, dt.datetime | None]]) -> list[list]:
    """Periods sorted and merged when they overlap or touch; None is 'still on'."""
    far = dt.datetime.max.replace(tzinfo=UTC)
    spans = sorted((s, far if e is None else e) for s, e in periods if e is None or e > s)
    out: list[list] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def held(spans: list[list], a: dt.datetime, b: dt.datetime) -> dt.timedelta:
    """Time between a and b inside Holiday Mode."""
    total = dt.timedelta(0)
    for s, e in spans:
        lo, hi = max(a, s), min(b, e)
        if hi > lo:
            total += hi - lo
    return total


def deadline_of(spans: list[list], received: dt.datetime, limit: dt.timedelta):
    """The instant the Holiday-Mode-adjusted clock reaches `limit` (None: never)."""
    far = dt.datetime.max.replace(tzinfo=UTC)
    t, left = received, limit
    for s, e in spans:
        if e <= t:
            continue
        if s > t:
            if s - t >= left:
                return t + left
            left -= s - t
        if e == far:
            return None
        t = max(t, e)
    return t + left


def quantile(values: list[float], q: float) -> float:
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def local_midnight(day: dt.date, zone: str) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def oracle(data: Data) -> dict[str, Any]:
    """SPEC 1-5 for the generated data, by loops."""
    limit = dt.timedelta(hours=12)
    # SPEC 1 and 8: good rows, then first good copy of each (shop, message_id).
    good: list[Message] = []
    seen_ids: set[tuple[str, str]] = set()
    bad = dup = 0
    for m in data.messages:
        if not form_ok(m.at, m.form, m.shop):
            bad += 1
        elif (m.shop, m.mid) in seen_ids:
            dup += 1
        else:
            seen_ids.add((m.shop, m.mid))
            good.append(m)
    periods: dict[str, list] = defaultdict(list)
    bad_periods = 0
    for p in data.periods:
        ok = form_ok(p.start, p.form, p.shop) and (p.end is None or form_ok(p.end, p.form, p.shop))
        if not ok or (p.end is not None and p.end < p.start):
            bad_periods += 1
        else:
            periods[p.shop].append((p.start, p.end))
    spans = {shop: merged(ps) for shop, ps in periods.items()}
    good_ratings = [
        (i, r)
        for i, r in enumerate(data.ratings)
        if RATING_TEXT[r.text] is not None and form_ok(r.at, r.form, r.shop)
    ]
    cutoff = data.cutoff or (max(m.at for m in good) if good else None)

    # SPEC 2: chats.
    by_conv: dict[tuple[str, str], list[Message]] = defaultdict(list)
    for m in good:
        if m.role != "system" and (cutoff is None or m.at <= cutoff):
            by_conv[(m.shop, m.conv)].append(m)
    chats = []
    for (shop, _), msgs in by_conv.items():
        msgs.sort(key=lambda m: (m.at, m.role != "buyer", m.mid))
        open_chat = None
        for m in msgs:
            if m.role == "buyer":
                if open_chat is None:
                    open_chat = {"shop": shop, "received": m.at, "responded": None}
            elif open_chat is not None:
                open_chat["responded"] = m.at
                chats.append(open_chat)
                open_chat = None
        if open_chat is not None:
            chats.append(open_chat)

    # SPEC 3 and 4: status.
    for c in chats:
        sp = spans.get(c["shop"], [])
        received, responded = c["received"], c["responded"]
        c["minutes"] = None
        if any(s <= received < e for s, e in sp):
            c["status"] = "excluded_holiday_mode"
        elif responded is not None:
            clock = responded - received - held(sp, received, responded)
            c["minutes"] = clock.total_seconds() / 60
            c["status"] = "on_time" if clock <= limit else "late"
        else:
            deadline = deadline_of(sp, received, limit)
            late = deadline is not None and cutoff is not None and deadline <= cutoff
            c["status"] = "unresponded" if late else "pending"

    # SPEC 5 per shop and window; SPEC 7 shop list.
    shops = sorted(
        {m.shop for m in data.messages}
        | {p.shop for p in data.periods}
        | {r.shop for r in data.ratings}
        | {"A", "B"}
    )
    first, last = dt.date.fromisoformat(START), dt.date.fromisoformat(END)
    result = {}
    for shop in shops:
        zone = ZONES[shop]
        ws, we = local_midnight(first, zone), local_midnight(last + dt.timedelta(days=1), zone)
        mine = [c for c in chats if c["shop"] == shop and ws <= c["received"] < we]
        count = {
            s: sum(c["status"] == s for c in mine)
            for s in ("on_time", "late", "unresponded", "pending", "excluded_holiday_mode")
        }
        assessed = count["on_time"] + count["late"] + count["unresponded"]
        minutes = [c["minutes"] for c in mine if c["status"] in ("on_time", "late")]
        sp = spans.get(shop, [])
        latest: dict[str, tuple] = {}
        for i, r in good_ratings:
            if r.shop != shop or not (ws <= r.at < we):
                continue
            if cutoff is not None and r.at > cutoff:
                continue
            if any(s <= r.at < e for s, e in sp):
                continue
            key = (r.at, i)
            if r.conv not in latest or key > latest[r.conv][0]:
                latest[r.conv] = (key, RATING_TEXT[r.text])
        ratings = len(latest)
        satisfied = sum(v >= 4 for _, v in latest.values())
        result[shop] = {
            "timezone": zone,
            "window_start": ws,
            "window_end": we,
            "chats": len(mine),
            "chats_assessed": assessed,
            "chats_excluded_holiday_mode": count["excluded_holiday_mode"],
            "chats_pending": count["pending"],
            "chats_responded_12h": count["on_time"],
            "chats_responded_late": count["late"],
            "chats_unresponded": count["unresponded"],
            "chats_responded": count["on_time"] + count["late"],
            "response_rate_12h": count["on_time"] / assessed if assessed else None,
            "first_response_minutes_mean": sum(minutes) / len(minutes) if minutes else None,
            "first_response_minutes_median": quantile(minutes, 0.5) if minutes else None,
            "first_response_minutes_p90": quantile(minutes, 0.9) if minutes else None,
            "ratings": ratings,
            "ratings_satisfied": satisfied,
            "satisfaction_rate": satisfied / ratings if ratings else None,
        }
    counts = {
        "messages": {
            "rows_read": len(data.messages),
            "rows_used": len(good),
            "rows_quarantined": bad,
            "rows_duplicate": dup,
        }
    }
    if data.ratings:
        counts["ratings"] = {
            "rows_read": len(data.ratings),
            "rows_used": len(good_ratings),
            "rows_quarantined": len(data.ratings) - len(good_ratings),
            "rows_duplicate": 0,
        }
    if data.periods:
        counts["holiday_mode"] = {
            "rows_read": len(data.periods),
            "rows_used": len(data.periods) - bad_periods,
            "rows_quarantined": bad_periods,
            "rows_duplicate": 0,
        }
    counts["shops"] = {"rows_read": 2, "rows_used": 2, "rows_quarantined": 0, "rows_duplicate": 0}
    return {"cutoff": cutoff, "shops": result, "input": counts}


def same_number(want: Any, got: Any) -> bool:
    if want is None or got is None:
        return want is got
    return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-9)


def describe(data: Data) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder, data)
        text = "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(folder.iterdir()))
    return f"cutoff={cutoff_text(data)}\n{text}"


def assert_agrees_with_oracle(data: Data) -> None:
    """The pipeline's SPEC 7 document equals the oracle's, field by field."""
    want = oracle(data)
    got = run_pipeline(data)
    context = describe(data)
    got_cut = got["cutoff"]
    want_cut = want["cutoff"]
    assert (got_cut is None) == (want_cut is None), context
    if want_cut is not None:
        assert dt.datetime.fromisoformat(got_cut.replace("Z", "+00:00")) == want_cut, context
    assert got["input"] == want["input"], context
    assert [s["shop_id"] for s in got["shops"]] == sorted(want["shops"]), context
    for s in got["shops"]:
        expected = want["shops"][s["shop_id"]]
        assert s["timezone"] == expected["timezone"], context
        assert dt.datetime.fromisoformat(s["window_start"]) == expected["window_start"], context
        assert dt.datetime.fromisoformat(s["window_end"]) == expected["window_end"], context
        for name in FIELDS:
            assert same_number(expected[name], s[name]), (
                f"{s['shop_id']}.{name}: oracle {expected[name]!r}, pipeline {s[name]!r}\n"
                + context
            )


@examples(15)
@given(data=data_strategy(unique_ids=False))
def test_pipeline_agrees_with_the_oracle(data: Data) -> None:
    assert_agrees_with_oracle(data)


@st.composite
def one_chat_around_holiday_mode(draw: st.DrawFn) -> Data:
    """One chat in shop A with periods and a cut-off placed around its 12-hour deadline."""
    received = slot_time(draw(st.integers(4 * 48, 8 * 48)))
    messages = [Message("A", "c1", "m1", "buyer", "buyer", received, draw(st.sampled_from(FORMS)))]
    if draw(st.booleans()):
        reply = received + draw(st.integers(0, 60)) * HALF_HOUR
        role = draw(st.sampled_from(["seller", "auto_reply"]))
        messages.append(Message("A", "c1", "m2", role, role, reply, "z"))
    periods = []
    for _ in range(draw(st.integers(1, 3))):
        start = received + draw(st.integers(-4, 30)) * HALF_HOUR
        length = draw(st.integers(0, 30)) * HALF_HOUR
        end = None if draw(st.integers(0, 5)) == 0 else start + length
        periods.append(Period("A", start, end, "z"))
    cutoff = received + draw(st.integers(20, 80)) * HALF_HOUR
    return Data(messages, periods, [], cutoff)


@examples(15)
@given(data=one_chat_around_holiday_mode())
def test_holiday_mode_clock_agrees_with_the_oracle(data: Data) -> None:
    """SPEC 3 and 4: exclusion, clock, deadline moved by periods, pending vs unresponded."""
    assert_agrees_with_oracle(data)


@examples(6)
@given(data=data_strategy(unique_ids=True), seed=st.integers(0, 2**16))
def test_shuffling_message_and_holiday_rows_changes_nothing(data: Data, seed: int) -> None:
    order = list(range(len(data.messages)))
    random.Random(seed).shuffle(order)
    shuffled = Data(
        data.messages,
        random.Random(seed).sample(data.periods, len(data.periods)),
        data.ratings,
        data.cutoff,
    )
    assert run_pipeline(shuffled, order) == run_pipeline(data)


@examples(8)
@given(data=data_strategy(unique_ids=False))
def test_chats_without_detail_give_the_same_metrics(data: Data) -> None:
    """`compute` leaves the drill-down ids out of its chats; the document does not change."""
    assert run_pipeline(data, chat_detail=False) == run_pipeline(data)


STATUS_FIELD = {
    "on_time": "chats_responded_12h",
    "late": "chats_responded_late",
    "unresponded": "chats_unresponded",
    "pending": "chats_pending",
    "excluded_holiday_mode": "chats_excluded_holiday_mode",
}


def assert_counts_add_up_and_rates_in_range(doc: dict[str, Any]) -> None:
    for table, c in doc["input"].items():
        assert c["rows_read"] == c["rows_used"] + c["rows_quarantined"] + c["rows_duplicate"], table
    for s in doc["shops"]:
        assert s["chats"] == (
            s["chats_assessed"] + s["chats_excluded_holiday_mode"] + s["chats_pending"]
        )
        assert s["chats_assessed"] == (
            s["chats_responded_12h"] + s["chats_responded_late"] + s["chats_unresponded"]
        )
        assert s["chats_responded"] == s["chats_responded_12h"] + s["chats_responded_late"]
        assert s["ratings_satisfied"] <= s["ratings"]
        for rate in ("response_rate_12h", "satisfaction_rate"):
            assert s[rate] is None or 0.0 <= s[rate] <= 1.0
        if s["chats_responded"]:
            assert s["first_response_minutes_mean"] >= 0
            assert s["first_response_minutes_median"] <= s["first_response_minutes_p90"]
        else:
            assert s["first_response_minutes_mean"] is None


@examples(10)
@given(data=data_strategy(unique_ids=False))
def test_counts_add_up_and_metrics_are_derivable_from_the_drilldown(data: Data) -> None:
    """Counts add up, rates stay in 0..1, each chat has exactly one status, and per shop the
    drill-down statuses and minutes give compute's counts and mean."""
    doc, rows = run_with_drilldown(data)
    assert_counts_add_up_and_rates_in_range(doc)
    windows = {
        s["shop_id"]: (
            dt.datetime.fromisoformat(s["window_start"]),
            dt.datetime.fromisoformat(s["window_end"]),
        )
        for s in doc["shops"]
    }
    tally: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_FIELD.values(), 0))
    minutes: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        assert row["status"] in STATUS_FIELD
        tally[row["shop_id"]][STATUS_FIELD[row["status"]]] += 1
        start, end = windows[row["shop_id"]]
        assert start <= row["received_at_utc"] < end
        has_reply = not pd.isna(row["responded_at_utc"])
        if row["status"] in ("on_time", "late"):
            assert has_reply
            assert (row["response_minutes"] <= 720) == (row["status"] == "on_time")
            minutes[row["shop_id"]].append(row["response_minutes"])
        elif row["status"] in ("unresponded", "pending"):
            assert not has_reply, row
    for s in doc["shops"]:
        counted = tally[s["shop_id"]]
        assert {k: s[k] for k in counted} == counted, s["shop_id"]
        assert s["chats"] == sum(counted.values())
        got = minutes[s["shop_id"]]
        assert same_number(sum(got) / len(got) if got else None, s["first_response_minutes_mean"])


@examples(6)
@given(data=data_strategy(unique_ids=True, explicit_cutoff=True), extra=st.data())
def test_rows_after_the_cutoff_change_nothing_but_the_counts(
    data: Data, extra: st.DataObject
) -> None:
    assert data.cutoff is not None
    later = [
        Message(
            shop=extra.draw(st.sampled_from("AB")),
            conv=extra.draw(st.sampled_from(["c1", "c2", "c3"])),
            mid=f"late{i}",
            role=role,
            role_text=role,
            at=data.cutoff + dt.timedelta(minutes=extra.draw(st.integers(1, 3000))),
            form="z",
        )
        for i, role in enumerate(
            extra.draw(st.lists(st.sampled_from(["buyer", "seller", "auto_reply"]), max_size=4))
        )
    ]
    late_ratings = [
        Rating("A", "c1", "1", data.cutoff + dt.timedelta(seconds=1), "z"),
        Rating("B", "c2", "5", data.cutoff + dt.timedelta(days=1), "unix_s"),
    ]
    more = Data(data.messages + later, data.periods, data.ratings + late_ratings, data.cutoff)
    before, after = run_pipeline(data), run_pipeline(more)
    assert after["shops"] == before["shops"]
    assert after["cutoff"] == before["cutoff"]
    grew = after["input"]["messages"]["rows_used"] - before["input"]["messages"]["rows_used"]
    assert grew == len(later)


@examples(6)
@given(
    data=data_strategy(unique_ids=True, explicit_cutoff=True),
    shop=st.sampled_from("ABC"),
    opened=st.integers(1, 96),
    follow_up=st.integers(0, 48),
    answered=st.booleans(),
)
def test_a_chat_opened_before_the_window_never_counts_in_it(
    data: Data, shop: str, opened: int, follow_up: int, answered: bool
) -> None:
    """A conversation opened before the window, with a buyer follow-up and maybe a reply inside."""
    zone = ZONES[shop]
    window_start = local_midnight(dt.date.fromisoformat(START), zone)
    first = window_start - dt.timedelta(minutes=30 * opened)
    inside = window_start + dt.timedelta(minutes=30 * follow_up)
    early = [
        Message(shop, "early", "e1", "buyer", "buyer", first, "z"),
        Message(shop, "early", "e2", "buyer", "buyer", inside, "z"),
    ]
    if answered:
        reply = inside + dt.timedelta(minutes=1)
        early.append(Message(shop, "early", "e3", "seller", "seller", reply, "z"))
    more = Data(data.messages + early, data.periods, data.ratings, data.cutoff)
    before, after = run_pipeline(data), run_pipeline(more)
    assert after["shops"] == before["shops"] or [s["shop_id"] for s in after["shops"]] != [
        s["shop_id"] for s in before["shops"]
    ]
    for s in after["shops"]:
        previous = [b for b in before["shops"] if b["shop_id"] == s["shop_id"]]
        if previous:
            assert s == previous[0]
        else:
            assert s["chats"] == 0


@pytest.mark.parametrize("form", FORMS)
def test_generated_timestamp_forms_round_trip_through_the_oracle_writer(form: str) -> None:
    """The test's own writer: every form names the same instant (guards the oracle itself)."""
    at = slot_time(100)
    text = ts_text(at, form, "Asia/Singapore")
    if form in ("unix_s", "unix_ms"):
        number = int(text)
        back = dt.datetime.fromtimestamp(number / (1000 if number >= 10**11 else 1), UTC)
    elif form == "naive":
        back = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Asia/Singapore"))
    else:
        back = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert back == at
    assert json.dumps(text)


READER_CHAINS = (("arrow", "pandas", "tolerant"), ("pandas", "tolerant"), ("tolerant",))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 8),
    where=st.integers(0, 7),
    column=st.integers(0, 5),
    closes_at=st.one_of(st.none(), st.integers(0, 7)),
)
def test_csv_readers_agree_on_a_stray_quote(
    rows: int, where: int, column: int, closes_at: int | None
) -> None:
    """A quote opened at the start of any field: every reader gives the same one-line error
    (or, where it holds no whole row, the same rows), and no row is lost uncounted."""
    from cs_metrics.errors import InputError
    from cs_metrics.readers import csv as csv_reader
    from cs_metrics.readers import read_table

    fields = [
        ["S", f"c{n}", f"m{n}", "buyer", "2026-11-17T10:00:00Z", f"text {n}"] for n in range(rows)
    ]
    fields[min(where, rows - 1)][column] = '"' + fields[min(where, rows - 1)][column]
    if closes_at is not None:
        fields[min(closes_at, rows - 1)][5] += '"'
    text = "shop_id,conversation_id,message_id,sender_role,sent_at,content\n" + "".join(
        ",".join(f) + "\n" for f in fields
    )
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messages.csv"
        path.write_text(text)
        saved = csv_reader.CSV_READERS
        try:
            for chain in READER_CHAINS:
                csv_reader.CSV_READERS = chain
                try:
                    frame = read_table("messages", path).frame
                    outcomes.append(frame.drop(columns="_parse_error").to_dict("list"))
                except InputError as exc:
                    outcomes.append(str(exc).replace(tmp, "TMP"))
        finally:
            csv_reader.CSV_READERS = saved
    assert outcomes[0] == outcomes[1] == outcomes[2]
    if isinstance(outcomes[0], dict):
        # Read rows: every line is a row, or a line break inside a value.
        breaks = sum(
            v.count("\n") for col in outcomes[0].values() for v in col if isinstance(v, str)
        )
        assert len(outcomes[0]["row_number"]) + breaks >= rows
    else:
        assert " line " in outcomes[0] and "a quote opens here" in outcomes[0]
