"""The week so far: counts, projection, what it takes, and the answer-now list (hand-made)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cs_metrics import watch
from cs_metrics.pipeline import evaluate, load
from cs_metrics.policy import Policy

AT = pd.Timestamp("2026-11-26T12:00:00+08:00")  # Thursday noon in Singapore
MONDAY = dt.date(2026, 11, 23)


def day(hours: float) -> str:
    """An instant on Thursday 26 November, `hours` after local midnight (+08:00)."""
    return (pd.Timestamp("2026-11-26T00:00:00+08:00") + pd.Timedelta(hours=hours)).isoformat()


def write(folder: Path, on_time: int, missed: int, pending: int, shop: str, rows: list) -> None:
    """A shop's chats this week: answered in 5 minutes on Tuesday, never answered on Monday
    (missed by Thursday), and received Thursday 10:00 (pending at noon)."""
    for i in range(on_time):
        rows += [
            (shop, f"{shop}-ok{i}", f"{shop}-ok{i}b", "buyer", "2026-11-24T10:00:00+08:00"),
            (shop, f"{shop}-ok{i}", f"{shop}-ok{i}s", "seller", "2026-11-24T10:05:00+08:00"),
        ]
    for i in range(missed):
        rows.append(
            (shop, f"{shop}-miss{i}", f"{shop}-miss{i}b", "buyer", "2026-11-23T09:00+08:00")
        )
    for i in range(pending):
        rows.append((shop, f"{shop}-wait{i}", f"{shop}-wait{i}b", "buyer", day(10 - i / 60)))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rows: list = []
    write(tmp_path, 10, 0, 1, "SAFE", rows)
    write(tmp_path, 20, 2, 4, "NEEDS", rows)
    write(tmp_path, 5, 5, 2, "LOST", rows)
    folder = tmp_path / "data"
    folder.mkdir()
    columns = ["shop_id", "conversation_id", "message_id", "sender_role", "sent_at"]
    messages = pd.DataFrame(rows, columns=columns)
    buyer = messages["sender_role"] == "buyer"
    messages["sender_id"] = ("b-" + messages["conversation_id"]).where(buyer, "agent-1")
    messages.to_csv(folder / "messages.csv", index=False)
    pd.DataFrame({"shop_id": ["SAFE", "NEEDS", "LOST"], "market": "SG"}).to_csv(
        folder / "shops.csv", index=False
    )
    # NEEDS went on holiday at 11:00 Thursday, until 13:00: its clocks stand still at noon.
    pd.DataFrame({"shop_id": ["NEEDS"], "start": [day(11)], "end": [day(13)]}).to_csv(
        folder / "holiday_mode.csv", index=False
    )
    return folder


def test_counts_projection_and_verdicts(data: Path) -> None:
    found = watch.watch(load(data, Policy()), AT, Policy())
    shops = {s.shop_id: s for s in found.shops}
    assert {s: (w.on_time, w.missed, w.pending) for s, w in shops.items()} == {
        "LOST": (5, 5, 2),
        "NEEDS": (20, 2, 4),
        "SAFE": (10, 0, 1),
    }
    assert shops["SAFE"].verdict == watch.SAFE and shops["SAFE"].needed == 0
    # 20 on time of 26: 0.85 * 26 = 22.1, so 3 of the 4 pending chats must be answered in time.
    assert shops["NEEDS"].verdict == watch.NEEDS and shops["NEEDS"].needed == 3
    assert shops["NEEDS"].rate_so_far == pytest.approx(20 / 22)
    assert shops["NEEDS"].rate_if_all_answered == pytest.approx(24 / 26)
    assert shops["NEEDS"].rate_if_none_answered == pytest.approx(20 / 26)
    # 5 of 12: even both pending chats answered give 7 / 12.
    assert shops["LOST"].verdict == watch.LOST and shops["LOST"].needed == 6
    assert all(s.first_day == MONDAY for s in found.shops)


def test_answer_now_is_soonest_deadline_first_with_holiday_mode_pausing_the_clock(
    data: Path,
) -> None:
    found = watch.watch(load(data, Policy()), AT, Policy())
    pending = found.pending
    assert len(pending) == 7
    assert pending["deadline_at_utc"].is_monotonic_increasing
    needs = pending.loc[pending["shop_id"] == "NEEDS"]
    assert needs["paused"].all() and not pending.loc[pending["shop_id"] != "NEEDS", "paused"].any()
    # Received 10:00 (or a minute or more before): one hour ran before the holiday at 11:00.
    first = needs.loc[needs["conversation_id"] == "NEEDS-wait0"].iloc[0]
    assert first["clock_left_minutes"] == pytest.approx(11 * 60)
    # The holiday's two hours push the deadline from 22:00 to 24:00.
    assert first["deadline_at_utc"] == pd.Timestamp(day(24)).tz_convert("UTC")
    safe = pending.loc[pending["shop_id"] == "SAFE"].iloc[0]
    assert safe["clock_left_minutes"] == pytest.approx(10 * 60)


@pytest.mark.parametrize("answered", [2, 3])
def test_the_projection_matches_the_full_week_once_the_chats_are_answered(
    data: Path, answered: int
) -> None:
    """Answer `answered` of NEEDS's pending chats in time and evaluate the finished week: the
    target is met exactly when `answered` reaches what the watch said it takes."""
    found = watch.watch(load(data, Policy()), AT, Policy())
    needed = {s.shop_id: s for s in found.shops}["NEEDS"].needed
    messages = pd.read_csv(data / "messages.csv")
    replies = pd.DataFrame(
        {
            "shop_id": "NEEDS",
            "conversation_id": [f"NEEDS-wait{i}" for i in range(answered)],
            "message_id": [f"NEEDS-wait{i}s" for i in range(answered)],
            "sender_role": "seller",
            "sent_at": day(14),
            "sender_id": "agent-1",
        }
    )
    pd.concat([messages, replies]).to_csv(data / "messages.csv", index=False)
    policy = Policy()
    week = evaluate(
        load(data, policy),
        MONDAY,
        MONDAY + dt.timedelta(days=6),
        policy,
        pd.Timestamp("2026-11-30T00:00:00+08:00"),
        ["NEEDS"],
    )
    rate = week.metrics["response_rate_12h"].iloc[0]
    assert rate == pytest.approx((20 + answered) / 26)
    assert (rate >= policy.response_rate_target) == (answered >= needed)


def test_needed_in_time_settles_float_edges_as_the_monday_status_does() -> None:
    on = np.array([17, 16, 0, 5])
    total = np.array([20, 20, 0, 10])
    needed = watch.needed_in_time(on, total, 0.85)
    assert needed.tolist() == [0, 1, 0, 4]  # 17/20 = 0.85 passes (>=), as on Monday
