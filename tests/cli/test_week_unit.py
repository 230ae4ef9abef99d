"""A week as one unit, through the CLI: recovery, history identity, read-only readers, full
disks, planted links, and stored files read back exactly."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cs_metrics import history, week_files, weekly
from cs_metrics.cli import weekly as weekly_cli
from cs_metrics.cli.app import app
from test_weekly import FIRST_MONDAY, write_weeks

runner = CliRunner()
M1, M2, M3 = (FIRST_MONDAY + dt.timedelta(weeks=w) for w in (1, 2, 3))
OUTCOMES = {"A": ["fail", "fail", "fail"], "B": ["pass", "fail", "fail"]}


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def run(data: Path, out: Path, as_of: dt.date, *extra: object):
    """`weekly` with a cut-off at the Monday: the data covers each week (SPEC 6a)."""
    return invoke(
        "weekly", "--data", data, "--out", out, "--as-of", as_of,
        "--cutoff", f"{as_of}T00:00:00+08:00", *extra,
    )  # fmt: skip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_weeks(tmp_path / "data", OUTCOMES)
    return tmp_path / "data"


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def actions(out: Path, as_of: dt.date) -> dict[str, str]:
    doc = json.loads((out / as_of.isoformat() / "metrics.json").read_text())
    return {s["shop_id"]: s["action"] for s in doc["shops"]}


def test_a_week_folder_holds_its_run_id_and_the_history_records_it(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    run_id = week_files.run_id_of(out / M1.isoformat())
    runs = history.stored_runs(out / "history.sqlite", ".")
    assert runs[["as_of", "run_id", "out"]].values.tolist() == [[M1.isoformat(), run_id, "."]]
    assert not week_files.leftovers(out)


def test_an_unrecorded_staging_folder_is_removed_and_a_recorded_one_switched_in(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    before = files_of(out / M1.isoformat())
    # A run stopped before its commit: a staged week nobody recorded, and a temporary file.
    stray = week_files.begin(out, M1, "a" * 16)
    (stray / "metrics.json").write_text("{}")
    (out / M1.isoformat() / ".chats.csv.k2j4h5g6.tmp").write_text("half")
    result = run(data, out, M2)
    assert result.exit_code == 0, result.stderr
    assert "removed the files of a run stopped before it recorded the week" in result.stderr
    assert "removed 1 temporary file(s)" in result.stderr
    assert files_of(out / M1.isoformat()) == before
    assert not week_files.leftovers(out)

    # A run stopped between its commit and the switch: the staged week is the recorded one.
    store = out / "history.sqlite"
    staged = week_files.begin(out, M2, "b" * 16)
    for name, content in files_of(out / M2.isoformat()).items():
        (staged / name).parent.mkdir(parents=True, exist_ok=True)
        (staged / name).write_bytes(content.replace(b"generated_at", b"generated_at"))
    week_files.seal(staged, "b" * 16)
    with sqlite3.connect(store) as con:
        con.execute("UPDATE weeks SET run_id = ? WHERE as_of = ?", ("b" * 16, M2.isoformat()))
    result = run(data, out, M3)
    assert "its complete files now take the week's place" in result.stderr
    assert week_files.run_id_of(out / M2.isoformat()) == "b" * 16
    assert result.exit_code == 0, result.stderr


def test_a_week_whose_files_another_run_wrote_is_named_with_exit_4(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    (out / M1.isoformat() / ".run-id").write_text("0123456789abcdef\n")
    result = run(data, out, M2)
    assert result.exit_code == 4
    assert f"the stored week(s) {M1} in {out} were not written by the run" in result.stderr
    assert "cs-metrics backfill" in result.stderr


def test_a_missing_week_inside_the_lookback_is_named_with_exit_4_and_the_backfill(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    result = run(data, out, M3)  # M2 never evaluated: B's failure there is unseen
    assert result.exit_code == 4
    assert f"the history holds no evaluation of {M2}" in result.stderr
    assert f"--from {M2} --to {M3}" in result.stderr
    assert json.loads((out / M3.isoformat() / "metrics.json").read_text())["missing_weeks"] == [
        M2.isoformat()
    ]
    assert "Weeks missing from the history" in (out / M3.isoformat() / "report.html").read_text()
    backfill = invoke(
        "backfill", "--data", data, "--out", out, "--from", M2, "--to", M3,
        "--cutoff", f"{M3}T00:00:00+08:00",
    )  # fmt: skip
    assert backfill.exit_code == 0, backfill.stderr
    assert actions(out, M3) == {"A": "violation_point", "B": "violation_point"}


def test_two_data_sets_on_one_history_keep_their_own_weeks(tmp_path: Path) -> None:
    write_weeks(tmp_path / "one", {"S": ["fail", "fail"]})
    write_weeks(tmp_path / "two", {"S": ["pass", "pass"]})
    store = tmp_path / "shared.sqlite"
    for week in (M1, M2):
        for name in ("one", "two"):
            result = run(tmp_path / name, tmp_path / f"out-{name}", week, "--history", store)
            assert result.exit_code == 0, result.stderr
    assert actions(tmp_path / "out-one", M2) == {"S": "violation_point"}
    assert actions(tmp_path / "out-two", M2) == {"S": "none"}
    stored = history.records(store)
    assert sorted(stored["dataset"].unique()) == ["out-one", "out-two"]
    assert len(stored) == 4
    shown = invoke("history", "--out", tmp_path / "out-one", "--history", store, "--format", "json")
    assert shown.exit_code == 0, shown.stderr
    weeks = json.loads(shown.stdout)["shops"][0]["evaluations"]
    assert [e["action"] for e in weeks] == ["warning", "violation_point"]
    named = invoke("history", "--history", store, "--dataset", "out-two", "--format", "json")
    assert [e["action"] for e in json.loads(named.stdout)["shops"][0]["evaluations"]] == [
        "none",
        "none",
    ]


def test_a_store_of_schema_2_is_migrated_and_its_records_kept(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    store = out / "history.sqlite"
    out.mkdir()
    columns = [c for c in history.COLUMNS if c != "dataset"]
    with sqlite3.connect(store) as con:
        con.execute(
            f"CREATE TABLE evaluations ({', '.join(columns)}, PRIMARY KEY (shop_id, as_of))"
        )
        con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        con.execute(
            f"INSERT INTO evaluations VALUES ({', '.join('?' * len(columns))})",
            ["B", M1.isoformat(), "x", "y", None, 0.0, None, None, "fail", "not_assessed",
             "not_assessed", "warning", "{}", "complete", None, None],
        )  # fmt: skip
        con.execute("PRAGMA user_version = 2")
    assert history.records(store)["dataset"].tolist() == [""]  # read as it is, not migrated
    result = run(data, out, M2)
    assert result.exit_code == 0, result.stderr
    assert actions(out, M2)["B"] == "violation_point"  # the stored failure of M1 counts
    with sqlite3.connect(store) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION
    assert set(history.records(store)["dataset"]) == {"."}


def test_history_and_report_read_the_store_without_writing_to_it(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    store = out / "history.sqlite"
    digest = hashlib.sha256(store.read_bytes()).hexdigest()
    writer = sqlite3.connect(store, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another program writing: readers must not wait on it
    try:
        shown = invoke("history", "--out", out)
        assert shown.exit_code == 0, shown.stderr
        assert "A: " in shown.stdout
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    again = invoke("report", "--out", out, "--as-of", M1)
    assert again.exit_code == 0, again.stderr
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest


def test_history_on_a_read_only_mount(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    mount = tmp_path / "ro"
    mount.mkdir()
    bind = subprocess.run(["mount", "--bind", str(out), str(mount)], capture_output=True)
    if bind.returncode:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        remount = subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(mount)], capture_output=True
        )
        if remount.returncode:
            pytest.skip(f"cannot remount read-only here: {remount.stderr.decode().strip()}")
        with pytest.raises(OSError):
            (mount / "probe").write_text("x")
        shown = invoke("history", "--out", mount, "--format", "json")
        assert shown.exit_code == 0, shown.stderr
        assert {s["shop_id"] for s in json.loads(shown.stdout)["shops"]} == {"A", "B"}
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_report_waits_for_the_lock_of_a_weekly_run_then_names_it(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    monkeypatch.setattr(weekly_cli, "REPORT_LOCK_WAIT", 0.5)
    with weekly.run_lock(out):
        result = invoke("report", "--out", out, "--as-of", M1)
    assert result.exit_code == 3
    assert "another run holds the lock" in result.stderr
    assert invoke("report", "--out", out, "--as-of", M1).exit_code == 0


def test_report_reads_na_like_ids_as_the_text_they_are(tmp_path: Path) -> None:
    write_weeks(tmp_path / "data", {"NA": ["fail"], "null": ["pass"]})
    out = tmp_path / "out"
    assert run(tmp_path / "data", out, M1).exit_code == 0
    report = out / M1.isoformat() / "report.html"
    first = report.read_text()
    rerendered = invoke("report", "--out", out, "--as-of", M1)
    assert rerendered.exit_code == 0, rerendered.stderr
    again = report.read_text()
    assert again.count("NA-w0d") == first.count("NA-w0d") > 0  # NA's missed chats still listed
    week = week_files.load_week(out, M1, out / "history.sqlite")
    assert set(week.chats["shop_id"]) == {"NA", "null"}


def test_report_of_a_week_missing_a_stored_file_names_it(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    (out / M1.isoformat() / "chats.csv").unlink()
    result = invoke("report", "--out", out, "--as-of", M1)
    assert result.exit_code == 2
    assert "chats.csv missing" in result.stderr


def test_a_full_disk_keeps_the_earlier_week_and_names_the_path(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    before = files_of(out / M1.isoformat())
    stored = history.records(out / "history.sqlite")
    real_fsync = os.fsync

    def full(descriptor: int) -> None:
        if os.fstat(descriptor).st_size > 10_000:  # a larger file of the week: the disk fills
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full)
    result = run(data, out, M1)
    assert result.exit_code == 1
    assert "No space left on device; nothing was half-written" in result.stderr
    assert f"{out}/.{M1}.staging." in result.stderr  # the path it could not write
    assert "internal error" not in result.stderr
    assert files_of(out / M1.isoformat()) == before
    assert history.records(out / "history.sqlite").equals(stored)
    assert not week_files.leftovers(out)


def test_a_full_tmpfs_keeps_the_earlier_week(data: Path, tmp_path: Path) -> None:
    """A real full disk: a 2 MB tmpfs, filled up after the first week (root only)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        out = mount / "out"
        assert run(data, out, M1).exit_code == 0
        before = files_of(out / M1.isoformat())
        stored = history.records(out / "history.sqlite")
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(filler)
        result = run(data, out, M1)
        assert result.exit_code == 1, result.stderr
        assert "nothing was half-written" in result.stderr
        assert str(out) in result.stderr
        assert files_of(out / M1.isoformat()) == before
        assert history.records(out / "history.sqlite").equals(stored)
        assert not week_files.leftovers(out)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_planted_links_in_out_are_never_followed(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.csv").write_text("precious\n")
    assert run(data, out, M1).exit_code == 0
    quarantine = out / M1.isoformat() / "quarantine"
    shutil.rmtree(quarantine, ignore_errors=True)
    quarantine.symlink_to(victim)  # a planted quarantine/ folder
    week = out / M2.isoformat()
    week.symlink_to(victim)  # a planted week folder
    staged = out / f".{M3}.staging.{'c' * 16}"
    staged.symlink_to(victim)  # a planted "leftover"
    assert run(data, out, M1).exit_code == 0
    assert run(data, out, M2).exit_code == 0
    assert (victim / "keep.csv").read_text() == "precious\n"
    assert sorted(p.name for p in victim.iterdir()) == ["keep.csv"]
    assert not week.is_symlink() and (week / "metrics.json").is_file()
    assert not staged.exists() and not staged.is_symlink()

    lock = out / ".cs-metrics.lock"
    lock.unlink()
    lock.symlink_to(victim / "keep.csv")
    result = run(data, out, M2)
    assert result.exit_code == 2
    assert "is a symbolic link" in result.stderr
    assert (victim / "keep.csv").read_text() == "precious\n"


def test_weekly_waits_a_bounded_time_for_a_reader_and_names_it(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert run(data, out, M1).exit_code == 0
    before = files_of(out / M1.isoformat())
    store = out / "history.sqlite"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"con = sqlite3.connect({str(store)!r}, isolation_level=None)\n"
            "con.execute('BEGIN'); con.execute('SELECT * FROM evaluations').fetchall()\n"
            "print('reading', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        monkeypatch.setattr(history, "BUSY_SECONDS", 1.0)
        result = run(data, out, M1)
    finally:
        reader.kill()
        reader.wait()
    assert result.exit_code == 3, result.stderr
    assert "the history store stayed busy for 1 s" in result.stderr
    assert f"pid {reader.pid}" in result.stderr
    assert files_of(out / M1.isoformat()) == before
    assert not week_files.leftovers(out)


def test_a_fetched_store_is_cut_off_where_the_fetch_is_known_complete(
    data: Path, tmp_path: Path
) -> None:
    """The store `fetch tiktok` keeps says up to when it is complete: before the week's end,
    the week is partial and a failed rate is withheld (SPEC 6a), whatever the latest message."""
    from cs_metrics.fetch import state

    shops = {
        "A": state.ShopState(horizon="2026-07-01T00:00:00Z", complete_until="2026-08-06T00:00:00Z"),
        "B": state.ShopState(horizon="2026-07-01T00:00:00Z", complete_until="2026-08-20T00:00:00Z"),
    }
    state.write_state(data, state.SyncState(shops=shops))
    out = tmp_path / "out"
    result = invoke("weekly", "--data", data, "--out", out, "--as-of", M1)
    assert result.exit_code == 4, result.stderr
    doc = json.loads((out / M1.isoformat() / "metrics.json").read_text())
    assert doc["cutoff"].startswith("2026-08-06T00:00:00")
    assert {s["shop_id"]: s["action"] for s in doc["shops"]}["A"] == "withheld"
    explicit = run(data, tmp_path / "out2", M1)  # --cutoff still wins
    assert explicit.exit_code == 0, explicit.stderr
