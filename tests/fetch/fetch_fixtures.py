"""Fixtures of the fetch tests (a plugin: a conftest.py here would shadow tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_tiktok import APP_KEY, APP_SECRET, FakeTikTok, running
from fetch_helpers import FakeClock, settings_for, write_credentials

from cs_metrics.fetch import client as client_module
from cs_metrics.fetch.client import Client, Credentials


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok()


@pytest.fixture
def base(fake: FakeTikTok) -> Iterator[str]:
    with running(fake) as url:
        yield url


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


@pytest.fixture
def make_client(base: str, credentials: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    """A client of the fake server (keyword arguments change its settings)."""

    def make(**kw: object) -> Client:
        return Client(
            APP_KEY, APP_SECRET, Credentials.load(credentials), settings_for(base, **kw), clock
        )

    return make
