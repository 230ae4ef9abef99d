"""The Monday job: week windows, SPEC 6 actions over several weeks, history records, safety."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_metrics import duplicates, history, weekly
from cs_metrics.errors import LockHeldError, UsageError
from cs_metrics.pipeline import load
from cs_metrics.policy import Policy
from cs_metrics.readers import ROW
from recorded import record_week

FIRST_MONDAY = dt.date(2026, 8, 3)
FIXED_TIME = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)


def write_weeks(folder: Path, outcomes: dict[str, list[str]]) -> None:
    """Per shop, one chat a day for each week: 'pass' answered in 5 min, 'fail' never answered."""
    rows = []
    for shop, weeks in outcomes.items():
        for w, outcome in enumerate(weeks):
            for d in range(7):
                day = FIRST_MONDAY + dt.timedelta(weeks=w, days=d)
                conv = f"{shop}-w{w}d{d}"
                rows.append((shop, conv, f"{conv}-b", "buyer", f"{day}T10:00:00+08:00"))
                if outcome == "pass":
                    rows.append((shop, conv, f"{conv}-s", "seller", f"{day}T10:05:00+08:00"))
    frame = pd.DataFrame(
        rows, columns=["shop_id", "conversation_id", "message_id", "sender_role", "sent_at"]
    )
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "messages.csv", index=False)
    shops = pd.DataFrame({"shop_id": list(outcomes), "market": "SG"})
    shops.to_csv(folder / "shops.csv", index=False)


def run(folder: Path, store: Path, as_of: dt.date) -> dict:
    """One weekly evaluation through the real pipeline, recorded in the store; its document.

    The data is complete up to the Monday's local midnight (SPEC 6a: the week is covered).
    """
    policy = Policy()
    dataset = load(folder, policy)
    cutoff = pd.Timestamp(f"{as_of}T00:00:00+08:00")
    results = weekly.run_week(dataset, as_of, policy, store, cutoff, generated_at=FIXED_TIME)
    record_week(results, store)
    return {s["shop_id"]: s for s in results.doc["shops"]}


def monday(week: int) -> dt.date:
    """The Monday evaluating week number `week` (counted from FIRST_MONDAY)."""
    return FIRST_MONDAY + dt.timedelta(weeks=week + 1)


def test_first_failure_warns_repeat_within_lookback_brings_violation_point(tmp_path: Path) -> None:
    write_weeks(tmp_path / "data", {"S": ["fail", "fail", "pass"]})
    store = tmp_path / "h.sqlite"
    actions = [run(tmp_path / "data", store, monday(w))["S"]["action"] for w in range(3)]
    assert actions == ["warning", "violation_point", "none"]


def test_failure_after_twelve_clean_weeks_is_a_warning_again(tmp_path: Path) -> None:
    weeks = ["fail"] + ["pass"] * 12 + ["fail"]
    write_weeks(tmp_path / "data", {"S": weeks})
    store = tmp_path / "h.sqlite"
    actions = [run(tmp_path / "data", store, monday(w))["S"]["action"] for w in range(len(weeks))]
    assert actions == ["warning"] + ["none"] * 12 + ["warning"]


def test_failure_eleven_weeks_after_the_last_is_a_violation_point(tmp_path: Path) -> None:
    weeks = ["fail"] + ["pass"] * 11 + ["fail"]
    write_weeks(tmp_path / "data", {"S": weeks})
    store = tmp_path / "h.sqlite"
    actions = [run(tmp_path / "data", store, monday(w))["S"]["action"] for w in range(len(weeks))]
    assert actions[-1] == "violation_point"


def test_rerunning_a_middle_week_replaces_only_that_weeks_record(tmp_path: Path) -> None:
    write_weeks(tmp_path / "data", {"S": ["fail", "fail", "pass", "fail"]})
    store = tmp_path / "h.sqlite"
    for w in range(4):
        run(tmp_path / "data", store, monday(w))
    before = history.records(store)
    again = run(tmp_path / "data", store, monday(1))
    after = history.records(store)
    assert again["S"]["action"] == "violation_point"
    assert len(after) == 4
    pd.testing.assert_frame_equal(before, after)


def test_shop_with_no_chats_is_not_assessed_and_has_no_action(tmp_path: Path) -> None:
    write_weeks(tmp_path / "data", {"S": ["fail"], "Q": []})
    shops = run(tmp_path / "data", tmp_path / "h.sqlite", monday(0))
    assert shops["Q"]["status"] == {
        "response_rate_12h": "not_assessed",
        "first_response_minutes_mean": "not_assessed",
        "satisfaction_rate": "not_assessed",
    }
    assert shops["Q"]["action"] == "none"
    assert shops["S"]["action"] == "warning"


def test_violation_points_stay_active_for_ninety_days(tmp_path: Path) -> None:
    weeks = ["fail", "fail"] + ["pass"] * 14
    write_weeks(tmp_path / "data", {"S": weeks})
    store = tmp_path / "h.sqlite"
    points = [
        run(tmp_path / "data", store, monday(w))["S"]["violation_points_active"] for w in range(16)
    ]
    # The point issued on monday(1) counts while as_of - 90 days < monday(1);
    # 13 weeks (91 days) later it has lapsed.
    assert points[:2] == [0, 1]
    assert points[13] == 1
    assert points[14] == 0


def test_week_is_the_seven_local_days_before_the_monday() -> None:
    assert weekly.week_days(dt.date(2026, 11, 23), Policy()) == (
        dt.date(2026, 11, 16),
        dt.date(2026, 11, 22),
    )


@pytest.mark.parametrize(
    "day", [dt.date(2026, 11, 24), dt.date(2026, 11, 22)], ids=["tuesday", "sunday"]
)
def test_as_of_that_is_not_a_monday_is_a_usage_error(day: dt.date) -> None:
    with pytest.raises(UsageError, match="Mondays"):
        weekly.check_monday(day)


def test_latest_monday_on_or_before_today() -> None:
    assert weekly.latest_monday(dt.date(2026, 11, 25)) == dt.date(2026, 11, 23)
    assert weekly.latest_monday(dt.date(2026, 11, 23)) == dt.date(2026, 11, 23)


def test_second_lock_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    with (
        weekly.run_lock(tmp_path),
        pytest.raises(LockHeldError, match=f"pid {os.getpid()}"),
        weekly.run_lock(tmp_path),
    ):
        pass


def test_lock_is_released_after_the_run(tmp_path: Path) -> None:
    with weekly.run_lock(tmp_path):
        pass
    with weekly.run_lock(tmp_path):
        pass


def test_written_week_is_complete_and_rerun_is_identical_apart_from_generated_at(
    tmp_path: Path,
) -> None:
    write_weeks(tmp_path / "data", {"S": ["fail"], "T": ["pass"]})
    policy = Policy()
    dataset = load(tmp_path / "data", policy)
    store = tmp_path / "out" / "history.sqlite"
    texts = []
    for stamp in (FIXED_TIME, FIXED_TIME + dt.timedelta(hours=1)):
        cutoff = pd.Timestamp(f"{monday(0)}T00:00:00+08:00")
        results = weekly.run_week(dataset, monday(0), policy, store, cutoff, generated_at=stamp)
        weekly.commit_week(results, dataset, tmp_path / "out", store, with_report=False)
        texts.append((tmp_path / "out" / monday(0).isoformat() / "metrics.json").read_text())
    first, second = (json.loads(t) for t in texts)
    assert first.pop("generated_at") != second.pop("generated_at")
    assert first == second
    assert texts[0].replace(FIXED_TIME.isoformat(timespec="seconds"), "X") == texts[1].replace(
        (FIXED_TIME + dt.timedelta(hours=1)).isoformat(timespec="seconds"), "X"
    )
    assert first["policy"]["response_rate_target"] == 0.85
    assert {s["shop_id"]: s["action"] for s in first["shops"]} == {"S": "warning", "T": "none"}


def test_failed_write_leaves_previous_outputs_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_weeks(tmp_path / "data", {"S": ["fail"]})
    policy = Policy()
    dataset = load(tmp_path / "data", policy)
    out = tmp_path / "out"
    store = out / "history.sqlite"
    results = weekly.run_week(dataset, monday(0), policy, store, generated_at=FIXED_TIME)
    weekly.commit_week(results, dataset, out, store)
    folder = out / monday(0).isoformat()
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    stored = history.records(store)

    def crash(_fd: int) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", crash)
    changed = weekly.run_week(
        dataset, monday(0), policy, store, generated_at=FIXED_TIME + dt.timedelta(days=1)
    )
    with pytest.raises(OSError, match="simulated"):
        weekly.commit_week(changed, dataset, out, store)
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert after == before
    pd.testing.assert_frame_equal(history.records(store), stored)
    assert sorted(p.name for p in out.iterdir()) == [monday(0).isoformat(), "history.sqlite"]


@pytest.mark.parametrize(
    ("zone", "now_utc", "expected"),
    [
        ("Asia/Singapore", "2026-11-22T23:30:00", dt.date(2026, 11, 23)),  # Mon 07:30 at +08:00
        ("America/Los_Angeles", "2026-11-23T15:30:00", dt.date(2026, 11, 23)),  # Mon 07:30 -08:00
        ("America/Los_Angeles", "2026-11-23T07:30:00", dt.date(2026, 11, 16)),  # still Sunday there
    ],
    ids=["singapore_monday_morning", "los_angeles_monday_morning", "los_angeles_sunday_night"],
)
def test_the_default_monday_is_the_schedulers_date(
    monkeypatch: pytest.MonkeyPatch, zone: str, now_utc: str, expected: dt.date
) -> None:
    """A cron job at 07:30 on Monday evaluates the week that just ended, whatever UTC says."""
    now = dt.datetime.fromisoformat(now_utc).replace(tzinfo=dt.UTC)
    assert weekly.default_monday(now, Policy(schedule_timezone=zone)) == expected
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert weekly.default_monday(now, Policy()) == expected  # the host's own zone
    finally:
        monkeypatch.undo()
        time.tzset()


def test_signals_wait_until_the_commit_block_ends() -> None:
    import signal

    seen: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda n, _f: seen.append("handled"))
    try:
        with weekly.signals_deferred():
            signal.raise_signal(signal.SIGTERM)
            seen.append("block ran on")
        assert seen == ["block ran on", "handled"]
    finally:
        signal.signal(signal.SIGTERM, previous)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["S2", "S1", "é", " S3"]), st.integers(0, 50)),
        min_size=1,
        max_size=16,
    ),
    st.integers(0, 50),
)
def test_counts_and_last_messages_by_key_are_those_by_shop_id(rows, cut):
    """A keyed group's rows per shop and latest message up to the cut-off, looked up by key,
    against pandas' value_counts and groupby of the shop id text."""
    monday = pd.Timestamp("2026-11-16T00:00:00Z")
    group = pd.DataFrame(
        {
            "shop_id": pd.Series([s for s, _ in rows], dtype="string[pyarrow]"),
            "conversation_id": pd.Series(["c"] * len(rows), dtype="string[pyarrow]"),
            "message_id": pd.Series([f"m{i}" for i in range(len(rows))], dtype="string[pyarrow]"),
            "sent_at": pd.Series(
                [monday + pd.Timedelta(minutes=m) for _, m in rows], dtype="datetime64[us, UTC]"
            ),
            ROW: np.arange(1, len(rows) + 1),
        }
    )
    keyed = duplicates.without_duplicates(duplicates.flagged(group))
    text = keyed.drop(columns=["shop_key"])
    by_key, by_text = weekly.shop_rows(keyed), weekly.shop_rows(text)
    assert by_key.sort_index().to_dict() == by_text.sort_index().to_dict()
    cutoff = monday + pd.Timedelta(minutes=cut)
    last_by_key = weekly.last_message_by_shop(keyed, cutoff)
    last_by_text = weekly.last_message_by_shop(text, cutoff)
    assert last_by_key.to_dict() == last_by_text.to_dict()
    assert list(last_by_key.index) == list(last_by_text.index)
    assert last_by_key.dtype == last_by_text.dtype
