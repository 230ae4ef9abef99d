"""The Monday evaluation: the week before `as_of`, statuses, actions, history, stored results."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from cs_metrics import history, output
from cs_metrics.errors import LockHeldError, UsageError
from cs_metrics.pipeline import Dataset, Evaluation, evaluate, messages_in_window
from cs_metrics.policy import Policy, actions, statuses
from cs_metrics.scan import SCAN_COLUMNS, load_rules, scan_messages, scanned_roles

log = logging.getLogger("cs_metrics")
LOCK_NAME = ".cs-metrics.lock"


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


def check_monday(day: dt.date, option: str = "--as-of") -> dt.date:
    """`day` itself when it is a Monday; otherwise a usage error naming the nearest Mondays."""
    if day.weekday() != 0:
        before = day - dt.timedelta(days=day.weekday())
        raise UsageError(
            f"{option} {day} is a {day:%A}; weekly evaluations run on Mondays "
            f"(e.g. {before} or {before + dt.timedelta(weeks=1)})"
        )
    return day


def latest_monday(today: dt.date) -> dt.date:
    """The latest Monday on or before `today`."""
    return today - dt.timedelta(days=today.weekday())


def week_days(as_of: dt.date, policy: Policy) -> tuple[dt.date, dt.date]:
    """The evaluated local days: the `window_days` days before the Monday `as_of`."""
    return as_of - dt.timedelta(days=policy.window_days), as_of - dt.timedelta(days=1)


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold OUT's lock for the run; a second run gets LockHeldError naming the holder."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            raise LockHeldError(f"another weekly run holds the lock on {out}: {holder}") from exc
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def evaluation_table(
    evaluation: Evaluation, earlier: pd.DataFrame, as_of: dt.date, policy: Policy
) -> pd.DataFrame:
    """Per shop: metric statuses, the action (SPEC 6) and active violation points."""
    metrics = evaluation.metrics.set_index("shop_id")
    status = statuses(metrics, policy)
    action = actions(
        status["response_rate_12h"],
        history.failed_recently(earlier, as_of, policy.warning_lookback_weeks),
    )
    this_week = pd.DataFrame(
        {"shop_id": metrics.index, "as_of": as_of.isoformat(), "action": action.to_numpy()}
    )
    points = history.active_points(
        pd.concat([earlier[["shop_id", "as_of", "action"]], this_week]),
        as_of,
        policy.violation_point_validity_days,
    )
    return pd.DataFrame(
        {
            "shop_id": metrics.index,
            "status": status[list(status.columns)].to_dict(orient="records"),
            "action": action.to_numpy(),
            "violation_points_active": points.reindex(metrics.index)
            .fillna(0)
            .astype("int64")
            .to_numpy(),
        }
    )


def shop_details(dataset: Dataset) -> pd.DataFrame:
    """Name and market of each shop from the shops table (missing when not given)."""
    if dataset.shops.empty:
        return pd.DataFrame(columns=["shop_id", "name", "market"])
    return (
        dataset.shops[["shop_id", "name", "market"]]
        .astype(object)
        .where(dataset.shops[["shop_id", "name", "market"]].notna(), None)
    )


def periods_touching(holiday_mode: pd.DataFrame, evaluation: Evaluation) -> pd.DataFrame:
    """Holiday Mode periods that overlap any evaluated shop's window."""
    bounds = evaluation.metrics.set_index("shop_id")
    # reindex, not map: map cannot give datetimes for an empty table (no periods at all).
    start = bounds["window_start"].reindex(holiday_mode["shop_id"]).to_numpy()
    end = bounds["window_end"].reindex(holiday_mode["shop_id"]).to_numpy()
    period_start = holiday_mode["start"].to_numpy()
    period_end = holiday_mode["end"].to_numpy()
    touches = (period_start < end) & (pd.isna(period_end) | (period_end > start))
    return holiday_mode.loc[touches, ["shop_id", "start", "end"]].reset_index(drop=True)


def run_week(
    dataset: Dataset,
    as_of: dt.date,
    policy: Policy,
    history_path: Path,
    cutoff: pd.Timestamp | None = None,
    generated_at: dt.datetime | None = None,
) -> WeekResults:
    """Evaluate the week before `as_of` for every shop (nothing is stored yet)."""
    first, last = week_days(as_of, policy)
    evaluation = evaluate(dataset, first, last, policy, cutoff)
    earlier = history.records(history_path, before=as_of)
    table = evaluation_table(evaluation, earlier, as_of, policy)
    extra = table.merge(shop_details(dataset), on="shop_id", how="left")
    extra = extra.astype(object).where(extra.notna(), None)
    stamp = (generated_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    doc = output.result_document(
        dataset,
        evaluation,
        extra,
        as_of=as_of.isoformat(),
        generated_at=stamp,
        policy=policy.as_dict(),
    )
    return WeekResults(
        as_of=as_of,
        doc=doc,
        chats=output.chat_rows(evaluation.chats),
        ratings=evaluation.ratings[["shop_id", "conversation_id", "rating", "rated_at"]],
        holiday_periods=periods_touching(dataset.holiday_mode, evaluation),
        findings=week_findings(dataset, first, last, evaluation.cutoff),
        history=earlier,
    )


def record_week(results: WeekResults, history_path: Path) -> WeekResults:
    """Store the week in the history store; the results then carry the shops' history with it."""
    doc = results.doc
    history.save_week(history_path, results.as_of, doc["cutoff"], doc["shops"])
    stored = history.records(history_path, [s["shop_id"] for s in doc["shops"]])
    stored = stored.loc[stored["as_of"] <= results.as_of.isoformat()].reset_index(drop=True)
    return replace(results, history=stored)


def week_findings(
    dataset: Dataset, first: dt.date, last: dt.date, cutoff: pd.Timestamp | None
) -> pd.DataFrame:
    """Compliance-scan findings of the messages sent in the week, up to the cut-off."""
    rules = load_rules()
    messages = messages_in_window(
        dataset, first, last, columns=SCAN_COLUMNS, roles=scanned_roles(rules)
    )
    if cutoff is not None:
        messages = messages.loc[messages["sent_at"] <= cutoff]
    return scan_messages(messages, rules)


def week_folder(out: Path, as_of: dt.date) -> Path:
    """OUT/<as-of>/."""
    return out / as_of.isoformat()


def write_week(results: WeekResults, dataset: Dataset, out: Path) -> list[Path]:
    """Write metrics.json, metrics.csv, chats.csv, ratings.csv, holiday_mode.csv, quarantine/."""
    folder = week_folder(out, results.as_of)
    files = {
        "metrics.json": output.to_json(results.doc),
        "metrics.csv": output.to_csv(results.doc["shops"], output.WEEKLY_CSV_FIELDS),
        "chats.csv": output.chats_csv(results.chats),
        "ratings.csv": output.csv_text(_iso_columns(results.ratings, ("rated_at",))),
        "holiday_mode.csv": output.csv_text(
            _iso_columns(results.holiday_periods, ("start", "end"))
        ),
        "findings.csv": output.csv_text(_iso_columns(results.findings, ("sent_at",))),
    }
    written = []
    for name, text in files.items():
        output.write_atomic(folder / name, text)
        written.append(folder / name)
    quarantine = output.write_quarantine(dataset, folder / "quarantine")
    # A table with no bad rows this time: its file from an earlier run would be stale.
    for old in (folder / "quarantine").glob("*.csv"):
        if old not in quarantine:
            old.unlink()
    return written + quarantine


def _iso_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if column in out and len(out):
            out[column] = output.iso_text(out[column].dt.tz_convert("UTC"))
    return out


def load_week(out: Path, as_of: dt.date, history_path: Path) -> WeekResults:
    """Read a stored week back from OUT/<as-of>/ and the history store (for re-rendering)."""
    folder = week_folder(out, as_of)
    metrics = folder / "metrics.json"
    if not metrics.exists():
        raise UsageError(f"{metrics}: no stored results for {as_of}; run `cs-metrics weekly` first")
    doc = json.loads(metrics.read_text(encoding="utf-8"))
    chats = _read_csv(
        folder / "chats.csv", ("received_at_utc", "responded_at_utc", "deadline_at_utc")
    )
    shop_ids = [s["shop_id"] for s in doc["shops"]]
    hist = history.records(history_path, shop_ids)
    return WeekResults(
        as_of=as_of,
        doc=doc,
        chats=chats,
        ratings=_read_csv(folder / "ratings.csv", ("rated_at",)),
        holiday_periods=_read_csv(folder / "holiday_mode.csv", ("start", "end")),
        findings=_read_csv(folder / "findings.csv", ("sent_at",)),
        history=hist.loc[hist["as_of"] <= as_of.isoformat()].reset_index(drop=True),
    )


def _read_csv(path: Path, instants: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size <= 1:
        return pd.DataFrame()
    text_columns = dict.fromkeys(
        (
            "shop_id",
            "conversation_id",
            "first_message_id",
            "buyer_id",
            "responder_id",
            "response_message_id",
            "message_id",
            "sender_id",
        ),
        "string",
    )
    frame = pd.read_csv(path, dtype=text_columns, keep_default_na=True)
    for column in instants:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame


def write_report(results: WeekResults, out: Path, history_path: Path) -> Path:
    """Render OUT/<as-of>/report.html from the week's results."""
    from cs_metrics.report import render_report

    path = week_folder(out, results.as_of) / "report.html"
    output.write_atomic(path, render_report(results, history.pseudonym_key(history_path)))
    return path


def history_summary(
    history_path: Path, shop_ids: list[str] | None, weeks: int, policy: Policy
) -> dict:
    """Per shop: the latest `weeks` evaluations and the violation points still active."""
    stored = history.records(history_path, shop_ids)
    shops = []
    for shop_id, rows in stored.groupby("shop_id", sort=True):
        latest = dt.date.fromisoformat(rows["as_of"].max())
        points = history.active_points(rows, latest, policy.violation_point_validity_days)
        recent = rows.sort_values("as_of").tail(weeks)
        shops.append(
            {
                "shop_id": shop_id,
                "violation_points_active": int(points.get(shop_id, 0)),
                "evaluations": [
                    {
                        "as_of": r.as_of,
                        "response_rate_12h": None
                        if pd.isna(r.response_rate_12h)
                        else r.response_rate_12h,
                        "first_response_minutes_mean": None
                        if pd.isna(r.first_response_minutes_mean)
                        else r.first_response_minutes_mean,
                        "satisfaction_rate": None
                        if pd.isna(r.satisfaction_rate)
                        else r.satisfaction_rate,
                        "status_response_rate_12h": r.status_response_rate_12h,
                        "action": r.action,
                    }
                    for r in recent.itertuples()
                ],
            }
        )
    return {"shops": shops}


def history_table(summary: dict) -> str:
    """The history summary as aligned text for people."""
    lines = []
    for shop in summary["shops"]:
        points = shop["violation_points_active"]
        lines.append(f"{shop['shop_id']}: {points} active violation point(s)")
        lines.append(
            f"  {'as of':<10}  {'12h rate':>8}  {'FRT mean':>8}  {'CSAT':>6}  status        action"
        )
        for e in shop["evaluations"]:
            rate = output.percent(e["response_rate_12h"])
            frt = output.minutes(e["first_response_minutes_mean"])
            csat = output.percent(e["satisfaction_rate"])
            status = e["status_response_rate_12h"]
            lines.append(
                f"  {e['as_of']:<10}  {rate:>8}  {frt:>8}  {csat:>6}  {status:<12}  {e['action']}"
            )
    return "\n".join(lines) + "\n" if lines else "(no evaluations stored)\n"
