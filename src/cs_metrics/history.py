"""The history store: one SQLite record per shop and evaluated week, versioned schema."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from cs_metrics.errors import InputError

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
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
    PRIMARY KEY (shop_id, as_of)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
COLUMNS = (
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
MIGRATIONS = {
    1: (
        "ALTER TABLE evaluations ADD COLUMN coverage TEXT",
        "ALTER TABLE evaluations ADD COLUMN policy TEXT",
        "ALTER TABLE evaluations ADD COLUMN policy_fingerprint TEXT",
    ),
}
"""Statements that bring a store of each older schema version to the next one.

Version 2 records each week's data coverage (SPEC 6a) and the policy it was evaluated under;
weeks stored before have neither, and count as complete.
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating or migrating) the history store."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, timeout=30)
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            con.close()
            raise InputError(f"{path}: history schema {version} is newer than this cs-metrics")
        with con:
            if 0 < version < SCHEMA_VERSION:
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        con.execute(statement)
            con.executescript(_SCHEMA)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.DatabaseError as exc:  # a directory, another file, a damaged store
        raise InputError(f"{path}: not a usable history store ({exc})") from exc
    return con


def check_store(path: Path) -> None:
    """Fail early (before any output is written) when an existing store cannot be used."""
    if path.exists():
        connect(path).close()


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
    path: Path, shop_ids: list[str] | None = None, before: dt.date | None = None
) -> pd.DataFrame:
    """Stored evaluations (optionally of some shops, before a Monday), oldest first."""
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    query = f"SELECT {', '.join(COLUMNS)} FROM evaluations"
    clauses, params = [], []
    if before is not None:
        clauses.append("as_of < ?")
        params.append(before.isoformat())
    if shop_ids:
        clauses.append(f"shop_id IN ({', '.join('?' * len(shop_ids))})")
        params.extend(shop_ids)
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    with closing(connect(path)) as con:
        return pd.read_sql_query(query + " ORDER BY as_of, shop_id", con, params=params)


def save_week(
    path: Path,
    as_of: dt.date,
    cutoff: str | None,
    shops: list[dict],
    policy: dict[str, Any] | None = None,
    fingerprint: str | None = None,
) -> None:
    """Store one week's evaluation of each shop, replacing that week's earlier records."""
    policy_text = None if policy is None else json.dumps(policy, sort_keys=True)
    rows = [
        (
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
    placeholders = ", ".join("?" * len(COLUMNS))
    with closing(connect(path)) as con, con:
        con.execute("DELETE FROM evaluations WHERE as_of = ?", (as_of.isoformat(),))
        con.executemany(f"INSERT OR REPLACE INTO evaluations VALUES ({placeholders})", rows)
