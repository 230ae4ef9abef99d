"""Helpers of the fetch tests: a clock that never waits, credentials files, client settings."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fake_tiktok import FIRST_ACCESS, FIRST_REFRESH

from cs_metrics.fetch.client import Clock, Settings


class FakeClock(Clock):
    """Real time, but waits are recorded instead of slept (backoff and pacing cost nothing)."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        super().__init__(now=time.time, sleep=self.waits.append, jitter=lambda: 0.5)


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
