"""Fixtures of the fetch tests: the fake Open API server, credentials, a clock that never waits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_tiktok import APP_KEY, APP_SECRET, FIRST_ACCESS, FIRST_REFRESH, FakeTikTok, running

from cs_metrics.fetch import client as client_module
from cs_metrics.fetch.client import Client, Clock, Credentials, Settings


class FakeClock(Clock):
    """Real time, but waits are recorded instead of slept (backoff and pacing cost nothing)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        super().__init__(now=time.time, sleep=self.waits.append, jitter=lambda: 0.5)


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok()


@pytest.fixture
def base(fake: FakeTikTok) -> Iterator[str]:
    with running(fake) as url:
        yield url


def write_credentials(path: Path, expire_in: int | None = None) -> Path:
    """A credentials file as the token endpoints return them (access token valid for a day)."""
    now = int(time.time())
    document = {
        "access_token": FIRST_ACCESS,
        "access_token_expire_in": now + 86400 if expire_in is None else expire_in,
        "refresh_token": FIRST_REFRESH,
        "refresh_token_expire_in": now + 30 * 86400,
    }
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    return path


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    return write_credentials(tmp_path / "tokens.json")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock for every client made during the test (also the CLI's)."""
    shared = FakeClock()
    monkeypatch.setattr(client_module, "Clock", lambda: shared)
    return shared


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOK_APP_KEY", APP_KEY)
    monkeypatch.setenv("TIKTOK_APP_SECRET", APP_SECRET)


def settings_for(base: str, **kw: object) -> Settings:
    """Settings for the fake server: no pacing, a short timeout."""
    values: dict[str, object] = {
        "api_base": base,
        "auth_base": base,
        "timeout": 2.0,
        "requests_per_second": 0,
        "attempts": 4,
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_client(base: str, credentials: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    """A client of the fake server (keyword arguments change its settings)."""

    def make(**kw: object) -> Client:
        return Client(
            APP_KEY, APP_SECRET, Credentials.load(credentials), settings_for(base, **kw), clock
        )

    return make
