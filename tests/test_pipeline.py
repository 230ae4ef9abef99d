"""Loading and evaluating a data folder end to end (SPEC 4, 7, 8)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from conftest import MESSAGES_HEADER, compute, run, shop, write_csv
from cs_metrics.errors import StrictModeError
from cs_metrics.pipeline import load, messages_in_window
from cs_metrics.policy import Policy


@pytest.fixture
def two_shops(data: Path) -> Path:
    """S1 answers on time; S2's messages are all bad; S3 appears only in ratings and shops."""
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m2,seller,2026-11-17T10:30:00Z
        S2,c1,m1,buyer,garbage
        S2,c1,m2,alien,2026-11-18T10:00:00Z
        S1,c1,m2,seller,2026-11-17T10:40:00Z
        """,
    )
    write_csv(
        data,
        "ratings",
        """
        shop_id,conversation_id,rating,rated_at
        S3,c1,9,2026-11-17T11:00:00Z
        """,
    )
    write_csv(data, "holiday_mode", "shop_id,start,end\nS4,never,\n")
    write_csv(data, "shops", "shop_id,market\nS5,SG\n ,SG\n")
    return data


def test_shops_are_sorted_and_include_shops_seen_only_in_bad_rows(two_shops: Path) -> None:
    doc = compute(two_shops)
    assert [s["shop_id"] for s in doc["shops"]] == ["S1", "S2", "S3", "S4", "S5"]


def test_input_counts_cover_every_row_of_every_given_table(two_shops: Path) -> None:
    doc = compute(two_shops)
    assert doc["input"] == {
        "messages": {"rows_read": 5, "rows_used": 2, "rows_quarantined": 2, "rows_duplicate": 1},
        "ratings": {"rows_read": 1, "rows_used": 0, "rows_quarantined": 1, "rows_duplicate": 0},
        "holiday_mode": {
            "rows_read": 1,
            "rows_used": 0,
            "rows_quarantined": 1,
            "rows_duplicate": 0,
        },
        "shops": {"rows_read": 2, "rows_used": 1, "rows_quarantined": 1, "rows_duplicate": 0},
    }


def test_tables_not_given_are_left_out_of_input(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    assert list(compute(data)["input"]) == ["messages"]


def test_shop_option_gives_exactly_the_named_shops_even_unknown(two_shops: Path) -> None:
    doc = compute(two_shops, shops=["S2", "ZZ"])
    assert [s["shop_id"] for s in doc["shops"]] == ["S2", "ZZ"]
    zz = shop(doc, "ZZ")
    assert (zz["chats"], zz["timezone"], zz["response_rate_12h"]) == (0, "UTC", None)


def test_shop_option_does_not_change_counts_or_default_cutoff(data: Path) -> None:
    """S2's message is the latest; filtering to S1 keeps it as the cut-off, so S1's chat is late."""
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S2,c1,m1,buyer,2026-11-18T10:00:00Z
        S2,c1,m9,buyer,bad
        """,
    )
    everything = compute(data)
    only_s1 = compute(data, shops=["S1"])
    assert only_s1["cutoff"] == everything["cutoff"]
    assert only_s1["input"] == everything["input"]
    assert shop(only_s1, "S1") == shop(everything, "S1")
    assert shop(only_s1, "S1")["chats_unresponded"] == 1


def test_named_shop_results_equal_the_unfiltered_ones(two_shops: Path) -> None:
    everything = compute(two_shops)
    for s in everything["shops"]:
        assert compute(two_shops, shops=[s["shop_id"]])["shops"] == [s]


def test_cutoff_is_printed_in_utc(data: Path) -> None:
    write_csv(data, "shops", "shop_id,market\nS1,SG\n")
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17 10:00:00\n")
    assert compute(data)["cutoff"] in ("2026-11-17T02:00:00+00:00", "2026-11-17T02:00:00Z")
    explicit = compute(data, cutoff="2026-11-23T08:00:00+08:00")["cutoff"]
    assert explicit in ("2026-11-23T00:00:00+00:00", "2026-11-23T00:00:00Z")


def test_naive_cutoff_is_in_the_runs_default_timezone(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    doc = compute(data, cutoff="2026-11-23 08:00", default_timezone="Asia/Singapore")
    assert doc["cutoff"] in ("2026-11-23T00:00:00+00:00", "2026-11-23T00:00:00Z")


def test_cutoff_is_null_without_good_messages(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,never\n")
    doc = compute(data)
    assert doc["cutoff"] is None
    assert [s["shop_id"] for s in doc["shops"]] == ["S1"]


def test_default_cutoff_ignores_bad_and_duplicate_rows(data: Path) -> None:
    """The duplicate copy of m1 is later, but only the first copy is used."""
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m1,buyer,2026-11-19T10:00:00Z
        S1,c1,m2,alien,2026-11-20T10:00:00Z
        """,
    )
    assert compute(data)["cutoff"] in ("2026-11-17T10:00:00+00:00", "2026-11-17T10:00:00Z")


def test_rows_after_cutoff_are_used_rows_but_take_no_part(data: Path) -> None:
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c1,m2,seller,2026-11-20T10:00:00Z
        S1,c2,m3,buyer,2026-11-21T10:00:00Z
        """,
    )
    write_csv(data, "ratings", "shop_id,conversation_id,rating,rated_at\nS1,c1,5,1795600000\n")
    doc = compute(data, cutoff="2026-11-18T00:00:00Z")
    s1 = shop(doc, "S1")
    assert (s1["chats"], s1["chats_unresponded"], s1["chats_responded"], s1["ratings"]) == (
        1,
        1,
        0,
        0,
    )
    assert doc["input"]["messages"]["rows_used"] == 3
    assert doc["input"]["ratings"]["rows_used"] == 1


def test_strict_raises_on_any_bad_row_with_one_line_naming_the_file(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    write_csv(data, "ratings", "shop_id,conversation_id,rating,rated_at\nS1,c1,7,1\n")
    with pytest.raises(StrictModeError) as err:
        load(data, Policy(), strict=True)
    assert "ratings.csv" in str(err.value)
    assert "\n" not in str(err.value)


def test_strict_accepts_duplicates_only(data: Path) -> None:
    """Duplicates are not bad rows."""
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n",
    )
    dataset = load(data, Policy(), strict=True)
    assert dataset.counts["messages"].rows_duplicate == 1


def test_evaluation_chats_are_those_received_in_the_window(data: Path) -> None:
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-15T10:00:00Z
        S1,c2,m2,buyer,2026-11-16T10:00:00Z
        S1,c3,m3,buyer,2026-11-23T00:00:00Z
        """,
    )
    _, evaluation = run(data)
    got = evaluation.chats[["shop_id", "conversation_id"]].reset_index(drop=True)
    expected = pd.DataFrame({"shop_id": ["S1"], "conversation_id": ["c2"]})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_header_only_messages_table_gives_no_shops_and_null_cutoff(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\n")
    doc = compute(data)
    assert (doc["cutoff"], doc["shops"]) == (None, [])
    assert doc["input"]["messages"] == {
        "rows_read": 0,
        "rows_used": 0,
        "rows_quarantined": 0,
        "rows_duplicate": 0,
    }


def test_header_only_messages_table_with_a_named_shop(data: Path) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\n")
    doc = compute(data, shops=["S1"])
    assert [(s["shop_id"], s["chats"]) for s in doc["shops"]] == [("S1", 0)]


def test_system_message_can_set_the_default_cutoff(data: Path) -> None:
    """The latest good row is a system message at 22:00; the 10:00 chat's deadline is 22:00."""
    write_csv(
        data,
        "messages",
        f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\nS1,c1,m2,system,1794952800\n",
    )
    doc = compute(data)
    assert doc["cutoff"] in ("2026-11-17T22:00:00+00:00", "2026-11-17T22:00:00Z")
    assert shop(doc, "S1")["chats_unresponded"] == 1


@pytest.mark.parametrize(
    ("cutoff", "zone", "expected"),
    [
        ("2026-11-23", "Asia/Singapore", "2026-11-22T16:00:00"),
        ("2026-11-23T08:30", "UTC", "2026-11-23T08:30:00"),
        ("1795392000", "Asia/Singapore", "2026-11-23T00:00:00"),
        ("1795392000000", "UTC", "2026-11-23T00:00:00"),
        ("2026-11-23T00:00:00-0500", "Asia/Singapore", "2026-11-23T05:00:00"),
    ],
    ids=["date_only_in_default_zone", "naive_minutes", "unix_seconds", "unix_ms", "offset_hhmm"],
)
def test_cutoff_takes_the_timestamp_forms(
    data: Path, cutoff: str, zone: str, expected: str
) -> None:
    write_csv(data, "messages", f"{MESSAGES_HEADER}\nS1,c1,m1,buyer,2026-11-17T10:00:00Z\n")
    got = compute(data, cutoff=cutoff, default_timezone=zone)["cutoff"]
    assert got in (f"{expected}+00:00", f"{expected}Z")


def test_messages_in_window_keeps_the_asked_roles_columns_shops_and_days(data: Path) -> None:
    """SGT (UTC+8) days 2026-11-17..18: 16:00Z on the 16th is already the 17th there."""
    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER},content
        S1,c1,m1,buyer,2026-11-17T10:00:00Z,hi
        S1,c1,m2,seller,2026-11-16T16:00:00Z,first local day
        S1,c1,m3,seller,2026-11-16T15:59:59Z,day before
        S1,c1,m4,auto_reply,2026-11-18T15:59:59Z,last local second
        S1,c1,m5,seller,2026-11-18T16:00:00Z,day after
        S2,c9,m1,seller,2026-11-17T10:00:00Z,other shop
        """,
    )
    write_csv(data, "shops", "shop_id,market\nS1,SG\nS2,SG\n")
    dataset = load(data, Policy())
    first, last = dt.date(2026, 11, 17), dt.date(2026, 11, 18)
    kept = messages_in_window(
        dataset,
        first,
        last,
        ["S1"],
        columns=["message_id", "content", "shop_id", "no_such_column"],
        roles=["seller", "auto_reply"],
    )
    assert list(kept.columns) == ["message_id", "content", "shop_id"]
    assert list(kept["message_id"]) == ["m2", "m4"]
    everything = messages_in_window(dataset, first, last)
    assert list(everything["message_id"]) == ["m1", "m2", "m4", "m1"]
    assert len(messages_in_window(dataset, None, None, roles=["buyer"])) == 1


@pytest.mark.parametrize("detail", [True, False])
def test_two_halves_of_the_shops_give_one_evaluations_metrics_and_chats(
    tmp_path: Path, detail: bool
) -> None:
    """`by_halves` (every other shop on each of two threads) against one evaluation of all the
    shops: the same metrics, and the same chats in the same order."""
    from cs_metrics.generate import GeneratorConfig, generate, write_tables
    from cs_metrics.pipeline import by_halves, metric_inputs, shop_zones, shops_evaluation

    config = GeneratorConfig(shops=30, start=dt.date(2026, 11, 9), days=15, messages=8000, seed=7)
    write_tables(generate(config), tmp_path, "csv")
    policy = Policy()
    dataset = load(tmp_path, policy)
    shops = shop_zones(dataset, None)
    inputs = metric_inputs(
        dataset, shops, dt.date(2026, 11, 16), dt.date(2026, 11, 22), policy, None, detail, True
    )
    messages = dataset.messages
    shop_ids = pd.Index(messages["shop_id"].unique(), dtype="string").sort_values()
    one_metrics, one_chats = shops_evaluation(messages, shop_ids, inputs)
    two_metrics, two_chats = by_halves(messages, shop_ids, inputs)
    assert len(one_chats) > 1000 and one_chats["shop_id"].nunique() == 30
    pd.testing.assert_frame_equal(
        two_metrics.sort_values("shop_id").reset_index(drop=True),
        one_metrics.sort_values("shop_id").reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(two_chats, one_chats.reset_index(drop=True))


@pytest.mark.parametrize("some", [False, True])
def test_a_groups_shops_by_their_keys_are_those_by_their_text(tmp_path: Path, some: bool) -> None:
    """`group_evaluation` of a settled group (shops found by `shop_key`) against the same rows
    without the keys (shops found by each row's shop_id): the same metrics and chats."""
    from cs_metrics.generate import GeneratorConfig, generate, write_tables
    from cs_metrics.pipeline import group_evaluation, metric_inputs, shop_zones

    config = GeneratorConfig(shops=25, start=dt.date(2026, 11, 9), days=15, messages=5000, seed=3)
    write_tables(generate(config), tmp_path, "csv")
    policy = Policy()
    dataset = load(tmp_path, policy)
    reported = list(dataset.shop_ids[::8]) if some else None
    shops = shop_zones(dataset, reported)
    inputs = metric_inputs(
        dataset, shops, dt.date(2026, 11, 16), dt.date(2026, 11, 22), policy, None, True, True
    )
    keyed = dataset.messages
    assert "shop_key" in keyed
    by_key = group_evaluation(keyed, inputs)
    by_text = group_evaluation(keyed.drop(columns=["shop_key", "conversation_key"]), inputs)
    assert by_key[0]["shop_id"].nunique() == (4 if some else 25) and len(by_key[1]) > 100
    pd.testing.assert_frame_equal(by_key[0], by_text[0])
    pd.testing.assert_frame_equal(by_key[1], by_text[1])


def test_metric_inputs_sent_to_another_process_carry_their_ratings(data: Path) -> None:
    """The counted ratings are worked out on a thread of their own; inputs pickled for a Dask
    worker carry them worked out, the same rows."""
    import pickle

    from cs_metrics.pipeline import metric_inputs, shop_zones

    write_csv(
        data,
        "messages",
        f"""
        {MESSAGES_HEADER}
        S1,c1,m1,buyer,2026-11-17T10:00:00Z
        S1,c2,m2,buyer,2026-11-17T11:00:00Z
        S1,c2,m3,seller,2026-11-17T12:00:00Z
        """,
    )
    write_csv(
        data,
        "ratings",
        """
        shop_id,conversation_id,rating,rated_at
        S1,c1,5,2026-11-17T10:10:00Z
        S1,c1,2,2026-11-17T10:20:00Z
        S1,c2,4,2026-11-17T11:10:00Z
        """,
    )
    dataset = load(data, Policy())
    shops = shop_zones(dataset, None)
    start, end = dt.date(2026, 11, 16), dt.date(2026, 11, 22)
    inputs = metric_inputs(dataset, shops, start, end, Policy(), None, False, False)
    sent = pickle.loads(pickle.dumps(inputs))
    # The latest rating of each chat counts: c1's 2 replaces its 5.
    assert sorted(inputs.rated["rating"].astype(int).tolist()) == [2, 4]
    pd.testing.assert_frame_equal(sent.rated, inputs.rated)
    assert isinstance(sent.counted_ratings, pd.DataFrame)
