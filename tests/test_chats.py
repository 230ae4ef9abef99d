"""Chats (SPEC 2) and the response clock with Holiday Mode (SPEC 3, 4), via the drill-down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import MESSAGES_HEADER, drilldown, run, statuses, write_csv
from cs_metrics import chats, duplicates
from cs_metrics.metrics import in_window
from cs_metrics.readers import ROW
from cs_metrics.validate import ROLES

HOLIDAY_HEADER = "shop_id,start,end"


def messages(data: Path, rows: str) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\n{rows.strip()}\n")


def holidays(data: Path, rows: str) -> None:
    write_csv(data, "holiday_mode", f"{HOLIDAY_HEADER}\n{rows.strip()}\n")


def test_buyer_message_first_at_equal_sent_at_so_seller_answers_it(data: Path) -> None:
    """Seller row comes first in the file and sorts first by id; the buyer still opens the chat."""
    messages(
        data,
        """
S1,c1,a,seller,2026-11-17T10:00:00Z
S1,c1,b,buyer,2026-11-17T10:00:00Z
""",
    )
    rows = drilldown(data)
    assert list(rows["status"]) == ["on_time"]
    assert list(rows["response_minutes"]) == [0.0]
    assert list(rows["response_message_id"]) == ["a"]


def test_equal_sent_at_between_non_buyers_orders_by_message_id(data: Path) -> None:
    """At one instant seller `s2` and auto_reply `s1` both follow the buyer; `s1` answers."""
    messages(
        data,
        """
S1,c1,b1,buyer,2026-11-17T10:00:00Z
S1,c1,s2,seller,2026-11-17T10:05:00Z
S1,c1,s1,auto_reply,2026-11-17T10:05:00Z
""",
    )
    rows = drilldown(data)
    assert list(rows["response_message_id"]) == ["s1"]
    assert list(rows["responder_role"]) == ["auto_reply"]


def test_equal_sent_at_buyers_first_opens_with_lowest_message_id(data: Path) -> None:
    messages(
        data,
        """
S1,c1,z,buyer,2026-11-17T10:00:00Z
S1,c1,y,buyer,2026-11-17T10:00:00Z
S1,c1,x,seller,2026-11-17T10:00:00Z
""",
    )
    rows = drilldown(data)
    assert list(rows["first_message_id"]) == ["y"]
    assert list(rows["buyer_messages"]) == [2]


def test_system_messages_neither_open_nor_close_a_chat(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,system,2026-11-17T09:00:00Z
S1,c1,m2,buyer,2026-11-17T10:00:00Z
S1,c1,m3,SYSTEM,2026-11-17T10:01:00Z
S1,c1,m4,platform,2026-11-17T10:02:00Z
S1,c1,m5,seller,2026-11-17T10:40:00Z
""",
    )
    rows = drilldown(data)
    assert list(rows["first_message_id"]) == ["m2"]
    assert list(rows["response_minutes"]) == [40.0]


def test_seller_initiated_messages_are_not_chats(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,seller,2026-11-17T09:00:00Z
S1,c1,m2,auto_reply,2026-11-17T09:01:00Z
S1,c2,m3,seller,2026-11-17T09:00:00Z
""",
    )
    assert drilldown(data).empty


def test_buyer_burst_is_one_chat_received_at_its_first_message(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c1,m2,buyer,2026-11-17T10:30:00Z
S1,c1,m3,buyer,2026-11-17T11:00:00Z
S1,c1,m4,seller,2026-11-17T11:15:00Z
""",
    )
    rows = drilldown(data)
    assert len(rows) == 1
    assert rows.loc[0, "buyer_messages"] == 3
    assert rows.loc[0, "response_minutes"] == 75.0


def test_several_chats_per_conversation_each_closed_by_first_reply(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c1,m2,seller,2026-11-17T10:10:00Z
S1,c1,m3,seller,2026-11-17T10:20:00Z
S1,c1,m4,buyer,2026-11-17T12:00:00Z
S1,c1,m5,auto_reply,2026-11-17T12:01:00Z
S1,c1,m6,buyer,2026-11-18T12:00:00Z
S1,c1,m7,seller,2026-11-19T01:00:00Z
""",
    )
    rows = drilldown(data)
    assert list(rows["first_message_id"]) == ["m1", "m4", "m6"]
    assert list(rows["response_message_id"]) == ["m2", "m5", "m7"]
    assert list(rows["status"]) == ["on_time", "on_time", "late"]


def test_file_order_does_not_matter_only_sent_at(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m3,seller,2026-11-17T10:20:00Z
S1,c1,m1,buyer,2026-11-17T10:00:00Z
""",
    )
    assert list(drilldown(data)["response_minutes"]) == [20.0]


@pytest.mark.parametrize("conversation", ["c1", "7437000000000002213"], ids=["text", "number"])
def test_same_conversation_id_in_two_shops_are_two_conversations(
    data: Path, conversation: str
) -> None:
    messages(
        data,
        f"""
S1,{conversation},m1,buyer,2026-11-17T10:00:00Z
S2,{conversation},m2,seller,2026-11-17T10:20:00Z
""",
    )
    rows = drilldown(data)
    assert list(rows["shop_id"]) == ["S1"]
    assert list(rows["status"]) == ["pending"]


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("2026-11-17T22:00:00Z", "on_time"),
        ("2026-11-17T22:00:00.001Z", "late"),
        ("2026-11-17T21:59:59.999Z", "on_time"),
    ],
    ids=["exactly_12h_on_time", "12h_plus_1ms_late", "12h_minus_1ms_on_time"],
)
def test_twelve_hour_boundary(data: Path, reply: str, status: str) -> None:
    messages(
        data,
        f"""
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c1,m2,seller,{reply}
""",
    )
    assert statuses(data) == {"m1": status}


@pytest.mark.parametrize(
    ("cutoff", "status"),
    [
        ("2026-11-17T21:59:59.999Z", "pending"),
        ("2026-11-17T22:00:00Z", "unresponded"),
        ("2026-11-18T00:00:00Z", "unresponded"),
    ],
    ids=["deadline_after_cutoff_pending", "deadline_at_cutoff_miss", "deadline_before_cutoff"],
)
def test_pending_versus_unresponded_at_the_cutoff(data: Path, cutoff: str, status: str) -> None:
    messages(data, "S1,c1,m1,buyer,2026-11-17T10:00:00Z")
    assert statuses(data, cutoff=cutoff) == {"m1": status}


def test_reply_after_cutoff_is_ignored(data: Path) -> None:
    """The late reply comes after the cut-off, so at the cut-off the chat is still pending."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c1,m2,seller,2026-11-17T12:00:00Z
""",
    )
    assert statuses(data, cutoff="2026-11-17T11:59:59Z") == {"m1": "pending"}
    assert statuses(data, cutoff="2026-11-17T12:00:00Z") == {"m1": "on_time"}


def test_reply_exactly_at_cutoff_counts(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c1,m2,seller,2026-11-17T23:00:00Z
""",
    )
    assert statuses(data, cutoff="2026-11-17T23:00:00Z") == {"m1": "late"}


def test_default_cutoff_is_latest_good_message_of_all_shops(data: Path) -> None:
    """S2's later message sets the cut-off, so S1's chat (deadline 22:00) is a miss."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S2,c1,m2,seller,2026-11-17T22:00:00Z
S2,c1,m3,seller,bad-time
""",
    )
    assert statuses(data) == {"m1": "unresponded"}


def test_chat_opened_before_window_and_answered_in_it_is_not_counted(data: Path) -> None:
    """Received Sunday 23:00 the week before; answered Monday 01:00 in the window: not in it."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-15T23:00:00Z
S1,c1,m2,buyer,2026-11-16T00:30:00Z
S1,c1,m3,seller,2026-11-16T01:00:00Z
S1,c2,m4,buyer,2026-11-16T00:00:00Z
""",
    )
    rows = drilldown(data, cutoff="2026-11-23T00:00:00Z")
    assert list(rows["first_message_id"]) == ["m4"]


def test_chat_received_in_window_counts_there_even_if_answered_after(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-22T23:00:00Z
S1,c1,m2,seller,2026-11-23T01:00:00Z
""",
    )
    assert statuses(data) == {"m1": "on_time"}


# ---- Holiday Mode (SPEC 3) ----


def test_chat_received_inside_holiday_mode_is_excluded(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c2,m2,buyer,2026-11-18T00:00:00Z
S1,c3,m3,buyer,2026-11-17T00:00:00Z
S1,c3,m4,seller,2026-11-17T00:10:00Z
""",
    )
    holidays(data, "S1,2026-11-17T00:00:00Z,2026-11-18T00:00:00Z")
    assert statuses(data) == {
        "m3": "excluded_holiday_mode",
        "m1": "excluded_holiday_mode",
        "m2": "pending",
    }


def test_response_clock_subtracts_holiday_mode_within_the_chat(data: Path) -> None:
    """Wall time 20 h, of which 10 h in Holiday Mode: 10 h on the clock, on time."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T08:00:00Z
S1,c1,m2,seller,2026-11-18T04:00:00Z
""",
    )
    holidays(data, "S1,2026-11-17T12:00:00Z,2026-11-17T22:00:00Z")
    rows = drilldown(data)
    assert list(rows["status"]) == ["on_time"]
    assert list(rows["response_minutes"]) == [600.0]


def test_reply_inside_holiday_mode_counts_clock_up_to_its_start(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T08:00:00Z
S1,c1,m2,seller,2026-11-17T15:00:00Z
""",
    )
    holidays(data, "S1,2026-11-17T12:00:00Z,2026-11-17T22:00:00Z")
    assert list(drilldown(data)["response_minutes"]) == [240.0]


def test_deadline_is_moved_by_a_holiday_period(data: Path) -> None:
    """Received 08:00, 4 h off 12:00-16:00: the deadline is 24:00, not 20:00."""
    messages(data, "S1,c1,m1,buyer,2026-11-17T08:00:00Z")
    holidays(data, "S1,2026-11-17T12:00:00Z,2026-11-17T16:00:00Z")
    rows = drilldown(data, cutoff="2026-11-17T23:59:59Z")
    assert list(rows["status"]) == ["pending"]
    assert str(rows.loc[0, "deadline_at_utc"]) == "2026-11-18 00:00:00+00:00"
    assert statuses(data, cutoff="2026-11-18T00:00:00Z") == {"m1": "unresponded"}


def test_deadline_landing_exactly_on_period_start(data: Path) -> None:
    """Received 08:00, Holiday Mode from 20:00: the clock reaches 12 h at 20:00 exactly."""
    messages(data, "S1,c1,m1,buyer,2026-11-17T08:00:00Z")
    holidays(data, "S1,2026-11-17T20:00:00Z,2026-11-18T08:00:00Z")
    assert statuses(data, cutoff="2026-11-17T20:00:00Z") == {"m1": "unresponded"}
    assert statuses(data, cutoff="2026-11-17T19:59:59Z") == {"m1": "pending"}


def test_open_ended_holiday_mode_makes_an_unanswered_chat_pending(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T08:00:00Z
S1,c2,m2,buyer,2026-11-17T09:00:00Z
""",
    )
    holidays(data, "S1,2026-11-17T10:00:00Z,")
    assert statuses(data, cutoff="2026-11-25T00:00:00Z") == {"m1": "pending", "m2": "pending"}


def test_chat_received_at_period_end_is_not_excluded(data: Path) -> None:
    """`end` is exclusive; `start` inclusive."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T12:00:00Z
S1,c2,m2,buyer,2026-11-17T13:00:00Z
""",
    )
    holidays(data, "S1,2026-11-17T12:00:00Z,2026-11-17T13:00:00Z")
    assert statuses(data) == {"m1": "excluded_holiday_mode", "m2": "pending"}


@pytest.mark.parametrize(
    "periods",
    [
        "S1,2026-11-17T12:00:00Z,2026-11-17T14:00:00Z\nS1,2026-11-17T14:00:00Z,2026-11-17T16:00:00Z",
        "S1,2026-11-17T12:00:00Z,2026-11-17T15:00:00Z\nS1,2026-11-17T13:00:00Z,2026-11-17T16:00:00Z",
        "S1,2026-11-17T12:00:00Z,2026-11-17T16:00:00Z\nS1,2026-11-17T13:00:00Z,2026-11-17T14:00:00Z",
        "S1,2026-11-17T13:00:00Z,2026-11-17T16:00:00Z\nS1,2026-11-17T12:00:00Z,2026-11-17T13:30:00Z",
    ],
    ids=["touching", "overlapping", "nested", "overlapping_out_of_order"],
)
def test_touching_or_overlapping_periods_merge_into_one(data: Path, periods: str) -> None:
    """Either way Holiday Mode is 12:00-16:00: 4 h off a 10 h wall time gives 6 h."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T08:00:00Z
S1,c1,m2,seller,2026-11-17T18:00:00Z
""",
    )
    holidays(data, periods)
    assert list(drilldown(data)["response_minutes"]) == [360.0]


def test_start_equal_end_covers_nothing(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T12:00:00Z
S1,c1,m2,seller,2026-11-17T13:00:00Z
""",
    )
    holidays(data, "S1,2026-11-17T12:00:00Z,2026-11-17T12:00:00Z")
    rows = drilldown(data)
    assert list(rows["status"]) == ["on_time"]
    assert list(rows["response_minutes"]) == [60.0]


def test_other_shops_holiday_mode_does_not_apply(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T12:00:00Z
S1,c1,m2,seller,2026-11-17T13:00:00Z
""",
    )
    holidays(data, "S2,2026-11-17T00:00:00Z,2026-11-18T00:00:00Z")
    assert statuses(data) == {"m1": "on_time"}


def test_clock_across_two_separate_periods(data: Path) -> None:
    """Received 08:00 Mon, off 10:00-12:00 and 20:00-06:00: 26 h wall less 12 h off is 14 h."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T08:00:00Z
S1,c1,m2,seller,2026-11-18T10:00:00Z
S1,c2,m3,buyer,2026-11-17T08:00:00Z
""",
    )
    holidays(
        data,
        """
S1,2026-11-17T20:00:00Z,2026-11-18T06:00:00Z
S1,2026-11-17T10:00:00Z,2026-11-17T12:00:00Z
""",
    )
    rows = drilldown(data, cutoff="2026-11-18T10:00:00Z").set_index("first_message_id")
    assert rows.loc["m1", "response_minutes"] == 14 * 60
    assert rows.loc["m1", "status"] == "late"
    # m3: 08-10 (2h), 12-20 (8h), then 06:00 + 2h = 08:00 the next day.
    assert str(rows.loc["m3", "deadline_at_utc"]) == "2026-11-18 08:00:00+00:00"
    assert rows.loc["m3", "status"] == "unresponded"


def test_dated_holiday_period_in_shop_zone_end_exclusive(data: Path) -> None:
    """A period given as dates 2026-11-18..2026-11-19 covers Singapore's 18 November only."""
    write_csv(data, "shops", "shop_id,market\nS1,SG\n")
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T15:59:59Z
S1,c2,m2,buyer,2026-11-17T16:00:00Z
S1,c3,m3,buyer,2026-11-18T15:59:59Z
S1,c4,m4,buyer,2026-11-18T16:00:00Z
""",
    )
    holidays(data, "S1,2026-11-18,2026-11-19")
    got = statuses(data, cutoff="2026-11-18T16:00:00Z")
    assert got == {
        "m1": "pending",
        "m2": "excluded_holiday_mode",
        "m3": "excluded_holiday_mode",
        "m4": "pending",
    }


def test_reply_a_microsecond_after_twelve_hours_is_late(data: Path) -> None:
    """SPEC 3: only <= 12 h is on time; instants keep microseconds (docs/decisions.md)."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c1,m2,seller,2026-11-17T22:00:00.000001Z
""",
    )
    assert statuses(data) == {"m1": "late"}


def test_digits_beyond_microseconds_are_cut(data: Path) -> None:
    """Instants have microsecond resolution, like Python's datetime: 12 h + 100 ns is 12 h."""
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T10:00:00Z
S1,c1,m2,seller,2026-11-17T22:00:00.0000001Z
""",
    )
    assert statuses(data) == {"m1": "on_time"}


def test_chats_without_detail_keep_the_metric_columns_only(data: Path) -> None:
    messages(
        data,
        """
S1,c1,m1,buyer,2026-11-17T01:00:00Z
S1,c1,m2,seller,2026-11-17T01:20:00Z
S1,c2,m3,buyer,2026-11-17T02:00:00Z
""",
    )
    _, full = run(data)
    _, lean = run(data, chat_detail=False)
    assert set(full.chats.columns) - set(lean.chats.columns) == {
        "conversation_id",
        "first_message_id",
        "buyer_id",
        "responder_role",
        "responder_id",
        "response_message_id",
        "timezone",
    }
    assert lean.chats.equals(full.chats[lean.chats.columns])
    assert list(lean.chats["status"]) == ["on_time", "pending"]
    assert list(lean.chats["response_minutes"].fillna(-1)) == [20.0, -1]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["buyer", "seller", "auto_reply", "system", None]), max_size=10),
    st.sets(st.sampled_from(["buyer", "seller", "auto_reply", "system"])),
)
def test_roles_in_by_category_codes_is_isin_of_the_text(roles, wanted):
    """The code lookup of checked (categorical) roles against `isin` of the same roles as text."""
    text = pd.Series(roles, dtype="string")
    expected = text.isin(sorted(wanted)).to_numpy(dtype=bool, na_value=False)
    categorical = pd.Series(roles, dtype=ROLES)
    assert chats.roles_in(categorical, sorted(wanted)).tolist() == expected.tolist()
    assert chats.roles_in(text, sorted(wanted)).tolist() == expected.tolist()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["S1", "S2", "S3", "é"]), min_size=1, max_size=12), st.data())
def test_shop_positions_by_key_are_those_by_text(shops, data):
    """A keyed group's shop positions (one lookup per key) against every row's text looked up."""
    codes = {s: k for k, s in enumerate(dict.fromkeys(shops))}  # as text_codes numbers them
    frame = pd.DataFrame(
        {
            "shop_id": pd.Series(shops, dtype="string"),
            "shop_key": np.array([codes[s] for s in shops], dtype="int64"),
        }
    )
    index = pd.Index(
        data.draw(st.lists(st.sampled_from(["S1", "S2", "S3", "é", "S9"]), unique=True))
    )
    expected = chats.positions(index, frame["shop_id"]).tolist()
    assert chats.shop_positions(index, frame).tolist() == expected
    assert chats.shop_positions(index, frame.drop(columns="shop_key")).tolist() == expected


MESSAGE_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["S1", "S2"]),
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from(["buyer", "seller", "auto_reply", "system"]),
        st.integers(0, 40),
    ),
    max_size=20,
)


def _messages(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """Checked message rows: (shop, conversation, role, minutes after Monday 00:00 UTC)."""
    return pd.DataFrame(
        {
            "shop_id": pd.Series([r[0] for r in rows], dtype="string[pyarrow]"),
            "conversation_id": pd.Series([r[1] for r in rows], dtype="string[pyarrow]"),
            "message_id": pd.Series([f"m{i}" for i in range(len(rows))], dtype="string[pyarrow]"),
            "sender_role": pd.Series([r[2] for r in rows], dtype=ROLES),
            "sent_at": pd.Series(
                [pd.Timestamp("2026-11-16T00:00:00Z") + pd.Timedelta(minutes=r[3]) for r in rows],
                dtype="datetime64[us, UTC]",
            ),
            "sender_id": pd.Series([f"u{r[3] % 3}" for r in rows], dtype="string[pyarrow]"),
        }
    )


NO_PERIODS = pd.DataFrame({"shop_id": pd.Series(dtype="string"), "start": [], "end": []}).astype(
    {"start": "datetime64[us, UTC]", "end": "datetime64[us, UTC]"}
)
LIMIT = pd.Timedelta(hours=12)


@settings(max_examples=100, deadline=None)
@given(MESSAGE_ROWS, st.data())
def test_detail_taken_later_equals_detail_taken_with_every_chat(rows, data):
    """The drill-down's columns taken for some chats afterwards (`rows`, then `with_detail`):
    the same frame, columns and types as those chats taken from chats made with `detail`."""
    frame = _messages(rows)
    full = chats.build_chats(frame, NO_PERIODS, None, LIMIT, detail=True)
    later = chats.build_chats(frame, NO_PERIODS, None, LIMIT, detail=False, rows=True)
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(full), max_size=len(full))))
    kept = chats.with_detail(frame, later.loc[keep])
    pd.testing.assert_frame_equal(kept, full.loc[keep])


@settings(max_examples=150, deadline=None)
@given(
    MESSAGE_ROWS,
    st.lists(
        st.tuples(st.sampled_from(["S1", "S2", "S3"]), st.integers(0, 40), st.integers(0, 40))
    ),
    st.booleans(),
    st.booleans(),
)
def test_chats_of_the_window_are_those_of_every_chat_in_the_window(rows, windows, keyed, detail):
    """Chats picked by their shop's window before their columns are taken and their clock runs:
    the chats of every chat that `metrics.in_window` keeps (shops keyed or not; a shop without
    a window has no chat)."""
    frame = _messages(rows)
    if keyed:
        frame = duplicates.flagged(frame.assign(**{ROW: np.arange(1, len(frame) + 1)}))
        frame = duplicates.without_duplicates(frame)
    first = {shop: (a, b) for shop, a, b in windows}  # one window per shop
    monday = pd.Timestamp("2026-11-16T00:00:00Z")
    bounds = pd.DataFrame(
        {
            "shop_id": pd.Series(list(first), dtype="string"),
            "window_start": pd.Series(
                [monday + pd.Timedelta(minutes=a) for a, _ in first.values()],
                dtype="datetime64[us, UTC]",
            ),
            "window_end": pd.Series(
                [monday + pd.Timedelta(minutes=a + b) for a, b in first.values()],
                dtype="datetime64[us, UTC]",
            ),
        }
    )
    every = chats.build_chats(frame, NO_PERIODS, None, LIMIT, detail=detail)
    expected = in_window(every, "received_at", bounds).reset_index(drop=True)
    found = chats.build_chats(frame, NO_PERIODS, None, LIMIT, detail=detail, bounds=bounds)
    pd.testing.assert_frame_equal(found, expected)
