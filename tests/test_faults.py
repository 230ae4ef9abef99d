"""Fault injection: the weekly job killed at every write point, and at random moments.

After each kill the week folder is entirely the old run or entirely the new one, the history
agrees with it (or records a complete staged week that the next run switches in), and the next
runs repair what is left: the following Monday's actions equal those of a run never killed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cs_metrics import history, week_files
from paths import ROOT
from test_weekly import FIRST_MONDAY, write_weeks

pytestmark = pytest.mark.slow

HOOK = ROOT / "tests" / "faults.py"
KEY_ENV = "CS_METRICS_KEY_FILE"
M1, M2, M3 = (FIRST_MONDAY + dt.timedelta(weeks=w) for w in (1, 2, 3))
# A fails every week; B fails only in the week of M2, so its M3 action depends on M2 being
# stored (violation point), and a lost M2 would make it a warning.
OUTCOMES = {"A": ["fail", "fail", "fail"], "B": ["pass", "fail", "fail"], "C": ["pass"] * 3}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder and an OUT holding the clean evaluation of M1 (on tmpfs when there is one:
    the runs sync every file, and this suite runs them by the hundred)."""
    shm = Path("/dev/shm")
    root = Path(
        tmp_path_factory.mktemp("faults")
        if not shm.is_dir() or not os.access(shm, os.W_OK)
        else __import__("tempfile").mkdtemp(dir=shm, prefix="cs-metrics-faults-")
    )
    write_weeks(root / "data", OUTCOMES)
    assert weekly(root, root / "out", M1).returncode == 0
    yield root
    shutil.rmtree(root, ignore_errors=True)


def weekly(
    root: Path, out: Path, as_of: dt.date, fault: tuple[int, str] | None = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`cs-metrics weekly` in a new process, with a fault at a write point if asked."""
    args = ["weekly", "--data", str(root / "data"), "--out", str(out), "--as-of", str(as_of)]
    args += ["--cutoff", f"{as_of}T00:00:00+08:00"]  # the export covers each week (SPEC 6a)
    target, name = fault or (0, "KILL")
    points = out.parent / f"{out.name}.points"
    command = [sys.executable, str(HOOK), str(target), name, str(points), "--", *args, *extra]
    # One key file for every run (created by the first): each run then has the same writes.
    env = {**os.environ, "CS_METRICS_LOG": "WARNING", KEY_ENV: str(root / "pseudonym.key")}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def backfill(
    root: Path, out: Path, first: dt.date, last: dt.date
) -> subprocess.CompletedProcess[str]:
    """The backfill the missing-week warning names."""
    args = [
        "--data",
        str(root / "data"),
        "--out",
        str(out),
        "--from",
        str(first),
        "--to",
        str(last),
        "--cutoff",
        f"{last}T00:00:00+08:00",
    ]
    return subprocess.run(
        [sys.executable, "-m", "cs_metrics", "backfill", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, KEY_ENV: str(root / "pseudonym.key")},
    )


def write_points(root: Path, rerun: bool) -> list[str]:
    """The write points of a clean run of M2 after M1 (`rerun`: with M2 stored), in order."""
    out = root / f"count-out-{rerun}"
    shutil.copytree(root / "out", out)
    if rerun:
        assert weekly(root, out, M2).returncode == 0
    points = root / f"count-out-{rerun}.points"
    points.unlink(missing_ok=True)
    assert weekly(root, out, M2).returncode == 0
    found = [line.split(" ", 1)[1] for line in points.read_text().splitlines()]
    shutil.rmtree(out)
    return found


CRITICAL = ("history commit", "os.rename", "exchange", "shutil.rmtree")


def chosen(points: list[str], spread: int = 6) -> list[int]:
    """The write points to kill at (1-based): all with CS_METRICS_FAULTS=all; by default every
    point from the last file sync through the commit, the switch and the clean-up, where the
    week changes hands, and `spread` points evenly over the writing before them."""
    numbers = list(range(1, len(points) + 1))
    if os.environ.get("CS_METRICS_FAULTS") == "all":
        return numbers
    first = min(n for n in numbers if any(c in points[n - 1] for c in CRITICAL)) - 4
    step = max(1, (first - 1) // spread)
    return sorted(set(numbers[: first - 1 : step]) | set(numbers[first - 1 :]))


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file of a week folder (None: no folder)."""
    if not folder.exists():
        return None
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


EXPECTED_FILES = {
    ".run-id",
    "metrics.json",
    "metrics.csv",
    "chats.csv",
    "ratings.csv",
    "holiday_mode.csv",
    "findings.csv",
    "report.html",
}


def state(out: Path, before: dict[str, bytes] | None) -> str:
    """`old`, `new` or `committed-staged` (history new, its complete staged folder waiting);
    fails the test on any other (mixed) state."""
    store = out / "history.sqlite"
    folder = week_files.week_folder(out, M2)
    runs = history.stored_runs(store, ".")
    recorded = runs.loc[runs["as_of"] == M2.isoformat(), "run_id"].tolist()
    now = snapshot(folder)
    staged = [s for s in week_files.leftovers(out) if s.kind == "staging"]
    if now == before:
        if not recorded or (
            before is not None and before.get(".run-id", b"").decode().strip() == recorded[0]
        ):
            return "old"
        # The commit happened; the switch did not: the staged folder must be the recorded run.
        assert [s.run_id for s in staged] == recorded, (staged, recorded)
        assert {p.name for p in staged[0].path.iterdir()} >= EXPECTED_FILES
        return "committed-staged"
    assert now is not None
    assert set(now) >= EXPECTED_FILES, sorted(now)
    assert recorded == [now[".run-id"].decode().strip()]
    json.loads(now["metrics.json"])  # whole, not cut
    return "new"


def actions(out: Path, as_of: dt.date) -> dict[str, str]:
    doc = json.loads((week_files.week_folder(out, as_of) / "metrics.json").read_text())
    return {s["shop_id"]: s["action"] for s in doc["shops"]}


@pytest.fixture(scope="module")
def clean(base: Path) -> dict[str, dict[str, str]]:
    """The actions of M2 and M3 from runs never killed."""
    out = base / "clean-out"
    shutil.copytree(base / "out", out)
    assert weekly(base, out, M2).returncode == 0
    assert weekly(base, out, M3).returncode == 0
    found = {"M2": actions(out, M2), "M3": actions(out, M3)}
    assert found == {
        "M2": {"A": "violation_point", "B": "warning", "C": "none"},
        "M3": {"A": "violation_point", "B": "violation_point", "C": "none"},
    }
    return found


def kill_and_repair(
    base: Path, clean: dict[str, dict[str, str]], n: int, signal_name: str, rerun: bool, label: str
) -> str:
    """Kill a run of M2 at write point n; check the state; repair; check M3. The state seen."""
    out = base / f"out-{label}-{signal_name}-{n}"
    shutil.copytree(base / "out", out)
    if rerun:  # the week exists already: the killed run replaces it
        assert weekly(base, out, M2).returncode == 0
    before = snapshot(week_files.week_folder(out, M2))
    killed = weekly(base, out, M2, (n, signal_name))
    if signal_name == "KILL":
        assert killed.returncode == -signal.SIGKILL
    else:
        assert killed.returncode in (0, 128 + signal.SIGTERM), killed.stderr
        if killed.returncode:
            assert "stopped by SIGTERM" in killed.stderr
    seen = state(out, before)
    if signal_name != "KILL":
        assert seen in ("old", "new")  # signals wait while the commit and the switch run
    nxt = weekly(base, out, M3)
    lost = seen == "old" and before is None
    if lost:  # M2 never stored: M3 must name it, never count it as a pass silently
        assert nxt.returncode == 4, nxt.stderr
        assert f"no evaluation of {M2}" in nxt.stderr
        assert backfill(base, out, M2, M3).returncode == 0
    else:
        assert nxt.returncode == 0, nxt.stderr
    assert actions(out, M2) == clean["M2"]
    assert actions(out, M3) == clean["M3"]
    assert state(out, None if seen == "old" and before is None else before) in ("old", "new")
    assert not week_files.leftovers(out)
    assert not list(out.rglob("*.tmp"))
    shutil.rmtree(out)
    return seen


@pytest.mark.parametrize("rerun", [False, True], ids=["first-run", "re-run"])
def test_sigkill_at_every_write_point(
    base: Path, clean: dict[str, dict[str, str]], rerun: bool
) -> None:
    points = write_points(base, rerun)
    assert any("history commit" in p for p in points)
    seen = [
        kill_and_repair(base, clean, n, "KILL", rerun, "first" if not rerun else "rerun")
        for n in chosen(points)
    ]
    print(
        f"SIGKILL, {'re-run' if rerun else 'first run'}: {len(seen)} kills",
        {s: seen.count(s) for s in sorted(set(seen))},
    )
    assert {"old", "new"} <= set(seen)


def test_sigterm_at_every_write_point(base: Path, clean: dict[str, dict[str, str]]) -> None:
    points = write_points(base, True)
    seen = [kill_and_repair(base, clean, n, "TERM", True, "term") for n in chosen(points, 3)]
    assert set(seen) <= {"old", "new"}


def test_kills_at_random_moments(base: Path, clean: dict[str, dict[str, str]]) -> None:
    """SIGKILL and SIGTERM from outside at random delays over the run's whole length."""
    rng = random.Random(15)
    started = time.monotonic()
    assert weekly(base, base / "timing-out", M1).returncode == 0
    length = time.monotonic() - started
    for i in range(12):
        out = base / f"random-{i}"
        shutil.copytree(base / "out", out)
        if i % 2:
            assert weekly(base, out, M2).returncode == 0
        before = snapshot(week_files.week_folder(out, M2))
        args = ["weekly", "--data", str(base / "data"), "--out", str(out), "--as-of", str(M2)]
        args += ["--cutoff", f"{M2}T00:00:00+08:00"]
        process = subprocess.Popen(
            [sys.executable, "-m", "cs_metrics", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, KEY_ENV: str(base / "pseudonym.key")},
        )
        time.sleep(rng.uniform(0.2, length))
        process.send_signal(signal.SIGKILL if i % 3 else signal.SIGTERM)
        process.wait(timeout=60)
        state(out, before)
        nxt = weekly(base, out, M3)
        if nxt.returncode == 4:
            assert f"no evaluation of {M2}" in nxt.stderr
            assert backfill(base, out, M2, M3).returncode == 0
        assert actions(out, M3) == clean["M3"]
        shutil.rmtree(out)
