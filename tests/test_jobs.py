"""jobs/: the Monday wrapper logs each run, points latest.log at it, passes the status on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from paths import ROOT

WRAPPER = ROOT / "jobs" / "cs-metrics-weekly.sh"


def run_wrapper(
    out: Path, *args: str, data: Path | None = ROOT / "sample_data"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CS_METRICS_HOME": str(ROOT), "CS_METRICS_OUT": str(out)}
    env.pop("CS_METRICS_DATA", None)
    if data is not None:
        env["CS_METRICS_DATA"] = str(data)
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
