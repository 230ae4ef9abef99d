"""jobs/: the Monday wrapper logs each run, points latest.log at it, passes the status on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRAPPER = ROOT / "jobs" / "cs-metrics-weekly.sh"


def run_wrapper(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CS_METRICS_HOME": str(ROOT), "CS_METRICS_OUT": str(out)}
    return subprocess.run(
        ["bash", str(WRAPPER), *args], capture_output=True, text=True, env=env, timeout=180
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
