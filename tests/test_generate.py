"""Tests for the seeded chat-export generator (cs_metrics.generate)."""

from __future__ import annotations

import filecmp
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_metrics.errors import UsageError
from cs_metrics.generate import GeneratorConfig, generate, write_tables
from paths import ROOT

SPEC_COLUMNS = {
    "messages": [
        "shop_id",
        "conversation_id",
        "message_id",
        "sender_role",
        "sent_at",
        "sender_id",
        "message_type",
        "content",
    ],
    "ratings": ["shop_id", "conversation_id", "rating", "rated_at"],
    "holiday_mode": ["shop_id", "start", "end"],
    "shops": ["shop_id", "name", "market", "timezone"],
}
ROLES = {"buyer", "seller", "auto_reply", "system"}
SMALL = GeneratorConfig(shops=4, days=5, messages=4_000)
SAMPLE_DIR = ROOT / "sample_data"


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    """The default (sample) tables, bad rows included."""
    return generate(GeneratorConfig())


@pytest.fixture(scope="module")
def clean() -> dict[str, pd.DataFrame]:
    """The sample's shops and days without bad rows."""
    return generate(GeneratorConfig(bad_rows=False))


def test_same_seed_gives_identical_tables() -> None:
    first, second = generate(SMALL), generate(SMALL)
    assert first.keys() == second.keys()
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name])


def test_different_seed_gives_different_messages() -> None:
    one = generate(SMALL)["messages"]
    other = generate(GeneratorConfig(shops=4, days=5, messages=4_000, seed=8))["messages"]
    assert not one.equals(other)


@pytest.mark.parametrize("bad_rows", [True, False], ids=["bad-rows", "clean"])
def test_tables_have_exactly_the_spec_columns(bad_rows: bool) -> None:
    tables = generate(GeneratorConfig(shops=3, days=3, messages=1_000, bad_rows=bad_rows))
    assert {name: list(df.columns) for name, df in tables.items()} == SPEC_COLUMNS


def test_message_ids_repeat_only_in_the_injected_exact_duplicate(
    sample: dict[str, pd.DataFrame],
) -> None:
    messages = sample["messages"]
    repeated = messages[messages.duplicated(["shop_id", "message_id"], keep=False)]
    assert len(repeated) == 2
    assert repeated.iloc[0].equals(repeated.iloc[1])


def test_clean_message_ids_are_unique_per_shop(clean: dict[str, pd.DataFrame]) -> None:
    assert not clean["messages"].duplicated(["shop_id", "message_id"]).any()


def test_every_conversation_stays_within_one_shop(clean: dict[str, pd.DataFrame]) -> None:
    messages = clean["messages"]
    pairs = messages[["conversation_id", "shop_id"]].drop_duplicates()
    assert pairs["conversation_id"].is_unique
    known = set(zip(messages["shop_id"], messages["conversation_id"], strict=True))
    rated = set(zip(clean["ratings"]["shop_id"], clean["ratings"]["conversation_id"], strict=True))
    assert rated <= known


def test_bad_rows_are_exactly_the_documented_ones(sample: dict[str, pd.DataFrame]) -> None:
    messages, ratings = sample["messages"], sample["ratings"]
    assert messages["sent_at"].str.fullmatch(r"\d\d/\d\d/2026 \d\d:\d\d").sum() == 1
    assert set(messages["sender_role"]) - ROLES == {"alien"}
    assert (messages["sender_role"] == "alien").sum() == 1
    assert messages["conversation_id"].isna().sum() == 1
    assert messages.duplicated().sum() == 1
    assert sorted(set(ratings["rating"]) - {"1", "2", "3", "4", "5"}) == ["4.5", "6"]
    assert len(ratings) - ratings["rating"].isin(["1", "2", "3", "4", "5"]).sum() == 2


def test_good_rows_use_only_the_four_canonical_roles(sample: dict[str, pd.DataFrame]) -> None:
    messages = sample["messages"]
    good = messages[messages["sender_role"] != "alien"]
    assert set(good["sender_role"]) == ROLES


def test_clean_tables_hold_no_bad_values(clean: dict[str, pd.DataFrame]) -> None:
    messages, ratings = clean["messages"], clean["ratings"]
    assert isinstance(messages["sent_at"].dtype, pd.DatetimeTZDtype)
    assert messages["sent_at"].notna().all()
    required = ["shop_id", "conversation_id", "message_id", "sender_role"]
    assert messages[required].notna().all().all()
    assert set(messages["sender_role"]) <= ROLES
    assert not messages.duplicated().any()
    assert ratings["rating"].dtype == "int64"
    assert ratings["rating"].between(1, 5).all()
    assert ratings["rated_at"].notna().all()


@pytest.mark.parametrize(
    ("shops", "target"),
    [(1, 20_000), (8, 20_000), (40, 20_000), (8, 200_000)],
    ids=["1-shop", "8-shops", "40-shops", "200k"],
)
def test_message_target_is_met_within_20_percent(shops: int, target: int) -> None:
    tables = generate(GeneratorConfig(shops=shops, messages=target, bad_rows=False))
    assert abs(len(tables["messages"]) - target) <= 0.2 * target
    assert tables["messages"]["shop_id"].nunique() == shops


def test_many_shops_are_named_by_number_and_cycle_markets() -> None:
    shops = generate(GeneratorConfig(shops=20, days=2, messages=2_000))["shops"]
    assert shops["shop_id"].iloc[0] == "shop_0001"
    assert shops["shop_id"].iloc[-1] == "shop_0020"
    assert shops["market"].nunique() >= 4


def test_sample_has_eight_shops_in_many_markets_and_two_holiday_periods(
    clean: dict[str, pd.DataFrame],
) -> None:
    shops, holiday = clean["shops"], clean["holiday_mode"]
    assert len(shops) == 8
    assert {"SG", "MY", "VN", "TH", "PH", "ID", "GB", "US"} == set(shops["market"])
    assert shops["timezone"].isna().any() and shops["timezone"].notna().any()
    assert len(holiday) == 2
    assert holiday["end"].isna().sum() == 1  # one period still on
    per_shop = clean["messages"].groupby("shop_id").size()
    assert per_shop.between(1_500, 6_500).all()


def test_messages_fall_within_the_covered_days(clean: dict[str, pd.DataFrame]) -> None:
    sent = clean["messages"]["sent_at"]
    # Local days 2026-11-09..23 in zones from UTC+8 to UTC-8.
    assert sent.min() >= pd.Timestamp("2026-11-08T16:00Z")
    assert sent.max() < pd.Timestamp("2026-11-24T08:00Z")


def test_sample_content_has_a_script_tag_and_guideline_breaking_seller_messages(
    sample: dict[str, pd.DataFrame],
) -> None:
    messages = sample["messages"]
    assert (messages["content"] == "<script>alert(1)</script>").sum() == 1
    seller = messages.loc[messages["sender_role"] == "seller", "content"]
    flagged = seller.str.contains("voucher|WhatsApp|cancel the order|Viber|Zalo|ไลน์|ดาว|WA|PayPal")
    assert flagged.sum() >= 5


def test_csv_timestamps_carry_the_shop_offset_and_empty_end(tmp_path: Path) -> None:
    utc = pd.to_datetime(
        ["2026-11-16T02:00:00Z", "2026-07-01T12:00:00Z", "2026-11-16T02:00:00Z"], utc=True
    )
    tables = {
        "shops": pd.DataFrame(
            {
                "shop_id": ["SG-1", "GB-1"],
                "name": ["a", "b"],
                "market": ["SG", "GB"],
                "timezone": [None, "Europe/London"],
            }
        ),
        "holiday_mode": pd.DataFrame(
            {
                "shop_id": ["SG-1"],
                "start": utc[:1],
                "end": pd.Series([pd.NaT]).dt.tz_localize("UTC"),
            }
        ),
        "ratings": pd.DataFrame(
            {
                "shop_id": ["SG-1", "GB-1", "XX-9"],
                "conversation_id": ["c1", "c2", "c3"],
                "rating": [5, 4, 1],
                "rated_at": utc,
            }
        ),
    }
    write_tables(tables, tmp_path)
    ratings = (tmp_path / "ratings.csv").read_text(encoding="utf-8").splitlines()
    assert ratings == [
        "shop_id,conversation_id,rating,rated_at",
        "SG-1,c1,5,2026-11-16T10:00:00+08:00",  # market default zone
        "GB-1,c2,4,2026-07-01T13:00:00+01:00",  # British Summer Time
        "XX-9,c3,1,2026-11-16T02:00:00Z",  # shop without a zone: UTC
    ]
    holiday = (tmp_path / "holiday_mode.csv").read_text(encoding="utf-8").splitlines()
    assert holiday == ["shop_id,start,end", "SG-1,2026-11-16T10:00:00+08:00,"]


def test_csv_round_trip_gives_back_the_same_instants(tmp_path: Path) -> None:
    tables = generate(GeneratorConfig(shops=8, days=3, messages=3_000, bad_rows=False))
    write_tables(tables, tmp_path, "csv")
    back = pd.read_csv(tmp_path / "messages.csv", dtype=str, keep_default_na=False)
    sent = pd.to_datetime(back["sent_at"], format="ISO8601", utc=True)
    assert sent.dt.as_unit("us").equals(tables["messages"]["sent_at"].dt.as_unit("us"))
    assert back["content"].tolist() == tables["messages"]["content"].tolist()


def test_parquet_round_trip_keeps_tz_aware_timestamps(tmp_path: Path) -> None:
    tables = generate(GeneratorConfig(shops=3, days=4, messages=2_000, bad_rows=False))
    paths = write_tables(tables, tmp_path, "parquet")
    assert [p.name for p in paths] == [f"{name}.parquet" for name in SPEC_COLUMNS]
    for name, df in tables.items():
        back = pd.read_parquet(tmp_path / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, df, check_dtype=False)
    stamps = pd.read_parquet(tmp_path / "messages.parquet")["sent_at"]
    assert isinstance(stamps.dtype, pd.DatetimeTZDtype)
    assert str(stamps.dt.tz) == "UTC"


def test_writing_another_format_replaces_the_old_files(tmp_path: Path) -> None:
    tables = generate(GeneratorConfig(shops=2, days=2, messages=500, bad_rows=False))
    write_tables(tables, tmp_path, "csv")
    write_tables(tables, tmp_path, "parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{name}.parquet" for name in SPEC_COLUMNS
    )


@pytest.mark.parametrize("bad_rows", [True, False], ids=["bad-rows", "clean"])
def test_tiny_targets_still_give_valid_tables(bad_rows: bool) -> None:
    tables = generate(GeneratorConfig(shops=1, days=1, messages=1, bad_rows=bad_rows))
    assert {name: list(df.columns) for name, df in tables.items()} == SPEC_COLUMNS
    assert len(tables["messages"]) <= 20


def test_bad_format_and_bad_config_raise_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        write_tables({}, tmp_path, "xlsx")
    with pytest.raises(UsageError):
        generate(GeneratorConfig(shops=0))


def test_committed_sample_matches_the_generator(tmp_path: Path) -> None:
    """sample_data/ is exactly generate(GeneratorConfig()) written as CSV (regenerate if not)."""
    write_tables(generate(GeneratorConfig()), tmp_path, "csv")
    names = [f"{name}.csv" for name in SPEC_COLUMNS]
    _, mismatch, errors = filecmp.cmpfiles(SAMPLE_DIR, tmp_path, names, shallow=False)
    assert (mismatch, errors) == ([], [])


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shops=st.integers(1, 12),
    days=st.integers(1, 10),
    start=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
)
def test_invariants_hold_for_any_seed_and_calendar(
    seed: int, shops: int, days: int, start: date
) -> None:
    """Ids unique per shop, conversations in one shop, ratings 1..5 on known conversations."""
    config = GeneratorConfig(
        shops=shops, days=days, start=start, messages=300 * shops, seed=seed, bad_rows=False
    )
    tables = generate(config)
    messages, ratings = tables["messages"], tables["ratings"]
    assert not messages.duplicated(["shop_id", "message_id"]).any()
    pairs = messages[["conversation_id", "shop_id"]].drop_duplicates()
    assert pairs["conversation_id"].is_unique
    assert set(messages["sender_role"]) <= ROLES
    assert ratings["rating"].between(1, 5).all()
    known = set(zip(messages["shop_id"], messages["conversation_id"], strict=True))
    assert set(zip(ratings["shop_id"], ratings["conversation_id"], strict=True)) <= known
    assert len(tables["shops"]) == shops


def test_generate_refuses_days_that_run_past_the_year_9999(tmp_path: Path) -> None:
    """`--start 9999-12-10 --days 30` would write year-10000 timestamps."""
    from typer.testing import CliRunner

    from cs_metrics.cli.app import app

    args = ["generate", "--out", str(tmp_path / "g"), "--start", "9999-12-10", "--days", "30"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "runs past the year 9999" in result.stderr
    assert not (tmp_path / "g").exists()
