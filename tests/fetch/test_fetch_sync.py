"""A sync against the fake Open API: what the store holds equals the server's ground truth, after
a first sync, an incremental one, an interrupted one resumed, and with each fault injected."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from fake_tiktok import SECRETS, FakeTikTok, Request
from fetch_helpers import FakeClock

from cs_metrics.fetch import state as state_module
from cs_metrics.fetch.client import Client, CredentialsError, FetchError
from cs_metrics.fetch.outcome import Options, SyncReport
from cs_metrics.fetch.state import complete_until, read_state
from cs_metrics.fetch.sync import default_since, store_lock, sync
from cs_metrics.importers.tiktok_api import import_tiktok_api

pytest_plugins = ["fetch_fixtures"]  # the fake server's fixtures (tests/conftest.py is shared)

UNTIL = pd.Timestamp("2026-11-23T00:00Z")
"""The Monday the first sync runs (the world holds nothing later yet)."""
LATER = pd.Timestamp("2026-11-26T12:00Z")
SINCE = default_since(UNTIL, 7)
ONE = ("7495000000000000001",)
"""The shop the fault tests fetch (one shop keeps them quick; the rest are alike)."""


def stored(store: Path) -> pd.DataFrame:
    """The store's messages as the readers see them (partition columns from the path)."""
    table = ds.dataset(store / "messages", format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas()
    frame["shop_id"] = frame["shop_id"].astype(str)
    return frame


def key(frame: pd.DataFrame) -> pd.DataFrame:
    """The comparable part of a messages frame, in one order."""
    out = frame[["shop_id", "conversation_id", "message_id", "sent_at"]].astype(
        {"shop_id": str, "conversation_id": str, "message_id": str}
    )
    out["sent_at"] = pd.to_datetime(out["sent_at"], utc=True).astype("datetime64[us, UTC]")
    return out.sort_values(["shop_id", "message_id"]).reset_index(drop=True)


def assert_store_matches(
    store: Path,
    fake: FakeTikTok,
    since: pd.Timestamp,
    until: pd.Timestamp,
    shops: tuple[str, ...] = (),
) -> None:
    """Every message of [since, until] (of `shops`, default all) stored once, nothing after
    until, nothing invented."""
    got = stored(store)
    assert not got.duplicated(["shop_id", "message_id"]).any(), "a message is stored twice"
    assert got["sent_at"].max() <= until
    assert set(got["message_id"]) <= set(fake.truth()["message_id"])
    truth = fake.truth(until)
    truth = truth.loc[truth["shop_id"].isin(shops)] if shops else truth
    expected = truth.loc[truth["sent_at"] >= since]
    pd.testing.assert_frame_equal(key(got.loc[got["sent_at"] >= since]), key(expected))
    assert fake.violations == []


def run(client: Client, store: Path, until: pd.Timestamp = UNTIL, **kw: object) -> SyncReport:
    return sync(client, store, Options(until=until, **kw))  # type: ignore[arg-type]


def message_requests(fake: FakeTikTok, start: int = 0) -> list[Request]:
    return [r for r in fake.requests[start:] if r.path.endswith("/messages")]


def test_first_sync_stores_every_message_since_the_horizon_and_the_shops(
    fake: FakeTikTok, make_client, tmp_path: Path
) -> None:
    fake.visible_until = int(UNTIL.timestamp())
    report = run(make_client(), tmp_path / "store")
    assert report.complete, report.lines()
    assert_store_matches(tmp_path / "store", fake, SINCE, UNTIL)
    shops = pd.read_csv(tmp_path / "store" / "shops.csv", dtype=str)
    assert shops[["market", "timezone"]].to_numpy().tolist() == [
        ["SG", "Asia/Singapore"],
        ["MY", "Asia/Kuala_Lumpur"],
        ["GB", "Europe/London"],
    ]
    assert complete_until(tmp_path / "store") == UNTIL
    assert pd.Timestamp("2026-11-08T00:00Z") == SINCE  # Monday 16 Nov, less a day, less 7 days
    # Long-lived conversations are paged back only as far as the horizon, and the listing of
    # conversations stops at the first one older than it.
    truth = fake.truth(UNTIL)
    pages_all = truth.groupby("conversation_id").size().floordiv(10).add(1).sum()
    assert len(message_requests(fake)) < pages_all
    kept = stored(tmp_path / "store")
    assert kept["sent_at"].min() < SINCE  # the page that crosses the horizon is kept whole
    assert kept["sent_at"].min() > truth["sent_at"].min()  # older pages were never asked for
    listed = [r for r in fake.requests if r.path.endswith("/conversations")]
    assert {r.params["page_size"] for r in listed} == {"20"}
    # The same pages saved as a dump and imported give the same rows: one conversion for both.
    dump = tmp_path / "dump"
    dump.mkdir()
    lines = [
        json.dumps(
            {
                "shop_id": s,
                "conversation_id": c,
                "response": {
                    "code": 0,
                    "data": {"messages": [m for m in ms if m["create_time"] <= UNTIL.timestamp()]},
                },
            }
        )
        for (s, c), ms in fake.by_conversation.items()
    ]
    (dump / "pages.jsonl").write_text("\n".join(lines))
    import_tiktok_api(dump, tmp_path / "imported")
    imported = pd.read_parquet(tmp_path / "imported" / "messages.parquet")
    got = stored(tmp_path / "store")
    columns = ["message_id", "sender_role", "message_type", "content", "sender_id"]
    both = got[columns].merge(imported[columns], on="message_id", suffixes=("", "_import"))
    assert len(both) == len(got)
    for column in columns[1:]:
        assert both[column].astype(str).tolist() == both[f"{column}_import"].astype(str).tolist()


def test_incremental_sync_fetches_only_what_is_new(
    fake: FakeTikTok, make_client, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    fake.visible_until = int(UNTIL.timestamp())
    run(make_client(), store)
    first_requests = len(fake.requests)
    fake.visible_until = int(LATER.timestamp())
    report = run(make_client(), store, LATER)
    assert report.complete, report.lines()
    assert_store_matches(store, fake, SINCE, LATER)
    assert len(fake.requests) - first_requests < first_requests * 0.7
    assert complete_until(store) == LATER
    again = run(make_client(), store, LATER)
    assert again.messages_added == 0 and again.conversations == 0


def test_an_interrupted_sync_resumes_where_it_stopped(
    fake: FakeTikTok, make_client, tmp_path: Path
) -> None:
    """The server goes down half way: the run keeps what it wrote and names what is missing;
    the next run fetches only the conversations not yet on disk, then the rest."""
    store = tmp_path / "store"
    fake.visible_until = int(UNTIL.timestamp())
    down = fake.inject("down", lambda r: r.number > 60, times=10_000)
    report = run(make_client(attempts=2), store, batch_conversations=5)
    assert not report.complete
    assert any("conversation" in m.what for m in report.missing)
    state = read_state(store)
    pending = [s.run for s in state.shops.values() if s.run]
    assert pending and pending[0].done
    assert complete_until(store) == SINCE
    done = {c for r in pending for c in r.done}
    partial = stored(store)
    assert set(partial["conversation_id"]) >= done
    down.times = 0
    start = len(fake.requests)
    resumed = run(make_client(), store)
    assert resumed.complete, resumed.lines()
    assert any("resuming" in n for n in resumed.notes)
    again = {r.path.split("/")[-2] for r in message_requests(fake, start)}
    assert not again & done, "a conversation already on disk was fetched again"
    assert_store_matches(store, fake, SINCE, UNTIL)
    assert complete_until(store) == UNTIL


def test_a_crash_between_data_and_state_duplicates_nothing(
    fake: FakeTikTok, make_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state is written after the data: a crash in between leaves messages the state does
    not know of; the next run fetches them again and the store keeps each once."""
    store = tmp_path / "store"
    fake.visible_until = int(UNTIL.timestamp())
    real = state_module.write_state
    calls = {"n": 0}

    def crash_on_third(data_dir: Path, state: state_module.SyncState) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(data_dir, state)

    monkeypatch.setattr("cs_metrics.fetch.sync.write_state", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(make_client(), store, batch_conversations=4, shops=ONE)
    monkeypatch.setattr("cs_metrics.fetch.sync.write_state", real)
    assert len(stored(store)) > 0
    assert run(make_client(), store, shops=ONE).complete
    assert_store_matches(store, fake, SINCE, UNTIL, ONE)


def test_a_conversation_that_moves_up_while_the_listing_is_paged_is_not_missed(
    fake: FakeTikTok, make_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message arriving during the listing moves its conversation to the front, so the pages
    after it shift and it would be passed over; the listing is read again until nothing is new."""
    monkeypatch.setattr("cs_metrics.fetch.sync.CONVERSATION_PAGE_SIZE", 5)
    fake.visible_until = int(UNTIL.timestamp())
    shop = "7495000000000000001"
    ranked = (
        fake.truth(UNTIL).query("shop_id == @shop").groupby("conversation_id")["sent_at"].max()
    ).sort_values(ascending=False)
    mover = str(ranked.index[12])

    def arrive(server: FakeTikTok) -> None:
        server.add_message(shop, mover, int(UNTIL.timestamp()))

    second_page = page_of("/conversations")
    fake.inject(
        "call", lambda r: second_page(r) and r.params["shop_cipher"].endswith("0001"), action=arrive
    )
    report = run(make_client(), tmp_path / "store", shops=ONE)
    assert report.complete, report.lines()
    assert mover in set(stored(tmp_path / "store")["conversation_id"])
    assert_store_matches(tmp_path / "store", fake, SINCE, UNTIL, ONE)


def page_of(path_end: str, token: bool = True):  # type: ignore[no-untyped-def]
    """Requests of a path ending so, past the first page when `token`."""
    return lambda r: r.path.endswith(path_end) and (bool(r.params.get("page_token")) or not token)


@pytest.mark.parametrize(
    ("kind", "when", "times", "settings"),
    [
        ("429", page_of("/messages"), 3, {}),
        ("500", page_of("/conversations", token=False), 2, {}),
        ("slow", page_of("/messages"), 1, {"timeout": 0.2}),
        ("expired_token", page_of("/messages"), 1, {}),
        ("malformed", page_of("/messages"), 2, {}),
        ("duplicate_page", page_of("/messages"), 1, {}),
    ],
    ids=["429-retry-after", "500", "slow", "expired-token", "malformed-json", "duplicated-page"],
)
def test_a_fault_loses_and_duplicates_nothing(
    fake: FakeTikTok,
    make_client,
    clock: FakeClock,
    tmp_path: Path,
    credentials: Path,
    kind: str,
    when,
    times: int,
    settings: dict[str, object],
) -> None:
    store = tmp_path / "store"
    fake.visible_until = int(UNTIL.timestamp())
    fault = fake.inject(kind, when, times=times, delay=0.5)
    report = run(make_client(**settings), store, shops=ONE)
    assert fault.times == 0, "the fault never fired"
    assert report.complete, report.lines()
    assert_store_matches(store, fake, SINCE, UNTIL, ONE)
    if kind == "429":
        # Retry-After: 2 outlasts the first two backoffs (0.75 s, 1.5 s), not the third (3 s).
        assert clock.waits == [2.0, 2.0, 3.0]
    if kind == "500":
        assert clock.waits == [0.75, 1.5]  # 1 s, then 2 s, times the jitter (0.75 here)
    if kind == "expired_token":
        tokens = json.loads(credentials.read_text())
        assert tokens["access_token"] == "access-1"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_an_error_page_inside_a_conversation_is_named_and_the_next_run_fetches_it(
    fake: FakeTikTok, make_client, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    fake.visible_until = int(UNTIL.timestamp())
    target = "/conversations/1000/messages"
    fault = fake.inject("error_page", page_of(target), times=10_000)
    report = run(make_client(), store)
    assert not report.complete
    lines = [m.line() for m in report.missing]
    assert lines == [
        "missing: shop 7495000000000000001: conversation 1000: /customer_service/202309/"
        "conversations/1000/messages: API error 36009010 (Conversation data unavailable)"
    ]
    assert "1000" not in set(stored(store)["conversation_id"])
    # Shop 1 is known complete up to nothing yet: it holds the store back; the others are done.
    assert complete_until(store) == SINCE
    assert complete_until(store, ["7495000000000000002", "7495000000000000003"]) == UNTIL
    assert read_state(store).shops["7495000000000000001"].complete_until is None
    fault.times = 0
    assert run(make_client(), store).complete
    assert_store_matches(store, fake, SINCE, UNTIL)


def test_a_shop_without_customer_service_access_is_named_and_the_others_are_fetched(
    fake: FakeTikTok, make_client, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    fake.visible_until = int(UNTIL.timestamp())
    fake.inject("no_access", lambda r: r.params.get("shop_cipher") == "ROW_cipher_0002", times=99)
    report = run(make_client(), store)
    assert [m.shop_id for m in report.missing] == ["7495000000000000002"]
    assert "needs TikTok's approval" in report.missing[0].reason
    assert set(stored(store)["shop_id"]) == {"7495000000000000001", "7495000000000000003"}


def test_a_deauthorised_shop_is_named_and_its_stored_data_kept(
    fake: FakeTikTok, make_client, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    fake.visible_until = int(UNTIL.timestamp())
    run(make_client(), store)
    fake.authorized.discard("7495000000000000003")
    report = run(make_client(), store, LATER)
    assert [m.line() for m in report.missing] == [
        "missing: shop 7495000000000000003: the shop: not authorised for this app "
        "(de-authorised, or a wrong id); its stored data is kept"
    ]
    assert "7495000000000000003" in set(stored(store)["shop_id"])
    assert "7495000000000000003" in set(pd.read_csv(store / "shops.csv", dtype=str)["shop_id"])
    assert complete_until(store) == LATER  # its data stops; it does not hold the others back


def test_a_second_fetch_on_the_same_store_is_refused(make_client, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with store_lock(store.parent), pytest.raises(FetchError, match="another fetch"):
        run(make_client(), store.parent)


def test_a_refused_refresh_token_stops_with_a_credentials_error(
    fake: FakeTikTok, make_client, tmp_path: Path
) -> None:
    fake.refresh_refused = True
    fake.inject("expired_token", page_of("/shops", token=False))
    with pytest.raises(CredentialsError) as caught:
        run(make_client(), tmp_path / "store")
    assert "refresh token was refused" in str(caught.value)
    assert caught.value.exit_code == 2
    assert not any(s in str(caught.value) for s in SECRETS)


def test_no_secret_reaches_a_log_an_error_or_the_store(
    fake: FakeTikTok, make_client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    store = tmp_path / "store"
    fake.inject("expired_token", page_of("/messages"))
    fake.inject("500", page_of("/conversations", token=False))
    fake.inject("error_page", page_of("/conversations/1001/messages"), times=99)
    report = run(make_client(), store, shops=ONE)
    new = ("access-1", "refresh-1")
    texts = [caplog.text, *report.lines()]
    texts += [p.read_bytes().decode("latin-1") for p in store.rglob("*") if p.is_file()]
    assert fake.issued == 1
    assert not [s for s in (*SECRETS, *new) if any(s in t for t in texts)]
