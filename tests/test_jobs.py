"""jobs/: the Monday wrapper logs each run, points latest.log at it, passes the status on;
with a TikTok store configured it fetches first (against the fake Open API server of
tests/fetch, a real HTTP server), then evaluates, as the fetch's exit status says."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fake_tiktok import APP_KEY, APP_SECRET, SECRETS, FakeTikTok, running
from fetch_helpers import write_credentials

from paths import ROOT

WRAPPER = ROOT / "jobs" / "cs-metrics-weekly.sh"
UNTIL = "2026-11-23T00:00:00Z"
FETCH_SETTINGS = (
    "CS_METRICS_TIKTOK_STORE",
    "CS_METRICS_TIKTOK_CREDENTIALS",
    "CS_METRICS_FETCH_ARGS",
    "TIKTOK_APP_KEY",
    "TIKTOK_APP_SECRET",
)


def run_wrapper(
    out: Path,
    *args: str,
    data: Path | None = ROOT / "sample_data",
    settings: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CS_METRICS_HOME": str(ROOT), "CS_METRICS_OUT": str(out)}
    for name in ("CS_METRICS_DATA", *FETCH_SETTINGS):
        env.pop(name, None)
    if data is not None:
        env["CS_METRICS_DATA"] = str(data)
    env.update(settings or {})
    return subprocess.run(
        ["bash", str(WRAPPER), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_wrapper_runs_the_week_and_logs_it(tmp_path: Path) -> None:
    run = run_wrapper(tmp_path, "--as-of", "2026-11-23")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "2026-11-23" / "report.html").exists()
    log = (tmp_path / "logs" / "latest.log").read_text()
    assert "cs-metrics weekly --data" in log
    assert log.rstrip().endswith("exit status 0")


def test_wrapper_exits_with_the_jobs_status_and_says_where_the_log_is(tmp_path: Path) -> None:
    run = run_wrapper(tmp_path, "--as-of", "2026-11-24")
    assert run.returncode == 2
    assert "failed with status 2" in run.stderr
    log = (tmp_path / "logs" / "latest.log").read_text()
    assert "is a Tuesday" in log


def test_wrapper_refuses_to_run_without_a_data_folder(tmp_path: Path) -> None:
    """Without CS_METRICS_DATA it would report on the bundled sample shops: exit 2 instead."""
    run = run_wrapper(tmp_path, "--as-of", "2026-11-23", data=None)
    assert run.returncode == 2
    assert run.stderr == (
        "CS_METRICS_DATA is not set: point it at the folder of this week's exports\n"
    )
    assert not (tmp_path / "2026-11-23").exists()


def test_wrapper_passes_on_exit_4_with_the_outcome_in_the_log(tmp_path: Path) -> None:
    """The sample ends on Tue 24 Nov: the week before 30 Nov is not covered (SPEC 6a)."""
    run = run_wrapper(tmp_path, "--as-of", "2026-11-30")
    assert run.returncode == 4
    assert "failed with status 4" in run.stderr
    log = (tmp_path / "logs" / "latest.log").read_text()
    assert "Outcome: 8 shops:" in log
    assert "withheld" in log
    assert log.rstrip().endswith("exit status 4")


def test_timer_runs_on_monday_mornings_and_the_crontab_calls_the_wrapper() -> None:
    timer = (ROOT / "jobs" / "cs-metrics-weekly.timer").read_text()
    assert "OnCalendar=Mon *-*-* 07:30:00" in timer
    assert "Persistent=true" in timer
    service = (ROOT / "jobs" / "cs-metrics-weekly.service").read_text()
    assert "ExecStart=/opt/cs-metrics/jobs/cs-metrics-weekly.sh" in service
    cron = [
        line
        for line in (ROOT / "jobs" / "crontab").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert any(
        line.startswith("30 7 * * 1") and line.endswith("cs-metrics-weekly.sh") for line in cron
    )


# ----------------------------------------------------------------------------- the fetch step


@pytest.fixture
def fake() -> FakeTikTok:
    fake = FakeTikTok()
    fake.visible_until = int(pd.Timestamp(UNTIL).timestamp())
    return fake


@pytest.fixture
def base(fake: FakeTikTok) -> Iterator[str]:
    with running(fake) as url:
        yield url


def fetch_settings(tmp_path: Path, base: str, credentials: Path | None = None) -> dict[str, str]:
    """A store fetched from the fake server up to Mon 23 Nov 00:00 UTC."""
    return {
        "CS_METRICS_TIKTOK_STORE": str(tmp_path / "store"),
        "CS_METRICS_TIKTOK_CREDENTIALS": str(
            credentials or write_credentials(tmp_path / "tokens.json")
        ),
        "CS_METRICS_FETCH_ARGS": f"--api-base {base} --auth-base {base} --until {UNTIL} "
        "--rate 1000",
        "TIKTOK_APP_KEY": APP_KEY,
        "TIKTOK_APP_SECRET": APP_SECRET,
    }


def test_with_a_store_the_wrapper_fetches_then_evaluates_it(
    fake: FakeTikTok, base: str, tmp_path: Path
) -> None:
    """Fetch exit 0, then weekly on the store, cut off where the fetch is complete; one log
    holds both runs; the report sets TikTok's own figures beside ours."""
    out = tmp_path / "out"
    run = run_wrapper(
        out, "--as-of", "2026-11-23", data=None, settings=fetch_settings(tmp_path, base)
    )
    assert run.returncode == 0, run.stderr + (out / "logs" / "latest.log").read_text()
    assert run.stderr == ""
    log = (out / "logs" / "latest.log").read_text()
    fetch_line = log.index("cs-metrics fetch tiktok --store")
    assert log.index("fetch exit status 0") > fetch_line
    assert log.index("cs-metrics weekly --data " + str(tmp_path / "store")) > fetch_line
    assert "cut-off 2026-11-23T00:00:00+00:00: the fetched store is complete up to then" in log
    assert log.rstrip().endswith("exit status 0")
    assert not any(s in log for s in (*SECRETS, "access-1", "refresh-1"))
    assert (out / "2026-11-23" / "tiktok_figures.csv").is_file()
    assert (out / "2026-11-23" / "report.html").read_text().count('<div class="tiktok') == 3
    assert fake.violations == []


def test_a_partial_fetch_still_runs_weekly_and_the_wrapper_exits_4(
    fake: FakeTikTok, base: str, tmp_path: Path
) -> None:
    """One conversation of the GB shop keeps failing: fetch exits 4, weekly runs with the
    store's complete_until (held back by that shop) as its cut-off, and the wrapper exits 4
    saying why."""
    fake.inject("error_page", lambda r: r.path.endswith("/conversations/3003/messages"), times=99)
    out = tmp_path / "out"
    run = run_wrapper(
        out, "--as-of", "2026-11-23", data=None, settings=fetch_settings(tmp_path, base)
    )
    assert run.returncode == 4
    log = (out / "logs" / "latest.log").read_text()
    assert "missing: shop 7495000000000000003: conversation 3003" in log
    assert "fetch exit status 4" in log
    assert "weekly runs on what was fetched, with the store's complete_until as its cut-off" in log
    cutoff = re.search(r"cut-off (\S+): the fetched store is complete up to then", log)
    assert cutoff and pd.Timestamp(cutoff.group(1)) < pd.Timestamp(UNTIL)
    assert "Outcome: 3 shops:" in log
    assert (out / "2026-11-23" / "metrics.json").is_file()
    assert "could not fetch everything (status 4" in run.stderr


def test_a_fetch_that_fails_stops_the_job_before_weekly(
    fake: FakeTikTok, base: str, tmp_path: Path
) -> None:
    """A credentials file that is not there: fetch exits 2, weekly does not run, the wrapper
    exits 2 and says where the log is."""
    out = tmp_path / "out"
    settings = fetch_settings(tmp_path, base, credentials=tmp_path / "missing.json")
    run = run_wrapper(out, "--as-of", "2026-11-23", data=None, settings=settings)
    assert run.returncode == 2
    assert run.stderr.startswith("cs-metrics fetch tiktok failed with status 2, so weekly did not")
    log = (out / "logs" / "latest.log").read_text()
    assert "credentials file not found" in log
    assert log.rstrip().endswith("# weekly not run: the fetch failed")
    assert "cs-metrics weekly" not in log
    assert not (out / "2026-11-23").exists()
    assert fake.requests == []


def test_a_store_without_credentials_or_beside_other_data_is_refused(tmp_path: Path) -> None:
    store = {"CS_METRICS_TIKTOK_STORE": str(tmp_path / "store")}
    run = run_wrapper(tmp_path / "out", "--as-of", "2026-11-23", data=None, settings=store)
    assert run.returncode == 2
    assert "CS_METRICS_TIKTOK_CREDENTIALS is not" in run.stderr
    both = {**store, "CS_METRICS_TIKTOK_CREDENTIALS": str(tmp_path / "tokens.json")}
    run = run_wrapper(tmp_path / "out", "--as-of", "2026-11-23", settings=both)
    assert run.returncode == 2
    assert "CS_METRICS_DATA and CS_METRICS_TIKTOK_STORE name different folders" in run.stderr
    assert not (tmp_path / "out").exists()
