"""Windows in the shop's zone (SPEC 4, 7) and the per-shop metrics (SPEC 5)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MESSAGES_HEADER, compute, shop, write_csv
from cs_metrics.metrics import counted_ratings, window_bounds

RATINGS_HEADER = "shop_id,conversation_id,rating,rated_at"


@pytest.mark.parametrize(
    ("zone", "start", "end", "window_start", "window_end"),
    [
        (
            "Europe/London",
            "2026-10-19",
            "2026-10-25",
            "2026-10-19T00:00:00+01:00",
            "2026-10-26T00:00:00+00:00",
        ),
        (
            "Europe/London",
            "2026-03-23",
            "2026-03-29",
            "2026-03-23T00:00:00+00:00",
            "2026-03-30T00:00:00+01:00",
        ),
        (
            "America/Santiago",
            "2026-09-06",
            "2026-09-06",
            "2026-09-06T01:00:00-03:00",
            "2026-09-07T00:00:00-03:00",
        ),
        (
            "America/Santiago",
            "2026-08-31",
            "2026-09-05",
            "2026-08-31T00:00:00-04:00",
            "2026-09-06T01:00:00-03:00",
        ),
        (
            "America/Havana",
            "2026-11-01",
            "2026-11-01",
            "2026-11-01T00:00:00-04:00",
            "2026-11-02T00:00:00-05:00",
        ),
        (
            "Asia/Kolkata",
            "2026-11-16",
            "2026-11-22",
            "2026-11-16T00:00:00+05:30",
            "2026-11-23T00:00:00+05:30",
        ),
    ],
    ids=[
        "london_autumn_change_inside",
        "london_spring_change_inside",
        "santiago_missing_midnight_is_first_instant",
        "santiago_window_ends_on_missing_midnight",
        "havana_ambiguous_midnight_first_occurrence",
        "half_hour_offset",
    ],
)
def test_window_bounds_are_local_midnights_with_the_offset_then(
    data: Path, zone: str, start: str, end: str, window_start: str, window_end: str
) -> None:
    write_csv(data, "shops", f"shop_id,timezone\nS1,{zone}\n")
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,seller,2026-11-17T10:00:00Z\n")
    s1 = shop(compute(data, start=start, end=end), "S1")
    assert (s1["timezone"], s1["window_start"], s1["window_end"]) == (
        zone,
        window_start,
        window_end,
    )


def test_window_bounds_function_gives_utc_instants_per_shop() -> None:
    shops = pd.DataFrame(
        {"shop_id": ["A", "B"], "timezone": ["Asia/Singapore", "America/Los_Angeles"]}
    )
    got = window_bounds(shops, dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    expected = pd.DataFrame(
        {
            "shop_id": ["A", "B"],
            "timezone": ["Asia/Singapore", "America/Los_Angeles"],
            "window_start": pd.to_datetime(
                ["2026-11-15T16:00:00Z", "2026-11-16T08:00:00Z"]
            ).as_unit("ns"),
            "window_end": pd.to_datetime(["2026-11-22T16:00:00Z", "2026-11-23T08:00:00Z"]).as_unit(
                "ns"
            ),
        }
    )
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected, check_dtype=False, check_index_type=False
    )


def test_chat_on_the_london_change_day_belongs_to_local_days(data: Path) -> None:
    """London window 19..25 Oct: from 18 Oct 23:00Z (BST) to 26 Oct 00:00Z (GMT)."""
    write_csv(data, "shops", "shop_id,market\nL1,GB\n")
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        L1,c0,m0,buyer,2026-10-18T22:59:59Z
        L1,c1,m1,buyer,2026-10-18T23:00:00Z
        L1,c2,m2,buyer,2026-10-25T23:59:59Z
        L1,c3,m3,buyer,2026-10-26T00:00:00Z
        """,
    )
    assert shop(compute(data, start="2026-10-19", end="2026-10-25"), "L1")["chats"] == 2


RESPONSE_MINUTES = [5, 10, 20, 40, 80, 700, 1]


def test_median_and_p90_use_linear_interpolation_like_numpy(data: Path) -> None:
    rows = [f"S1,c{i},b{i},buyer,2026-11-17T00:00:00Z" for i in range(len(RESPONSE_MINUTES))]
    rows += [f"S1,c{i},s{i},seller,{1794873600 + 60 * m}" for i, m in enumerate(RESPONSE_MINUTES)]
    write_csv(data, "messages", MESSAGES_HEADER + "\n" + "\n".join(rows) + "\n")
    s1 = shop(compute(data), "S1")
    minutes = np.array(RESPONSE_MINUTES, dtype=float)
    assert s1["chats_responded_12h"] == 7
    assert s1["first_response_minutes_mean"] == pytest.approx(float(np.mean(minutes)))
    assert s1["first_response_minutes_median"] == pytest.approx(float(np.median(minutes)))
    assert s1["first_response_minutes_p90"] == pytest.approx(float(np.percentile(minutes, 90)))
    assert s1["first_response_minutes_p90"] == pytest.approx(328.0)


def test_response_time_stats_include_late_but_not_unresponded_chats(data: Path) -> None:
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T00:00:00Z
        S1,c1,m2,seller,2026-11-17T00:10:00Z
        S1,c2,m3,buyer,2026-11-17T00:00:00Z
        S1,c2,m4,seller,2026-11-17T13:00:00Z
        S1,c3,m5,buyer,2026-11-17T00:00:00Z
        """,
    )
    s1 = shop(compute(data, cutoff="2026-11-20T00:00:00Z"), "S1")
    assert s1["first_response_minutes_mean"] == pytest.approx((10 + 780) / 2)
    assert (s1["chats_assessed"], s1["chats_unresponded"], s1["chats_responded"]) == (3, 1, 2)
    assert s1["response_rate_12h"] == pytest.approx(1 / 3)


def test_counts_and_rates_of_a_mixed_week(data: Path) -> None:
    """One chat of each status: on time, late, unresponded, pending, excluded."""
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T00:00:00Z
        S1,c1,m2,seller,2026-11-17T01:00:00Z
        S1,c2,m3,buyer,2026-11-17T00:00:00Z
        S1,c2,m4,seller,2026-11-17T12:00:01Z
        S1,c3,m5,buyer,2026-11-18T00:00:00Z
        S1,c4,m6,buyer,2026-11-22T20:00:00Z
        S1,c5,m7,buyer,2026-11-20T10:00:00Z
        """,
    )
    write_csv(data, "holiday_mode", "shop_id,start,end\nS1,2026-11-20,2026-11-21\n")
    s1 = shop(compute(data, cutoff="2026-11-23T00:00:00Z"), "S1")
    expected = {
        "chats": 5,
        "chats_assessed": 3,
        "chats_excluded_holiday_mode": 1,
        "chats_pending": 1,
        "chats_responded_12h": 1,
        "chats_responded_late": 1,
        "chats_unresponded": 1,
        "chats_responded": 2,
    }
    assert {k: s1[k] for k in expected} == expected
    assert s1["response_rate_12h"] == pytest.approx(1 / 3)


def test_no_chats_gives_zero_counts_and_null_rates(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,seller,2026-11-17T00:00:00Z\n")
    s1 = shop(compute(data), "S1")
    assert s1["chats"] == 0
    assert s1["ratings"] == 0
    for field in (
        "response_rate_12h",
        "first_response_minutes_mean",
        "first_response_minutes_median",
        "first_response_minutes_p90",
        "satisfaction_rate",
    ):
        assert s1[field] is None, field


def test_only_pending_chats_gives_null_rate_not_zero(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T00:00:00Z\n")
    s1 = shop(compute(data), "S1")
    assert (s1["chats"], s1["chats_pending"], s1["chats_assessed"]) == (1, 1, 0)
    assert s1["response_rate_12h"] is None


# ---- ratings ----


def ratings_case(data: Path, ratings: str, holiday: str | None = None) -> dict:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-22T00:00:00Z\n")
    write_csv(data, "ratings", f"{RATINGS_HEADER}\n{ratings.strip()}\n")
    if holiday:
        write_csv(data, "holiday_mode", f"shop_id,start,end\n{holiday}\n")
    return shop(compute(data, cutoff="2026-11-23T00:00:00Z"), "S1")


def test_latest_rating_per_conversation_counts(data: Path) -> None:
    s1 = ratings_case(
        data,
        """
S1,c1,2,2026-11-18T10:00:00Z
S1,c1,5,2026-11-17T10:00:00Z
S1,c2,4,2026-11-17T10:00:00Z
""",
    )
    assert (s1["ratings"], s1["ratings_satisfied"], s1["satisfaction_rate"]) == (2, 1, 0.5)


def test_equal_rated_at_later_file_row_wins(data: Path) -> None:
    s1 = ratings_case(
        data,
        """
S1,c1,5,2026-11-18T10:00:00Z
S1,c1,1,2026-11-18T10:00:00Z
S1,c2,1,2026-11-18T10:00:00Z
S1,c2,5,2026-11-18T10:00:00Z
""",
    )
    assert (s1["ratings"], s1["ratings_satisfied"]) == (2, 1)


def test_equal_rated_at_later_row_wins_across_timestamp_forms(data: Path) -> None:
    """Same instant written two ways: still the later file row wins."""
    s1 = ratings_case(
        data,
        """
S1,c1,1,2026-11-18T18:00:00+08:00
S1,c1,5,1795024800
""",
    )
    assert (s1["ratings"], s1["ratings_satisfied"]) == (1, 1)


def test_ratings_in_holiday_mode_are_ignored_before_picking_the_latest(data: Path) -> None:
    """c1's later rating falls in Holiday Mode, so the earlier one counts."""
    s1 = ratings_case(
        data,
        """
S1,c1,5,2026-11-17T10:00:00Z
S1,c1,1,2026-11-19T10:00:00Z
S1,c2,1,2026-11-19T11:00:00Z
""",
        holiday="S1,2026-11-19T00:00:00Z,2026-11-20T00:00:00Z",
    )
    assert (s1["ratings"], s1["ratings_satisfied"]) == (1, 1)


def test_ratings_count_by_rated_at_in_window_and_before_cutoff(data: Path) -> None:
    s1 = ratings_case(
        data,
        """
S1,c1,5,2026-11-15T23:59:59Z
S1,c2,5,2026-11-16T00:00:00Z
S1,c3,1,2026-11-22T23:59:59Z
S1,c4,5,2026-11-23T00:00:00Z
S1,c5,5,2026-11-23T00:00:01Z
""",
    )
    assert (s1["ratings"], s1["ratings_satisfied"]) == (2, 1)


def test_rating_counts_whatever_happened_to_the_conversation(data: Path) -> None:
    """A rating of a conversation with no chat at all still counts."""
    s1 = ratings_case(data, "S1,nochat,4,2026-11-18T10:00:00Z")
    assert (s1["ratings"], s1["ratings_satisfied"], s1["satisfaction_rate"]) == (1, 1, 1.0)


def test_rating_after_cutoff_ignored_even_if_it_is_latest(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-18T00:00:00Z\n")
    write_csv(
        data,
        "ratings",
        f"{RATINGS_HEADER}\nS1,c1,5,2026-11-18T10:00:00Z\nS1,c1,1,2026-11-19T10:00:00Z\n",
    )
    s1 = shop(compute(data, cutoff="2026-11-19T00:00:00Z"), "S1")
    assert (s1["ratings"], s1["ratings_satisfied"]) == (1, 1)


def test_satisfied_means_four_or_five(data: Path) -> None:
    s1 = ratings_case(
        data,
        "\n".join(f"S1,c{r},{r},2026-11-18T10:00:00Z" for r in range(1, 6)),
    )
    assert (s1["ratings"], s1["ratings_satisfied"], s1["satisfaction_rate"]) == (5, 2, 0.4)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2", "s10", "10"]),
            st.sampled_from(["7", "07", "c", "8", "c7", "c07", "c8", None]),
            st.integers(0, 3),
        ),
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_counted_ratings_keep_the_latest_of_each_conversation_like_pandas(rows, rand) -> None:
    """Ties of instant broken by row number (rows in any order), id texts that read as equal
    numbers kept apart (`7`, `07`, `c7`, `c07`), shop ids of digits: as sorting by (rated_at,
    row_number) and keeping the last of each (shop_id, conversation_id)."""
    numbers = list(range(len(rows)))
    rand.shuffle(numbers)
    base = pd.Timestamp("2026-11-17 03:00", tz="UTC")
    ratings = pd.DataFrame(
        {
            "shop_id": pd.Series([s for s, _, _ in rows], dtype="string"),
            "conversation_id": pd.Series([c for _, c, _ in rows], dtype="string"),
            "rating": pd.Series([5] * len(rows), dtype="Int8"),
            "rated_at": pd.Series(
                [base + pd.Timedelta(hours=h) for *_, h in rows], dtype="datetime64[us, UTC]"
            ),
            "row_number": pd.Series(numbers, dtype="int64"),
        }
    )
    shops = pd.DataFrame({"shop_id": ["s1", "s2", "s10", "10"], "timezone": ["UTC"] * 4})
    bounds = window_bounds(shops, dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    no_holiday = pd.DataFrame(
        {
            "shop_id": pd.Series([], dtype="string"),
            "start": pd.Series([], dtype="datetime64[us, UTC]"),
            "end": pd.Series([], dtype="datetime64[us, UTC]"),
        }
    )
    counted = counted_ratings(ratings, no_holiday, bounds, None)
    expected = ratings.sort_values(["rated_at", "row_number"]).drop_duplicates(
        ["shop_id", "conversation_id"], keep="last"
    )
    assert counted["row_number"].tolist() == expected["row_number"].tolist()
