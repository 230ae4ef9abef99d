"""Importers: TikTok Shop Customer Service API dumps and the IBM Twitter customer-care data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiktok_dump import tiktok_dump_from_tables

from cs_metrics.errors import InputError, UsageError
from cs_metrics.generate import GeneratorConfig, generate, write_tables
from cs_metrics.importers.ibm_twitter import import_ibm_twitter, snowflake_instants
from cs_metrics.importers.tiktok_api import (
    content_text,
    import_tiktok_api,
    message_roles,
    visible_flags,
)
from cs_metrics.pipeline import evaluate, load
from cs_metrics.policy import Policy
from paths import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "tiktok_api"
SHARED = ROOT.parent / "shared"
IBM = SHARED / "real_data" / "ibm_twitter_customer_care" / "test.json"
SHOP = "7495102938475610001"
SPEC_COLUMNS = ["shop_id", "conversation_id", "message_id", "sender_role", "sent_at"]
T0 = pd.Timestamp("2025-11-19 00:00:00", tz="UTC")


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Path, object]:
    """The fixture dump imported into a fresh data folder."""
    data = tmp_path / "data"
    return data, import_tiktok_api(FIXTURE, data)


# --- TikTok: the fixture dump ------------------------------------------------------------------


def test_import_reports_pages_skips_duplicates_and_unknowns(imported) -> None:
    """Five lines: three pages used, an error page and a cut line skipped with their reasons."""
    data, summary = imported
    assert summary.records_read == 5
    assert [(s.line, s.reason) for s in summary.records_skipped] == [
        (3, "API error code 36009004: Invalid access_token."),
        (4, "not JSON"),
    ]
    assert summary.duplicates_dropped == 1
    assert (summary.unknown_roles, summary.unknown_types) == (1, 1)
    assert summary.messages_written == 12
    assert summary.files_written == [data / "messages.parquet", data / "shops.csv"]
    assert sorted(p.name for p in data.iterdir()) == ["messages.parquet", "shops.csv"]


def test_import_maps_each_message_to_a_role_type_and_text(imported) -> None:
    """Platform cards, hidden and unknown messages are system; cards keep the sender's role."""
    data, _ = imported
    messages = pd.read_parquet(data / "messages.parquet")
    got = messages.set_index("message_id")[["sender_role", "message_type", "content"]]
    expected = pd.DataFrame(
        [
            ("7494560200000000001", "system", "buyer_enter_from_product_detail", None),
            ("7494560200000000002", "system", "allocated_service", "Siti (CS) is now serving…"),
            ("7494560200000000003", "buyer", "text", "Hi, is size L still in stock?"),
            ("7494560200000000004", "system", "notification", "Reminder: please reply…"),
            ("7494560200000000005", "system", "text", "note: check warehouse first"),
            ("7494560200000000006", "seller", "coupon_card", None),
            ("7494560200000000007", "buyer", "order_card", None),
            ("7494560200000000008", "auto_reply", "text", "Thanks for your message!…"),
            ("7494560200000000011", "seller", "text", "Hello! Your order has shipped."),
            ("7494560200000000012", "system", "sticker_pack", None),
            ("7494560200000000013", "system", "text", "hi"),
            ("7494560200000000014", "buyer", "text", "where is my parcel"),
        ],
        columns=["message_id", "sender_role", "message_type", "content"],
    ).set_index("message_id")
    columns = ["sender_role", "message_type"]
    assert got.sort_index()[columns].to_dict("index") == expected[columns].to_dict("index")
    # contents: the "content" field of the JSON string, the raw text when not JSON, else missing
    for message_id, text in expected["content"].items():
        value = got.loc[message_id, "content"]
        if pd.isna(text):
            assert pd.isna(value), message_id
        else:
            assert value.startswith(text.rstrip("…")), message_id
    assert str(messages["sent_at"].dtype) == "datetime64[us, UTC]"
    assert messages.loc[messages["message_id"] == "7494560200000000008", "sent_at"].item() == (
        T0 + pd.Timedelta(seconds=7205)
    )
    shops = pd.read_csv(data / "shops.csv", dtype=str)
    assert shops.to_dict("records") == [
        {
            "shop_id": SHOP,
            "name": "Batik Lane Official",
            "market": "MY",
            "timezone": "Asia/Kuala_Lumpur",
        }
    ]


def test_imported_fixture_gives_hand_checked_metrics(imported) -> None:
    """Chat 1 answered by a coupon card after 89 min, chat 2 by the robot after 5 s, chat 3
    pending; the entry card, allocation, notification and hidden note open and close nothing."""
    data, _ = imported
    policy = Policy()
    dataset = load(data, policy)
    assert dataset.counts["messages"].as_dict() == {
        "rows_read": 12,
        "rows_used": 12,
        "rows_quarantined": 0,
        "rows_duplicate": 0,
    }
    result = evaluate(dataset, dt.date(2025, 11, 19), dt.date(2025, 11, 19), policy)
    row = result.metrics.set_index("shop_id").loc[SHOP]
    assert row["timezone"] == "Asia/Kuala_Lumpur"
    assert (row["chats"], row["chats_assessed"], row["chats_pending"]) == (3, 2, 1)
    assert row["chats_responded_12h"] == 2
    assert row["response_rate_12h"] == 1.0
    assert row["first_response_minutes_mean"] == pytest.approx((89 + 5 / 60) / 2)
    chats = result.chats.set_index("first_message_id")
    assert chats.loc["7494560200000000003", "response_message_id"] == "7494560200000000006"
    assert chats.loc["7494560200000000007", "response_message_id"] == "7494560200000000008"
    assert chats.loc["7494560200000000014", "status"] == "pending"


@pytest.mark.parametrize(
    ("role", "kind", "visible", "expected"),
    [
        ("BUYER", "TEXT", "true", "buyer"),
        ("SHOP", "TEXT", "true", "seller"),
        ("CUSTOMER_SERVICE", "IMAGE", "true", "seller"),
        ("ROBOT", "TEXT", "true", "auto_reply"),
        ("SYSTEM", "TEXT", "true", "system"),
        ("BUYER", "ORDER_CARD", "true", "buyer"),
        ("BUYER", "RETURN_REFUND_CARD", "true", "buyer"),
        ("CUSTOMER_SERVICE", "COUPON_CARD", "true", "seller"),
        ("CUSTOMER_SERVICE", "LOGISTICS_CARD", "true", "seller"),
        ("BUYER", "OTHER", "true", "buyer"),
        ("BUYER", "BUYER_ENTER_FROM_LIVE", "true", "system"),
        ("CUSTOMER_SERVICE", "ALLOCATED_SERVICE", "true", "system"),
        ("CUSTOMER_SERVICE", "NOTIFICATION", "true", "system"),
        ("BUYER", "TEXT", "false", "system"),
        ("CUSTOMER_SERVICE", "TEXT", "False", "system"),
        ("BUYER", "TEXT", None, "buyer"),
        ("MODERATOR", "TEXT", "true", "system"),
        (None, "TEXT", "true", "system"),
        ("BUYER", "HOLOGRAM", "true", "system"),
        ("BUYER", None, "true", "system"),
    ],
    ids=lambda v: str(v),
)
def test_message_roles(role: str | None, kind: str | None, visible: str | None, expected: str):
    """Each rule of the role mapping (docs/import.md), one message at a time."""
    got = message_roles(
        pd.Series([role], dtype="string"),
        pd.Series([kind], dtype="string"),
        visible_flags(pd.Series([visible], dtype="object")),
    )
    assert got.tolist() == [expected]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"content": "hello"}', "hello"),
        ('{"url": "https://p16.tiktokcdn.com/x.jpg", "width": 640}', None),
        ("plain words", "plain words"),
        ('"a JSON string"', '"a JSON string"'),
        (None, None),
    ],
    ids=["text", "image", "not-json", "json-non-object", "missing"],
)
def test_content_text(content: str | None, expected: str | None) -> None:
    """The text of a message: the JSON's "content" field, the raw text if not JSON, else none."""
    got = content_text(content)
    assert (pd.isna(got) and expected is None) or got == expected


def test_import_refuses_a_folder_holding_messages_in_another_format(tmp_path: Path) -> None:
    """Two formats of one table would make the folder unusable: stop, write nothing."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "messages.csv").write_text("shop_id\n")
    with pytest.raises(UsageError, match=r"messages\.csv"):
        import_tiktok_api(FIXTURE, data)
    assert sorted(p.name for p in data.iterdir()) == ["messages.csv"]


def test_import_without_dump_pages_is_an_input_error(tmp_path: Path) -> None:
    """A missing folder or one without *.jsonl pages is an input error naming the folder."""
    with pytest.raises(InputError, match="not found"):
        import_tiktok_api(tmp_path / "nowhere", tmp_path / "data")
    with pytest.raises(InputError, match=r"no dump pages"):
        import_tiktok_api(tmp_path, tmp_path / "data")


def test_messages_without_id_or_time_are_written_for_the_loader_to_quarantine(
    tmp_path: Path,
) -> None:
    """Nothing is lost: a message without an id or time reaches the data folder, and loading
    it quarantines the row (SPEC 8); a non-object message entry is counted and left out."""
    raw = tmp_path / "raw"
    raw.mkdir()
    messages = [
        {
            "id": "1",
            "type": "TEXT",
            "content": "{}",
            "create_time": 1763510400,
            "sender": {"role": "BUYER"},
        },
        {"type": "TEXT", "content": "{}", "create_time": 1763510401, "sender": {"role": "BUYER"}},
        {
            "id": "3",
            "type": "TEXT",
            "content": "{}",
            "create_time": "soon",
            "sender": {"role": "SHOP"},
        },
        "not an object",
    ]
    page = {
        "shop_id": "s",
        "conversation_id": "c",
        "response": {"code": 0, "data": {"messages": messages}},
    }
    (raw / "p.jsonl").write_text(json.dumps(page) + "\n")
    summary = import_tiktok_api(raw, tmp_path / "data")
    assert (summary.messages_written, summary.bad_messages) == (3, 3)
    counts = load(tmp_path / "data", Policy()).counts["messages"]
    assert (counts.rows_read, counts.rows_used, counts.rows_quarantined) == (3, 1, 2)


# --- TikTok: the inverse and the round trip ----------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> tuple[GeneratorConfig, dict[str, pd.DataFrame]]:
    config = GeneratorConfig(shops=3, messages=3000, bad_rows=False)
    return config, generate(config)


def test_round_trip_through_an_api_dump_gives_the_same_metrics(generated, tmp_path: Path) -> None:
    """Generated tables -> API dump -> import -> load -> evaluate equals evaluating directly."""
    config, tables = generated
    write_tables(tables, tmp_path / "direct", "parquet")
    tiktok_dump_from_tables(tables["messages"], tmp_path / "raw", page_size=7)
    summary = import_tiktok_api(tmp_path / "raw", tmp_path / "imported")
    others = {name: tables[name] for name in ("ratings", "holiday_mode", "shops")}
    write_tables(others, tmp_path / "imported", "parquet")
    assert summary.records_skipped == []
    assert summary.messages_written == len(tables["messages"])
    policy = Policy()
    end = config.start + dt.timedelta(days=config.days - 1)
    direct = evaluate(load(tmp_path / "direct", policy), config.start, end, policy)
    via_api = evaluate(load(tmp_path / "imported", policy), config.start, end, policy)
    assert direct.metrics["chats"].sum() > 100
    pd.testing.assert_frame_equal(direct.metrics, via_api.metrics)
    order = ["shop_id", "conversation_id", "received_at"]
    pd.testing.assert_frame_equal(
        direct.chats.sort_values(order).reset_index(drop=True),
        via_api.chats.sort_values(order).reset_index(drop=True),
    )


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(page_size=st.integers(1, 60), overlap=st.booleans())
def test_round_trip_keeps_every_message(generated, tmp_path_factory, page_size, overlap) -> None:
    """Whatever the page size, and with every page fetched twice (overlap), the imported
    messages are exactly the generated ones; the repeats are counted as duplicates."""
    _, tables = generated
    messages = tables["messages"].loc[lambda m: m["shop_id"] == m["shop_id"].iloc[0]].head(400)
    folder = tmp_path_factory.mktemp("rt")
    paths = tiktok_dump_from_tables(messages, folder / "raw", page_size=page_size)
    if overlap:
        for path in paths:
            path.write_text(path.read_text() * 2)
    summary = import_tiktok_api(folder / "raw", folder / "data")
    assert summary.duplicates_dropped == (len(messages) if overlap else 0)
    got = pd.read_parquet(folder / "data" / "messages.parquet")
    columns = [*SPEC_COLUMNS, "sender_id", "message_type", "content"]
    key = ["message_id"]
    pd.testing.assert_frame_equal(
        got[columns].sort_values(key).reset_index(drop=True),
        messages[columns].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def test_dump_pages_follow_the_documented_layout(generated, tmp_path: Path) -> None:
    """Each line: shop_id, conversation_id, fetched_at and an API envelope whose pages chain by
    next_page_token / has_more; message objects carry the documented fields."""
    _, tables = generated
    paths = tiktok_dump_from_tables(tables["messages"].head(300), tmp_path, page_size=2)
    records = [json.loads(line) for p in paths for line in p.read_text().splitlines()]
    assert {tuple(r) for r in records} == {("shop_id", "conversation_id", "fetched_at", "response")}
    assert {r["response"]["code"] for r in records} == {0}
    message = records[0]["response"]["data"]["messages"][0]
    assert set(message) == {"id", "index", "type", "content", "create_time", "is_visible", "sender"}
    assert set(message["sender"]) == {"im_user_id", "nickname", "role"}
    assert isinstance(json.loads(message["content"]), dict)
    by_conversation = pd.DataFrame(
        {
            "conversation": [r["conversation_id"] for r in records],
            "has_more": [r["response"]["data"]["has_more"] for r in records],
        }
    ).groupby("conversation")["has_more"]
    assert (by_conversation.last() == False).all()  # noqa: E712 (a pandas comparison)
    assert by_conversation.apply(lambda s: s.iloc[:-1].all()).all()


def test_dump_needs_time_zone_aware_timestamps(tmp_path: Path) -> None:
    """Naive or text sent_at values are refused: their instant depends on a shop's zone."""
    naive = pd.DataFrame(
        {
            "shop_id": ["s"],
            "conversation_id": ["c"],
            "message_id": ["m"],
            "sender_role": ["buyer"],
            "sent_at": [pd.Timestamp("2026-11-16 10:00")],
        }
    )
    with pytest.raises(UsageError, match="time-zone-aware"):
        tiktok_dump_from_tables(naive, tmp_path)


# --- IBM Twitter -------------------------------------------------------------------------------


def _conversation(session: str, company: str, dialog: list[dict], final_id: str) -> dict:
    return {
        "dialogHeader": {"company": company, "sessionID": session},
        "dialogContent": dialog,
        "agentURL": {"tweet_ID": final_id, "url_utterance": f"@alice_w see {company} docs"},
    }


TWEETS = [
    _conversation(
        "s1",
        "AppleSupport",
        [
            {
                "client": "Alice_W",
                "datetime": "2019-08-09T01:35:27.000Z",
                "message": "@AppleSupport @bob_k iTunes is down",
                "tweet_ID": "1159639294815952897",
            },
            {
                "agent": "AmazonHelp",
                "datetime": "2019-08-09T01:40:00.000Z",
                "message": "@alice_w ask the maker",
                "tweet_ID": "1159640440838504448",
            },
        ],
        "1159663591945068549",
    ),
    _conversation(
        "s2",
        "AppleSupport",
        [
            {
                "client": "alice_w",
                "datetime": "2019-08-09T01:35:27.000Z",
                "message": "@AppleSupport iTunes is down",
                "tweet_ID": "1159639294815952897",
            },
            {
                "client1": "bob_k",
                "datetime": "2019-08-09T01:56:06.000Z",
                "message": "@alice_w ditto",
                "tweet_ID": "1159644492359593985",
            },
        ],
        "1159659165956153345",
    ),
]


def test_twitter_import_pseudonymises_handles_with_the_key(tmp_path: Path) -> None:
    """Handles (and @mentions of them) become user_<hash> under the key, case-insensitively;
    the same key gives the same pseudonyms; no handle remains; company accounts stay."""
    source = tmp_path / "tweets.json"
    source.write_text(json.dumps(TWEETS))
    first = import_ibm_twitter(source, tmp_path / "a", key="secret-1")
    import_ibm_twitter(source, tmp_path / "b", key="secret-1")
    import_ibm_twitter(source, tmp_path / "c", key="secret-2")
    a, b, c = (pd.read_parquet(tmp_path / x / "messages.parquet") for x in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert set(a["sender_id"]) & set(c["sender_id"]) == {"AppleSupport", "AmazonHelp"}
    text = " ".join(a[["sender_id", "content"]].astype(str).to_numpy().ravel()).lower()
    assert "alice" not in text and "bob_k" not in text
    assert "@applesupport" in text
    alice = a.loc[a["message_id"] == "1159639294815952897", "sender_id"].item()
    assert a.loc[a["content"].str.startswith(f"@{alice}"), "message_id"].tolist() == [
        "1159640440838504448",
        "1159663591945068549",
        "1159644492359593985",
        "1159659165956153345",
    ]
    assert any(note.startswith("1 agent message(s) from another company") for note in first.notes)


def test_twitter_import_without_key_uses_a_random_one(tmp_path: Path) -> None:
    """No fixed default salt: two imports without a key give different pseudonyms."""
    source = tmp_path / "tweets.json"
    source.write_text(json.dumps(TWEETS))
    summary = import_ibm_twitter(source, tmp_path / "a")
    import_ibm_twitter(source, tmp_path / "b")
    a, b = (pd.read_parquet(tmp_path / x / "messages.parquet") for x in "ab")
    assert a.loc[0, "sender_id"] != b.loc[0, "sender_id"]
    assert any("random key" in note for note in summary.notes)


def test_twitter_roles_times_and_duplicates(tmp_path: Path) -> None:
    """client/client1 are buyers, the company's agent a seller, another company's agent system;
    the final reply's time comes from its snowflake id; a tweet in two conversations is kept
    in the first only."""
    source = tmp_path / "tweets.json"
    source.write_text(json.dumps(TWEETS))
    summary = import_ibm_twitter(source, tmp_path / "data", key="k")
    got = pd.read_parquet(tmp_path / "data" / "messages.parquet")
    assert summary.duplicates_dropped == 1
    assert got[["conversation_id", "message_id", "sender_role"]].to_numpy().tolist() == [
        ["s1", "1159639294815952897", "buyer"],
        ["s1", "1159640440838504448", "system"],
        ["s1", "1159663591945068549", "seller"],
        ["s2", "1159644492359593985", "buyer"],
        ["s2", "1159659165956153345", "seller"],
    ]
    final = got.loc[got["message_id"] == "1159663591945068549", "sent_at"].item()
    assert final == pd.Timestamp("2019-08-09 03:12:00.484", tz="UTC")
    shops = pd.read_csv(tmp_path / "data" / "shops.csv", dtype=str, keep_default_na=False)
    assert shops.to_dict("records") == [
        {"shop_id": "AppleSupport", "name": "AppleSupport", "market": "", "timezone": "UTC"}
    ]


def test_snowflake_instants() -> None:
    """A tweet id's time: ms = (id >> 22) + 1288834974657 (the Twitter epoch)."""
    got = snowflake_instants(pd.Series(["1216382480015450112", None]))
    assert got.iloc[0] == pd.Timestamp("2020-01-12 15:32:37.186", tz="UTC")
    assert pd.isna(got.iloc[1])


@pytest.mark.skipif(not IBM.exists(), reason="shared real data not available")
def test_real_ibm_twitter_data_imports_and_evaluates(tmp_path: Path) -> None:
    """The real file: every row accounted for, every company a shop, sane rates, and two
    conversations checked by hand against the raw JSON."""
    raw = json.loads(IBM.read_text())
    companies = sorted({item["dialogHeader"]["company"] for item in raw})
    data = tmp_path / "data"
    summary = import_ibm_twitter(IBM, data, key="test-key")
    assert summary.records_read == 500
    assert summary.duplicates_dropped == 1  # tweet 1159639294815952897 opens two conversations
    assert summary.messages_written == 1139 - 1  # 639 dialog messages + 500 final replies - dup
    policy = Policy()
    dataset = load(data, policy)
    counts = dataset.counts["messages"]
    assert counts.rows_read == summary.messages_written
    assert counts.rows_read == counts.rows_used + counts.rows_quarantined + counts.rows_duplicate
    assert list(dataset.shop_ids) == sorted(companies, key=str)
    result = evaluate(dataset, dt.date(2018, 5, 1), dt.date(2020, 4, 30), policy)
    metrics = result.metrics.set_index("shop_id")
    assert sorted(metrics.index) == sorted(companies)
    assert metrics["chats"].sum() > 0
    assert metrics["response_rate_12h"].between(0, 1).all()
    chats = result.chats.set_index("conversation_id")
    # HP: one customer tweet at 14:50:11, answered by the final reply (tweet 1216382480015450112,
    # snowflake time 15:32:37.186): 42 min 26.186 s; the header's duration says 00:42:26.
    hp = chats.loc["ibaqtlLoCQfkfgMeZuBX"]
    assert hp["received_at"] == pd.Timestamp("2020-01-12 14:50:11", tz="UTC")
    assert hp["response_minutes"] == pytest.approx(42 + 26.186 / 60)
    assert hp["status"] == "on_time"
    # Apple: AmazonHelp answers twice for Amazon, which does not close Apple's chat; Apple's
    # final reply does, after 9 h 58 min 50.83 s (header duration 09:58:50): one chat, on time.
    apple = chats.loc[["LNaliqTKisEA7EnBpdt9"]]
    assert len(apple) == 1
    assert apple["response_minutes"].item() == pytest.approx(9 * 60 + 58 + 50.83 / 60)
    assert apple["buyer_messages"].item() == 4


def test_imports_with_nothing_usable_are_input_errors(tmp_path: Path) -> None:
    """Empty tables and exit 0 would read like a quiet week."""
    listing = tmp_path / "arr.json"
    listing.write_text("[1, 2, 3]")
    with pytest.raises(InputError, match="no conversations"):
        import_ibm_twitter(listing, tmp_path / "tw")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.jsonl").write_text('"not a page"\n')
    with pytest.raises(InputError, match="no usable dump pages"):
        import_tiktok_api(raw, tmp_path / "tt")
    assert not (tmp_path / "tw").exists()
    assert not (tmp_path / "tt").exists()
