"""The history store: one SQLite record per data set, shop and evaluated week, versioned schema.

Several data sets may share one store: each record carries the identity of the data set it
belongs to (by default the resolved OUT folder of the weekly job), so that one data set's run
never replaces another's week. `weeks` records which run wrote each stored week (the run id
that also names that week's folder), so the files and the history cannot disagree unseen.
Readers open the store read-only and never write to it.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics import files
from cs_metrics.errors import InputError, LockHeldError

SCHEMA_VERSION = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    dataset TEXT NOT NULL DEFAULT '',
    shop_id TEXT NOT NULL,
    as_of TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    cutoff TEXT,
    response_rate_12h REAL,
    first_response_minutes_mean REAL,
    satisfaction_rate REAL,
    status_response_rate_12h TEXT NOT NULL,
    status_first_response_minutes_mean TEXT NOT NULL,
    status_satisfaction_rate TEXT NOT NULL,
    action TEXT NOT NULL,
    record TEXT NOT NULL,
    coverage TEXT,
    policy TEXT,
    policy_fingerprint TEXT,
    PRIMARY KEY (dataset, shop_id, as_of)
);
CREATE TABLE IF NOT EXISTS weeks (
    dataset TEXT NOT NULL,
    as_of TEXT NOT NULL,
    run_id TEXT NOT NULL,
    out TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (dataset, as_of)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
COLUMNS = (
    "dataset",
    "shop_id",
    "as_of",
    "window_start",
    "window_end",
    "cutoff",
    "response_rate_12h",
    "first_response_minutes_mean",
    "satisfaction_rate",
    "status_response_rate_12h",
    "status_first_response_minutes_mean",
    "status_satisfaction_rate",
    "action",
    "record",
    "coverage",
    "policy",
    "policy_fingerprint",
)
LEGACY = ""
"""The data-set identity of records stored before stores had identities (schema 2 and older);
the first data set whose weekly run opens the store takes them over."""

MIGRATIONS = {
    1: (
        "ALTER TABLE evaluations ADD COLUMN coverage TEXT",
        "ALTER TABLE evaluations ADD COLUMN policy TEXT",
        "ALTER TABLE evaluations ADD COLUMN policy_fingerprint TEXT",
    ),
    2: (
        "ALTER TABLE evaluations RENAME TO evaluations_v2",
        *(statement for statement in _SCHEMA.split(";") if statement.strip()),
        f"INSERT INTO evaluations SELECT '', {', '.join(COLUMNS[1:])} FROM evaluations_v2",
        "DROP TABLE evaluations_v2",
    ),
}
"""Statements that bring a store of each older schema version to the next one.

Version 2 records each week's data coverage (SPEC 6a) and the policy it was evaluated under;
weeks stored before have neither, and count as complete. Version 3 keys records by data set
(SQLite cannot change a primary key in place, so the table is rebuilt) and adds `weeks`.
"""

BUSY_SECONDS = 30.0
"""How long a write waits for readers of the store before it names them and stops."""

LOCK_WAIT_SECONDS = 600.0
"""How long a weekly run waits for another run to finish with the store."""


def _busy(path: Path, exc: sqlite3.OperationalError) -> Exception:
    """The error for a store that stayed locked by others (or a disk that filled up)."""
    if "full" in str(exc):  # SQLite's "database or disk is full": the transaction rolled back
        return OSError(errno.ENOSPC, f"no space left to record the week ({exc})", str(path))
    holders = store_holders(path)
    who = f" (open in {'; '.join(holders)})" if holders else ""
    return LockHeldError(
        f"{path}: the history store stayed busy for {BUSY_SECONDS:.0f} s{who}; nothing of this "
        f"run was recorded and the earlier results are kept; run again once it is free ({exc})"
    )


def store_holders(path: Path) -> list[str]:
    """The processes of this host that hold `path` open (Linux /proc; empty elsewhere)."""
    try:
        target = path.resolve()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                links = [str(fd.readlink()) for fd in (proc / "fd").iterdir()]
                if str(target) in links:
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    found.append(f"pid {proc.name}: {command.decode(errors='replace')[:80]}")
            except OSError:
                continue
        return found
    except OSError:
        return []


def connect(path: Path) -> sqlite3.Connection:
    """Open the history store for writing, creating or migrating it (weekly runs only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, timeout=BUSY_SECONDS)
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            con.close()
            raise InputError(f"{path}: history schema {version} is newer than this cs-metrics")
        if version < SCHEMA_VERSION:
            _migrate(con, version)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise _busy(path, exc) from exc
        raise _unusable(path, exc) from exc
    except sqlite3.DatabaseError as exc:  # a directory, another file, a damaged store
        raise _unusable(path, exc) from exc
    return con


def _migrate(con: sqlite3.Connection, version: int) -> None:
    """Create the tables, or bring an older store up to date, in one transaction."""
    fresh = version == 0
    steps = [] if fresh else [s for v in range(version, SCHEMA_VERSION) for s in MIGRATIONS[v]]
    steps += [statement for statement in _SCHEMA.split(";") if statement.strip()]
    previous = con.isolation_level
    con.isolation_level = None  # explicit BEGIN/COMMIT: DDL inside the one transaction
    con.execute("BEGIN IMMEDIATE")
    try:
        for statement in steps:
            con.execute(statement)
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.isolation_level = previous


def _unusable(path: Path, exc: Exception) -> InputError:
    return InputError(
        f"{path}: cannot open the history store ({exc}); it was not changed. Check the path, "
        "its permissions and the free space before anything else: the store holds every "
        "earlier week"
    )


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing store without writing to it (works on a read-only mount)."""
    if not path.exists():
        raise InputError(f"{path}: no history store; give the one the weekly job wrote")
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
        version = con.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from exc
    if version > SCHEMA_VERSION:
        con.close()
        raise InputError(f"{path}: history schema {version} is newer than this cs-metrics")
    return con


def check_store(path: Path) -> None:
    """Fail early (before any output is written) when an existing store cannot be used."""
    if path.exists():
        open_read_only(path).close()


@contextmanager
def store_lock(path: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the store's own lock (`<store>.lock`) while a run reads, evaluates and commits.

    Two runs that share a store, from one OUT or several, take turns: the second waits up to
    `wait` seconds, then stops naming the holder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    with files.exclusive_lock(lock, f"the history store {path}", "cs-metrics weekly", wait):
        yield


def take_legacy_pseudonym_key(path: Path, keep: Callable[[bytes], object]) -> bytes | None:
    """The pseudonym key older versions kept in the store's meta table, handed to `keep` (which
    saves it elsewhere) and then erased from the store; None when the store holds none."""
    if not path.exists():
        return None
    with closing(connect(path)) as con, con:
        row = con.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()
        if row is None:
            return None
        key = bytes.fromhex(row[0])
        keep(key)  # saved before it is deleted: an error here rolls the delete back
        con.execute("PRAGMA secure_delete = ON")  # overwrite the freed page, not only unlink it
        con.execute("DELETE FROM meta WHERE key = 'pseudonym_key'")
        return key


def records(
    path: Path,
    shop_ids: list[str] | None = None,
    before: dt.date | None = None,
    dataset: str | None = None,
) -> pd.DataFrame:
    """Stored evaluations (optionally of one data set, some shops, before a Monday), oldest
    first. Records from before data-set identities count for every data set. Read-only."""
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    with closing(open_read_only(path)) as con:
        present = [row[1] for row in con.execute("PRAGMA table_info(evaluations)")]
        if not present:
            return pd.DataFrame(columns=list(COLUMNS))
        query = f"SELECT {', '.join(c for c in COLUMNS if c in present)} FROM evaluations"
        clauses, params = [], []
        if before is not None:
            clauses.append("as_of < ?")
            params.append(before.isoformat())
        if shop_ids:
            clauses.append(f"shop_id IN ({', '.join('?' * len(shop_ids))})")
            params.extend(shop_ids)
        if dataset is not None and "dataset" in present:
            clauses.append("dataset IN (?, ?)")
            params.extend([dataset, LEGACY])
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        try:
            frame = pd.read_sql_query(query + " ORDER BY as_of, shop_id", con, params=params)
        except sqlite3.OperationalError as exc:
            raise _busy(path, exc) from exc
    for column in COLUMNS:  # an older store, read as it is
        if column not in frame:
            frame[column] = LEGACY if column == "dataset" else None
    return frame[list(COLUMNS)]


def datasets(path: Path) -> list[str]:
    """The data-set identities that have records in the store."""
    return sorted(records(path)["dataset"].unique().tolist())


def stored_runs(path: Path, dataset: str) -> pd.DataFrame:
    """The run that wrote each stored week of a data set: as_of, run_id, out."""
    empty = pd.DataFrame(columns=["as_of", "run_id", "out"])
    if not path.exists():
        return empty
    with closing(open_read_only(path)) as con:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'weeks'").fetchone():
            return empty
        return pd.read_sql_query(
            "SELECT as_of, run_id, out FROM weeks WHERE dataset = ? ORDER BY as_of",
            con,
            params=[dataset],
        )


def dataset_of_run(path: Path, run_id: str) -> str | None:
    """The data set whose week the run `run_id` wrote, when the history records that run as
    its week's writer (None: it does not)."""
    if not path.exists():
        return None
    with closing(open_read_only(path)) as con:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'weeks'").fetchone():
            return None
        row = con.execute("SELECT dataset FROM weeks WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else str(row[0])


def place(out: Path, store: Path) -> str:
    """OUT as the store records it: its path from the store's folder (`.` for OUT/history.sqlite),
    so that moving or copying OUT together with its store changes nothing."""
    return os.path.relpath(out.resolve(), store.resolve().parent)


def week_rows(
    dataset: str,
    as_of: dt.date,
    cutoff: str | None,
    shops: list[dict],
    policy: dict[str, Any] | None = None,
    fingerprint: str | None = None,
) -> pd.DataFrame:
    """One week's evaluation of each shop, as the store's records (history.COLUMNS)."""
    policy_text = None if policy is None else json.dumps(policy, sort_keys=True)
    rows = [
        (
            dataset,
            s["shop_id"],
            as_of.isoformat(),
            s["window_start"],
            s["window_end"],
            cutoff,
            s["response_rate_12h"],
            s["first_response_minutes_mean"],
            s["satisfaction_rate"],
            s["status"]["response_rate_12h"],
            s["status"]["first_response_minutes_mean"],
            s["status"]["satisfaction_rate"],
            s["action"],
            json.dumps(s, sort_keys=True),
            s.get("coverage"),
            policy_text,
            fingerprint,
        )
        for s in shops
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def save_week(
    path: Path, dataset: str, as_of: dt.date, rows: pd.DataFrame, run_id: str, out: Path
) -> None:
    """Store one data set's week (the rows of `week_rows`), replacing that data set's earlier
    records of the week, and record `run_id` as its writer: one transaction."""
    values = rows.astype(object).where(rows.notna(), None).itertuples(index=False, name=None)
    saved = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    placeholders = ", ".join("?" * len(COLUMNS))
    try:
        with closing(connect(path)) as con, con:
            if dataset != LEGACY:
                con.execute(
                    "UPDATE evaluations SET dataset = ? WHERE dataset = ?", (dataset, LEGACY)
                )
            con.execute(
                "DELETE FROM evaluations WHERE dataset = ? AND as_of = ?",
                (dataset, as_of.isoformat()),
            )
            con.executemany(f"INSERT INTO evaluations VALUES ({placeholders})", list(values))
            con.execute(
                "INSERT OR REPLACE INTO weeks VALUES (?, ?, ?, ?, ?)",
                (dataset, as_of.isoformat(), run_id, place(out, path), saved),
            )
    except sqlite3.OperationalError as exc:
        raise _busy(path, exc) from exc
