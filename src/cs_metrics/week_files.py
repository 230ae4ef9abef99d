"""One evaluated week on disk: `OUT/<as-of>/` written from, and read back into, `WeekResults`.

A week is one unit. Its files are written into a staging folder beside it
(`OUT/.<as-of>.staging.<run-id>`), synced, recorded in the history under the run id, and then
switched into place in one rename. A run killed at any point leaves either the old week or the
new one; a staged week the history already records is switched in by the next run, any other
is removed.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cs_metrics import files, history, output
from cs_metrics.errors import InputError, UsageError
from cs_metrics.pipeline import Dataset

RUN_ID_FILE = ".run-id"
"""In each week folder: the id of the run that wrote it (the history records the same id)."""

_STAGED = re.compile(r"^\.(\d{4}-\d{2}-\d{2})\.(staging|old)\.([0-9a-f]{16})$")
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
"""files.write_atomic's temporary names (`.NAME.XXXXXXXX.tmp`)."""


def week_folder(out: Path, as_of: dt.date) -> Path:
    """OUT/<as-of>/."""
    return out / as_of.isoformat()


CSV_CELLS = "csv_cells"
"""The metrics.json key saying how the week's CSVs hold text cells: `spreadsheet_safe` (a
formula-like cell has one more leading `'`) or `raw` (absent: raw, as older versions wrote)."""
PRIVATE_FILES = frozenset({"chats.csv", "findings.csv"})
"""Files holding raw buyer data (ids, message text): readable by their owner only."""


TIKTOK_FIGURES_FILE = "tiktok_figures.csv"
"""TikTok's own figures of the week per shop, for the report's comparison: written only when
the data folder (a fetched store) holds some, so that `report` shows them without it."""
TIKTOK_FIGURES_COLUMNS = (
    "shop_id",
    "days",
    "response_rate",
    "response_time_minutes",
    "satisfaction_rate",
)


def no_tiktok_figures() -> pd.DataFrame:
    """The figures of a week whose data holds none of TikTok's (the common case)."""
    return pd.DataFrame(
        {
            column: pd.Series(
                dtype="string" if column == "shop_id" else "int64" if column == "days" else float
            )
            for column in TIKTOK_FIGURES_COLUMNS
        }
    )


def new_run_id() -> str:
    """A fresh run id: names the staging folder and the history's record of the week."""
    return secrets.token_hex(8)


def begin(out: Path, as_of: dt.date, run_id: str) -> Path:
    """The new, empty staging folder of a week's run."""
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".{as_of.isoformat()}.staging.{run_id}"
    staging.mkdir(mode=0o755)  # a new name: never an existing folder or a planted link
    return staging


def seal(staging: Path, run_id: str) -> None:
    """Mark the staged week with its run id and sync every file and folder in it to disk."""
    files.write_atomic(staging / RUN_ID_FILE, run_id + "\n")
    for folder, _subfolders, names in os.walk(staging):
        for name in names:
            _sync(Path(folder) / name)
        _sync(Path(folder))
    _sync(staging.parent)


def _sync(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def switch(staging: Path, week: Path) -> None:
    """Put the staged week in place of `week` in one step, then remove the old one."""
    match = _STAGED.match(staging.name)
    assert match is not None, staging
    if week.is_symlink() or week.exists():
        if not _exchange(staging, week):
            # Without an atomic exchange: two renames. A crash between them leaves `week`
            # missing and both folders named; `recover` finishes the switch.
            old = staging.with_name(f".{match.group(1)}.old.{match.group(3)}")
            week.rename(old)
            staging.rename(week)
            staging = old
        _sync(week.parent)
        _remove(staging)
    else:
        staging.rename(week)
        _sync(week.parent)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _remove(path: Path) -> None:
    """Remove a folder of ours; a link in its place is removed, never followed."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def discard(staging: Path) -> None:
    """Remove an unfinished staging folder."""
    _remove(staging)


@dataclass(frozen=True)
class Staged:
    """A staging folder (or a replaced week not yet removed) left by a run that was killed."""

    path: Path
    as_of: dt.date
    run_id: str
    kind: str
    """`staging` (a new week) or `old` (the week it replaced, switched out)."""


def leftovers(out: Path) -> list[Staged]:
    """Staging and replaced-week folders in OUT, oldest week first."""
    if not out.is_dir():
        return []
    found = []
    for path in out.iterdir():
        match = _STAGED.match(path.name)
        if match:
            found.append(
                Staged(path, dt.date.fromisoformat(match.group(1)), match.group(3), match.group(2))
            )
    return sorted(found, key=lambda s: (s.as_of, s.kind, s.run_id))


def run_id_of(folder: Path) -> str | None:
    """The run id a week folder was written by (None: written before run ids, or missing)."""
    marker = folder / RUN_ID_FILE
    if folder.is_symlink() or marker.is_symlink() or not marker.is_file():
        return None
    return marker.read_text(encoding="utf-8").strip() or None


def remove_temporary_files(out: Path) -> list[Path]:
    """Temporary files a killed run left in OUT and its week folders (never a link's target)."""
    if not out.is_dir():
        return []
    removed = []
    folders = [out, *(p for p in out.iterdir() if p.is_dir() and not p.is_symlink())]
    folders += [f / "quarantine" for f in folders[1:] if (f / "quarantine").is_dir()]
    for folder in folders:
        if folder.is_symlink():
            continue
        for path in folder.iterdir():
            if _TEMPORARY.match(path.name) and path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
    return removed


def write_week(
    results: WeekResults, dataset: Dataset, folder: Path, raw_csv: bool = False
) -> list[Path]:
    """Write metrics.json, metrics.csv, chats.csv, ratings.csv, holiday_mode.csv, findings.csv,
    tiktok_figures.csv (only when there are any) and quarantine/ into `folder` (a new staging
    folder); CSV text cells spreadsheet-safe unless `raw_csv`."""
    doc = {**results.doc, CSV_CELLS: "raw" if raw_csv else "spreadsheet_safe"}
    texts: dict[str, str | bytes | files.Writer] = {
        "metrics.json": output.to_json(doc),
        "metrics.csv": output.to_csv(results.doc["shops"], output.WEEKLY_CSV_FIELDS, raw=raw_csv),
        "chats.csv": output.chats_csv_writer(results.chats, raw=raw_csv),
        "ratings.csv": files.csv_text(_iso_columns(results.ratings, ("rated_at",)), raw=raw_csv),
        "holiday_mode.csv": files.csv_text(
            _iso_columns(results.holiday_periods, ("start", "end")), raw=raw_csv
        ),
        "findings.csv": files.csv_text(_iso_columns(results.findings, ("sent_at",)), raw=raw_csv),
    }
    if len(results.tiktok_figures):
        texts[TIKTOK_FIGURES_FILE] = files.csv_text(
            results.tiktok_figures[list(TIKTOK_FIGURES_COLUMNS)], raw=raw_csv
        )
    written = []
    for name, text in texts.items():
        mode = files.PRIVATE_MODE if name in PRIVATE_FILES else None
        files.write_atomic(folder / name, text, mode=mode)
        written.append(folder / name)
    return written + output.write_quarantine(dataset, folder / "quarantine", raw_csv=raw_csv)


def _iso_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out and len(out):
            out[column] = files.iso_text(out[column].dt.tz_convert("UTC"))
    return out


def load_week(out: Path, as_of: dt.date, history_path: Path) -> WeekResults:
    """Read a stored week back from OUT/<as-of>/ and the history store (for re-rendering),
    every value as written: ids stay text, and `NA` or `null` stay the strings they are."""
    folder = week_folder(out, as_of)
    metrics = folder / "metrics.json"
    if not metrics.exists():
        raise UsageError(f"{metrics}: no stored results for {as_of}; run `cs-metrics weekly` first")
    missing = [name for name in STORED_TABLES if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"{folder}: {', '.join(missing)} missing, so the stored week is incomplete; "
            f"evaluate it again with `cs-metrics weekly --as-of {as_of}`"
        )
    run_id = run_id_of(folder)
    dataset = None
    if run_id is not None:
        dataset = history.dataset_of_run(history_path, run_id)
        if dataset is None:
            raise InputError(
                f"{folder} was written by run {run_id}, which {history_path} does not record: "
                "the files and this history do not belong together (another --history?); "
                f"evaluate the week again with `cs-metrics weekly --as-of {as_of}`"
            )
    doc = json.loads(metrics.read_text(encoding="utf-8"))
    safe = doc.pop(CSV_CELLS, "raw") == "spreadsheet_safe"
    chats = _read_csv(
        folder / "chats.csv", ("received_at_utc", "responded_at_utc", "deadline_at_utc"), safe
    )
    shop_ids = [s["shop_id"] for s in doc["shops"]]
    hist = history.records(history_path, shop_ids, dataset=dataset)
    return WeekResults(
        as_of=as_of,
        doc=doc,
        chats=chats,
        ratings=_read_csv(folder / "ratings.csv", ("rated_at",), safe),
        holiday_periods=_read_csv(folder / "holiday_mode.csv", ("start", "end"), safe),
        findings=_read_csv(folder / "findings.csv", ("sent_at",), safe),
        history=hist.loc[hist["as_of"] <= as_of.isoformat()].reset_index(drop=True),
        tiktok_figures=_read_figures(folder / TIKTOK_FIGURES_FILE, safe),
    )


def _read_figures(path: Path, safe: bool) -> pd.DataFrame:
    """A week's stored TikTok figures (none when the week has no file: its data had none)."""
    if not path.is_file():
        return no_tiktok_figures()
    frame = _read_csv(path, (), safe)
    if frame.empty:
        return no_tiktok_figures()
    return frame.reindex(columns=list(TIKTOK_FIGURES_COLUMNS))


STORED_TABLES = ("chats.csv", "ratings.csv", "holiday_mode.csv", "findings.csv")
"""The CSV files of a stored week that a re-rendered report reads."""

_TEXT_COLUMNS = (
    "shop_id",
    "conversation_id",
    "first_message_id",
    "buyer_id",
    "responder_id",
    "response_message_id",
    "message_id",
    "sender_id",
)


def _read_csv(path: Path, instants: tuple[str, ...], safe: bool) -> pd.DataFrame:
    """A stored CSV as written from the results (`safe`: the spreadsheet quotes taken off)."""
    if path.stat().st_size <= 1:
        return pd.DataFrame()
    # Only an empty cell is missing: a shop or buyer id `NA`, `null` or `NaN` is that text.
    frame = pd.read_csv(
        path,
        dtype=dict.fromkeys(_TEXT_COLUMNS, "string"),
        keep_default_na=False,
        na_values=[""],
    )
    if safe:
        frame = files.spreadsheet_original(frame)
    for column in instants:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


@dataclass
class WeekResults:
    """Everything the Monday report needs about one evaluated week, as stored in OUT/<as-of>/."""

    as_of: dt.date
    doc: dict
    """metrics.json: SPEC 7 plus status, action, points, name and market per shop."""
    chats: pd.DataFrame
    """The week's chats, one row each (output.CHAT_COLUMNS)."""
    ratings: pd.DataFrame
    """The ratings counted in the week: shop_id, conversation_id, rating, rated_at."""
    holiday_periods: pd.DataFrame
    """Holiday Mode periods that touch the week: shop_id, start, end (NaT = still on)."""
    findings: pd.DataFrame
    """Compliance-scan findings of the week (may be empty)."""
    history: pd.DataFrame
    """Stored evaluations of these shops up to and including this week (history.COLUMNS)."""
    tiktok_figures: pd.DataFrame = field(default_factory=no_tiktok_figures)
    """TikTok's own figures of the week, one row per shop that has any
    (TIKTOK_FIGURES_COLUMNS: `days` with figures, the mean of each daily figure)."""
