"""The Open API client: signing, retries and backoff, pacing, tokens; the store's small parts."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fake_tiktok import APP_KEY, APP_SECRET, SECRETS, FakeTikTok
from fetch_helpers import FakeClock, settings_for, write_credentials

from cs_metrics.fetch.client import (
    ApiError,
    Client,
    Credentials,
    CredentialsError,
    Unavailable,
    retry_after,
    sign,
)
from cs_metrics.fetch.performance import session_ratings
from cs_metrics.fetch.state import complete_until
from cs_metrics.fetch.store import MESSAGE_SCHEMA, merge_messages, shops_table
from cs_metrics.fetch.sync import default_since, oldest_time

pytest_plugins = ["fetch_fixtures"]  # the fake server's fixtures (tests/conftest.py is shared)

SHOPS_PATH = "/authorization/202309/shops"


def test_the_signature_wraps_path_sorted_params_and_body_in_the_secret() -> None:
    """As the Open API documents it: sign and access_token are left out; the rest sorted."""
    params = {"timestamp": "1700000000", "app_key": "k", "sign": "x", "access_token": "t"}
    text = "s/api/pathapp_keyktimestamp1700000000{}s"
    expected = hmac.new(b"s", text.encode(), hashlib.sha256).hexdigest()
    assert sign("s", "/api/path", params, "{}") == expected


def test_retry_after_reads_seconds_and_ignores_dates() -> None:
    assert [retry_after(v) for v in ("3", "0.5", None, "Wed, 21 Oct 2026 07:28:00 GMT")] == [
        3.0,
        0.5,
        None,
        None,
    ]


def test_a_500_on_every_attempt_is_unavailable_naming_the_path_not_a_secret(
    fake: FakeTikTok, make_client, clock: FakeClock
) -> None:
    fake.inject("500", times=99)
    with pytest.raises(Unavailable) as caught:
        make_client(attempts=3).get(SHOPS_PATH)
    assert str(caught.value) == (
        f"{SHOPS_PATH}: no usable answer after 3 attempt(s) (last: HTTP 500)"
    )
    assert clock.waits == [0.75, 1.5]


def test_the_backoff_is_capped(fake: FakeTikTok, make_client, clock: FakeClock) -> None:
    fake.inject("500", times=5)
    make_client(attempts=6, backoff_cap_seconds=2.0).get(SHOPS_PATH)
    assert clock.waits == [0.75, 1.5, 1.5, 1.5, 1.5]  # 1, 2, then the 2 s cap, times 0.75


def test_requests_are_spaced_to_the_rate(fake: FakeTikTok, make_client, clock: FakeClock) -> None:
    client = make_client(requests_per_second=2)
    for _ in range(3):
        client.get(SHOPS_PATH)
    assert len(clock.waits) == 2
    assert all(0.3 < w <= 0.5 for w in clock.waits)


def test_a_token_about_to_expire_is_refreshed_before_the_request(
    fake: FakeTikTok, base: str, tmp_path: Path, clock: FakeClock
) -> None:

    path = write_credentials(tmp_path / "tokens.json", expire_in=int(time.time()) + 60)
    client = Client(APP_KEY, APP_SECRET, Credentials.load(path), settings_for(base))
    client.get(SHOPS_PATH)
    saved = json.loads(path.read_text())
    assert saved["access_token"] == "access-1" and saved["refresh_token"] == "refresh-1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fake.violations == []
    assert [r.path for r in fake.requests] == ["/api/v2/token/refresh", SHOPS_PATH]


def test_credentials_as_the_token_endpoint_answers_them_are_accepted(tmp_path: Path) -> None:
    answer = {
        "code": 0,
        "data": {
            "access_token": "a",
            "access_token_expire_in": 5,
            "refresh_token": "r",
            "refresh_token_expire_in": 9,
        },
    }
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(answer))
    assert Credentials.load(path).refresh_token_expire_in == 9


def test_expire_in_must_be_unix_seconds(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(
        json.dumps(
            {
                "access_token": "a",
                "access_token_expire_in": "soon",
                "refresh_token": "r",
                "refresh_token_expire_in": 9,
            }
        )
    )
    with pytest.raises(CredentialsError, match="must be Unix seconds"):
        Credentials.load(path)


def test_the_horizon_is_the_week_before_less_a_day_and_the_lookback() -> None:
    """--until on Wednesday 25 Nov: the evaluated week began Monday 16 Nov."""
    assert default_since(pd.Timestamp("2026-11-25T10:00Z"), 7) == pd.Timestamp("2026-11-08T00:00Z")
    assert default_since(pd.Timestamp("2026-11-23T00:00Z"), 0) == pd.Timestamp("2026-11-15T00:00Z")


def test_the_oldest_time_of_a_page_reads_seconds_and_milliseconds() -> None:
    page = [{"create_time": 1763600000}, {"create_time": "1763500000000"}, {"x": 1}, "bad"]
    assert oldest_time(page) == 1763500000
    assert oldest_time([]) is None and oldest_time(None) is None


def test_a_day_file_keeps_one_schema_whatever_its_values(tmp_path: Path) -> None:
    """A day whose optional values are all missing still has the text columns (one dataset)."""
    batch = pd.DataFrame(
        {
            "conversation_id": ["c1", "c1"],
            "message_id": ["m1", "m1"],
            "sender_role": ["buyer", "buyer"],
            "sent_at": pd.to_datetime(["2026-11-16T01:00Z"] * 2),
            "sender_id": [None, None],
        }
    )
    assert merge_messages(tmp_path, "S1", batch) == 1
    assert merge_messages(tmp_path, "S1", batch) == 0
    path = tmp_path / "messages" / "shop_id=S1" / "date=2026-11-16" / "part-0.parquet"
    assert pq.read_schema(path).remove_metadata() == MESSAGE_SCHEMA


def test_the_shops_table_takes_the_market_zone_unless_one_was_set() -> None:
    api = [
        {"id": "1", "name": "A", "region": "sg", "cipher": "c1"},
        {"id": "2", "name": "B", "region": "VN", "cipher": "c2"},
    ]
    existing = pd.DataFrame(
        {
            "shop_id": ["2", "9"],
            "name": ["B", "Gone"],
            "market": ["VN", "TH"],
            "timezone": ["Asia/Bangkok", ""],
            "cipher": ["c2", "c9"],
        }
    )
    table = shops_table(api, existing)
    assert table.to_dict("list") == {
        "shop_id": ["1", "2", "9"],
        "name": ["A", "B", "Gone"],
        "market": ["SG", "VN", "TH"],
        "timezone": ["Asia/Singapore", "Asia/Bangkok", ""],
        "cipher": ["c1", "c2", "c9"],
    }


def test_a_rating_is_dated_by_its_score_else_the_session_end_else_its_start() -> None:
    sessions = [
        {
            "id": "s1",
            "conversation_id": "c",
            "start_time": 100,
            "end_time": 200,
            "satisfaction": {"score": 5, "rate_time": 300},
        },
        {
            "id": "s2",
            "conversation_id": "c",
            "start_time": 100,
            "end_time": 200,
            "satisfaction": {"score": 4},
        },
        {"id": "s3", "conversation_id": "c", "start_time": 100, "satisfaction": {"score": 1}},
        {"id": "s4", "conversation_id": "c", "start_time": 100, "end_time": 200},
    ]
    ratings = session_ratings(sessions)
    assert ratings["session_id"].tolist() == ["s1", "s2", "s3"]
    assert ratings["rated_at"].tolist() == list(pd.to_datetime([300, 200, 100], unit="s", utc=True))


def test_complete_until_of_a_folder_that_was_never_fetched_is_none(tmp_path: Path) -> None:
    assert complete_until(tmp_path) is None


def test_a_refusal_without_an_api_body_is_not_retried(make_client, clock: FakeClock) -> None:
    """A wrong --api-base path answers 404 with HTML: an error at once, not six attempts."""
    client = make_client()
    client.settings.api_base += "/wrong"
    with pytest.raises(ApiError, match=r"API error HTTP 404 \(no API answer\)"):
        client.get(SHOPS_PATH)
    assert clock.waits == []


def test_the_credentials_repr_shows_no_token(tmp_path: Path) -> None:
    text = repr(Credentials.load(write_credentials(tmp_path / "tokens.json")))
    assert "access_token_expire_in" in text
    assert not any(secret in text for secret in SECRETS)


def test_a_server_that_is_not_there_is_unavailable_without_its_url(
    make_client, clock: FakeClock
) -> None:
    client = make_client(attempts=2)
    client.settings.api_base = "http://127.0.0.1:9"  # the discard port: nothing listens
    with pytest.raises(Unavailable) as caught:
        client.get(SHOPS_PATH)
    assert str(caught.value) == (
        f"{SHOPS_PATH}: no usable answer after 2 attempt(s) (last: request failed (ConnectError))"
    )
