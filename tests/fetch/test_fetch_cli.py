"""`cs-metrics fetch tiktok` end to end: fetch, fetch again, then compute and weekly on the store
give the metrics of the server's ground truth; each exit status with its message."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fake_tiktok import APP_KEY, APP_SECRET, SECRETS, FakeTikTok
from fetch_helpers import FakeClock, write_credentials
from typer.testing import CliRunner

from cs_metrics.cli.app import app
from cs_metrics.fetch.performance import tiktok_figures
from cs_metrics.fetch.state import complete_until
from cs_metrics.importers.common import ImportSummary
from cs_metrics.importers.tiktok_api import api_messages

pytest_plugins = ["fetch_fixtures"]  # the fake server's fixtures (tests/conftest.py is shared)

runner = CliRunner()
UNTIL = "2026-11-23T00:00:00Z"
LATER = "2026-11-26T12:00:00Z"
WEEK = ("2026-11-16", "2026-11-22")


def fetch(base: str, store: Path, credentials: Path, *extra: str):  # type: ignore[no-untyped-def]
    args = ["fetch", "tiktok", "--store", str(store), "--credentials", str(credentials)]
    args += ["--api-base", base, "--auth-base", base, "--rate", "1000", *extra]
    return runner.invoke(app, args)


def truth_folder(fake: FakeTikTok, store: Path, folder: Path, cutoff: str) -> Path:
    """The server's data up to `cutoff` as a plain data folder (messages converted by the
    importer, the store's shops, ratings from the rated sessions)."""
    limit = pd.Timestamp(cutoff).timestamp()
    pages = [
        {
            "shop_id": s,
            "conversation_id": c,
            "messages": [m for m in ms if m["create_time"] <= limit],
        }
        for (s, c), ms in fake.by_conversation.items()
    ]
    folder.mkdir()
    api_messages(pages, ImportSummary("truth")).to_parquet(folder / "messages.parquet")
    shops = pd.read_csv(store / "shops.csv", dtype=str)
    shops.drop(columns="cipher").to_csv(folder / "shops.csv", index=False)
    sessions = fake.sessions.loc[fake.sessions["start_time"] <= limit]
    rate_times = sessions["satisfaction"].map(lambda s: s["rate_time"])
    pd.DataFrame(
        {
            "shop_id": sessions["shop_id"],
            "conversation_id": sessions["conversation_id"],
            "rating": sessions["satisfaction"].map(lambda s: s["score"]),
            "rated_at": pd.to_datetime(rate_times, unit="s", utc=True),
        }
    ).to_parquet(folder / "ratings.parquet")
    return folder


def sent_by(messages: list[dict[str, object]], limit: float) -> list[dict[str, object]]:
    return [m for m in messages if float(m["create_time"]) <= limit]  # type: ignore[arg-type]


def metrics(folder: Path, cutoff: str) -> list[dict[str, object]]:
    args = ["compute", "--data", str(folder), "--start", WEEK[0], "--end", WEEK[1]]
    result = runner.invoke(app, [*args, "--cutoff", cutoff, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["shops"]


@pytest.mark.usefixtures("env", "clock")
def test_fetch_then_fetch_again_then_compute_and_weekly_give_the_truth(
    fake: FakeTikTok, base: str, credentials: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())
    first = fetch(base, store, credentials, "--until", UNTIL)
    assert first.exit_code == 0, first.output
    assert "complete until 2026-11-23T00:00:00+00:00" in first.stdout
    fake.visible_until = int(pd.Timestamp(LATER).timestamp())
    second = fetch(base, store, credentials, "--until", LATER)
    assert second.exit_code == 0, second.output
    assert fake.violations == []
    assert complete_until(store) == pd.Timestamp(LATER)

    expected = metrics(truth_folder(fake, store, tmp_path / "truth", LATER), LATER)
    got = metrics(store, LATER)
    assert got == expected
    assert sum(s["chats"] for s in got) > 50 and sum(s["ratings"] for s in got) > 5

    out = tmp_path / "out"
    args = ["weekly", "--data", str(store), "--out", str(out), "--as-of", "2026-11-23"]
    weekly = runner.invoke(app, [*args, "--cutoff", LATER, "--no-report"])
    assert weekly.exit_code == 0, weekly.output
    stored = json.loads((out / "2026-11-23" / "metrics.json").read_text())["shops"]
    assert [s["response_rate_12h"] for s in stored] == [s["response_rate_12h"] for s in got]

    days = [dt.date.fromisoformat(d) for d in WEEK]
    figures = tiktok_figures(store, ["7495000000000000001", "nope"], *days)
    assert figures["days"].tolist() == [7, 0]
    days = [d for d in fake.performance["7495000000000000001"] if WEEK[0] <= d["date"] <= WEEK[1]]
    mean = sum(float(d["response_rate"]) for d in days) / 7
    assert figures["response_rate"].iloc[0] == pytest.approx(mean)


@pytest.mark.usefixtures("env")
def test_with_every_transient_fault_at_once_the_fetch_is_complete_and_exact(
    fake: FakeTikTok, base: str, credentials: Path, tmp_path: Path, clock: FakeClock
) -> None:
    """429 with Retry-After, 500, a slow answer, an expired token, malformed JSON and a
    duplicated page, all in one run: exit 0, every message once, the waits as the server asked."""
    store = tmp_path / "store"
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())

    def nth(path_end: str, n: int):  # type: ignore[no-untyped-def]
        return lambda r: r.path.endswith(path_end) and r.number >= n

    fake.inject("429", nth("/messages", 10), retry_after="7")
    fake.inject("500", nth("/conversations", 1))
    fake.inject("slow", nth("/messages", 30), delay=0.6)
    fake.inject("expired_token", nth("/messages", 40))
    fake.inject("malformed", nth("/messages", 50))
    fake.inject(
        "duplicate_page", lambda r: r.path.endswith("/messages") and "page_token" in r.params
    )
    fake.inject("500", nth("/sessions/search", 1))
    result = fetch(base, store, credentials, "--until", UNTIL, "--timeout", "0.3")
    assert result.exit_code == 0, result.output
    assert all(f.times == 0 for f in fake.faults), "a fault never fired"
    assert fake.violations == []
    assert 7.0 in clock.waits
    table = pd.read_parquet(store / "messages")
    assert not table.duplicated(["shop_id", "message_id"]).any()
    truth = fake.truth(pd.Timestamp(UNTIL))
    since = pd.Timestamp("2026-11-08T00:00Z")
    expected = set(truth.loc[truth["sent_at"] >= since, "message_id"])
    assert set(table.loc[table["sent_at"] >= since, "message_id"]) == expected
    assert not any(s in result.output for s in (*SECRETS, "access-1", "refresh-1"))


@pytest.mark.usefixtures("env", "clock")
def test_no_access_to_ratings_or_figures_is_a_note_not_a_failure(
    fake: FakeTikTok, base: str, credentials: Path, tmp_path: Path
) -> None:
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())
    fake.inject("no_access", lambda r: "/202407/" in r.path, times=99)
    shops = ["--shop", "7495000000000000001", "--shop", "7495000000000000002"]
    result = fetch(base, tmp_path / "store", credentials, "--until", UNTIL, *shops)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Search Sessions (ratings) not fetched") == 2
    assert "needs TikTok's approval" in result.stdout


@pytest.mark.usefixtures("clock")
def test_missing_app_key_is_a_bad_invocation(
    base: str, credentials: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIKTOK_APP_KEY", raising=False)
    monkeypatch.setenv("TIKTOK_APP_SECRET", APP_SECRET)
    result = fetch(base, tmp_path / "store", credentials)
    assert result.exit_code == 2
    assert result.stderr == (
        "cs-metrics: error: set TIKTOK_APP_KEY and TIKTOK_APP_SECRET to the app's key and secret\n"
    )


@pytest.mark.usefixtures("env", "clock")
def test_an_api_base_that_is_not_a_url_is_a_bad_invocation(
    credentials: Path, tmp_path: Path
) -> None:
    result = fetch("open-api.tiktokglobalshop.com", tmp_path / "store", credentials)
    assert result.exit_code == 2
    assert result.stderr == (
        "cs-metrics: error: --api-base: expected an http(s):// URL, got "
        "'open-api.tiktokglobalshop.com'\n"
    )


@pytest.mark.usefixtures("env", "clock")
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "credentials file not found"),
        ("{not json", "not a readable JSON credentials file (JSONDecodeError)"),
        ('{"access_token": "x"}', "missing access_token_expire_in, refresh_token"),
    ],
    ids=["missing", "not-json", "missing-keys"],
)
def test_an_unusable_credentials_file_is_a_bad_invocation(
    base: str, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "tokens.json"
    if content is not None:
        path.write_text(content)
    result = fetch(base, tmp_path / "store", path)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.usefixtures("env", "clock")
def test_an_expired_refresh_token_is_a_bad_invocation_naming_the_fix(
    base: str, tmp_path: Path
) -> None:
    path = write_credentials(tmp_path / "tokens.json", expire_in=0)
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "refresh_token_expire_in": 1}))
    result = fetch(base, tmp_path / "store", path)
    assert result.exit_code == 2
    assert "the refresh token has expired; authorise the app again" in result.stderr


@pytest.mark.usefixtures("env", "clock")
def test_an_expired_access_token_is_refreshed_and_written_back_0600(
    fake: FakeTikTok, base: str, tmp_path: Path
) -> None:
    path = write_credentials(tmp_path / "tokens.json", expire_in=0)
    path.chmod(0o644)
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())
    one = ["--shop", "7495000000000000003"]
    result = fetch(base, tmp_path / "store", path, "--until", UNTIL, "--no-extras", *one)
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text())["access_token"] == "access-1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not any(s in result.output for s in (*SECRETS, "access-1", "refresh-1"))


@pytest.mark.usefixtures("env", "clock")
def test_a_partial_fetch_exits_4_naming_what_is_missing(
    fake: FakeTikTok, base: str, credentials: Path, tmp_path: Path
) -> None:
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())
    fake.inject("error_page", lambda r: r.path.endswith("/conversations/3003/messages"), times=99)
    result = fetch(base, tmp_path / "store", credentials, "--until", UNTIL, "--no-extras")
    assert result.exit_code == 4
    assert result.stderr.splitlines() == [
        "missing: shop 7495000000000000003: conversation 3003: /customer_service/202309/"
        "conversations/3003/messages: API error 36009010 (Conversation data unavailable)",
        "cs-metrics: incomplete: 1 item(s) could not be fetched (named above); everything "
        "fetched is kept, and the next run resumes",
    ]
    assert (tmp_path / "store" / "messages").is_dir()


@pytest.mark.usefixtures("env", "clock")
def test_no_access_to_the_customer_service_api_exits_4_saying_so(
    fake: FakeTikTok, base: str, credentials: Path, tmp_path: Path
) -> None:
    fake.inject("no_access", lambda r: "/customer_service/" in r.path, times=999)
    result = fetch(base, tmp_path / "store", credentials, "--until", UNTIL)
    assert result.exit_code == 4
    assert result.stderr.count("needs TikTok's approval") == 3


@pytest.mark.slow
def test_the_installed_command_fetches_in_a_subprocess(
    fake: FakeTikTok, base: str, credentials: Path, tmp_path: Path
) -> None:
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())
    env = {**os.environ, "TIKTOK_APP_KEY": APP_KEY, "TIKTOK_APP_SECRET": APP_SECRET}
    argv = [sys.executable, "-m", "cs_metrics", "fetch", "tiktok", "--store", str(tmp_path / "s")]
    argv += ["--credentials", str(credentials), "--api-base", base, "--auth-base", base]
    argv += ["--until", UNTIL, "--rate", "1000", "--no-extras"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "complete until 2026-11-23T00:00:00+00:00" in done.stdout


@pytest.mark.slow
def test_a_fetch_killed_mid_run_resumes_and_loses_nothing(
    fake: FakeTikTok, base: str, credentials: Path, tmp_path: Path
) -> None:
    """SIGKILL half way (no clean-up at all), then the same command again: exit 0, every message
    once, the conversations already written not fetched again."""
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())
    store = tmp_path / "store"
    env = {**os.environ, "TIKTOK_APP_KEY": APP_KEY, "TIKTOK_APP_SECRET": APP_SECRET}
    argv = [sys.executable, "-m", "cs_metrics", "fetch", "tiktok", "--store", str(store)]
    argv += ["--credentials", str(credentials), "--api-base", base, "--auth-base", base]
    argv += ["--until", UNTIL, "--rate", "40", "--no-extras"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(fake.requests) < 60 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.wait()
    state = json.loads((store / "sync_state.json").read_text())
    done = {c for s in state["shops"].values() if s["run"] for c in s["run"]["done"]}
    finished = [k for k, s in state["shops"].items() if s["complete_until"]]
    assert (done or finished) and len(finished) < 3, "the kill did not land half way"
    first = len(fake.requests)
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming the sync" in again.stdout
    refetched = {
        r.path.split("/")[-2] for r in fake.requests[first:] if r.path.endswith("/messages")
    }
    assert not refetched & done
    table = pd.read_parquet(store / "messages")
    assert not table.duplicated(["shop_id", "message_id"]).any()
    truth = fake.truth(pd.Timestamp(UNTIL))
    since = pd.Timestamp("2026-11-08T00:00Z")
    expected = set(truth.loc[truth["sent_at"] >= since, "message_id"])
    assert set(table.loc[table["sent_at"] >= since, "message_id"]) == expected
