"""The Monday evaluation: the week before `as_of`, statuses, actions, history, stored results."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from cs_metrics import enforcement, files, formats, history, output, week_files
from cs_metrics.arrow_text import rows_kept
from cs_metrics.chats import from_ticks, ticks
from cs_metrics.duplicates import CONVERSATION_KEYS, is_keyed, keyed_shops
from cs_metrics.enforcement import actions, statuses, withheld_reason
from cs_metrics.errors import UsageError
from cs_metrics.fetch.performance import tiktok_figures
from cs_metrics.pipeline import (
    Dataset,
    Evaluation,
    evaluate,
    resolve_cutoff,
    stacked,
    window_rows,
)
from cs_metrics.policy import Policy
from cs_metrics.report import build
from cs_metrics.scan.scanner import SCAN_COLUMNS, load_rules, scan_asking_late
from cs_metrics.week_files import WeekResults

T = TypeVar("T")
log = logging.getLogger("cs_metrics")
LOCK_NAME = ".cs-metrics.lock"


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


def default_monday(now: dt.datetime, policy: Policy) -> dt.date:
    """The Monday a run without --as-of evaluates: the latest on or before today, where today
    is the host's local date (or that of the policy's `schedule_timezone`).

    A cron job at 07:30 on Monday in Singapore runs at 23:30 on Sunday in UTC: the date must be
    the one the scheduler's clock shows, or it would evaluate the week before last.
    """
    if policy.schedule_timezone == "local":
        today = now.astimezone().date()
    else:
        today = now.astimezone(zoneinfo.ZoneInfo(policy.schedule_timezone)).date()
    return latest_monday(today)


def week_days(as_of: dt.date, policy: Policy) -> tuple[dt.date, dt.date]:
    """The evaluated local days: the `window_days` days before the Monday `as_of`."""
    return as_of - dt.timedelta(days=policy.window_days), as_of - dt.timedelta(days=1)


@contextmanager
def run_lock(out: Path, wait: float = 0.0, command: str = "weekly") -> Iterator[None]:
    """Hold OUT's lock for the run; a second run gets LockHeldError naming the holder (after
    waiting up to `wait` seconds for it).

    The lock is taken before any input is read, so a second run stops at once. A run that fails
    leaves no trace of itself in an OUT it created: the lock file and the empty folder go.
    """
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    with files.exclusive_lock(out / LOCK_NAME, f"the lock on {out}", f"cs-metrics {command}", wait):
        try:
            yield
        except BaseException:
            left = list(out.iterdir())
            # Only lock files (OUT's, and the history store's when it lives in OUT).
            if created and all(p.name.endswith(".lock") and p.is_file() for p in left):
                for lock in left:
                    lock.unlink()
                out.rmdir()
            raise


def conversation_keys(frame: pd.DataFrame) -> pd.Series:
    """Each row's conversation as one text (conversation ids are only unique within a shop)."""
    return frame["shop_id"].astype("string") + "\x1f" + frame["conversation_id"].astype("string")


def each_group(
    dataset: Dataset, func: Callable[[pd.DataFrame], T], columns: Sequence[str] | None = None
) -> list[T]:
    """`func` of each group of the dataset's messages where its engine keeps them (one group
    held in memory, or one bucket of shops at a time from disk); of no message, when none.
    With `columns`, `func` reads only those (an engine may leave the others unread)."""
    found = dataset.message_groups.map(func, columns)
    return found if found else [func(dataset.message_groups.empty())]


SHOP_COLUMNS = ("shop_id", "shop_key")
"""The columns that say a message's shop (its key where the messages are settled)."""


def shop_rows(group: pd.DataFrame) -> pd.Series:
    """Rows per shop_id of a group of messages (`value_counts`; counted by key where the group
    is keyed, not by hashing every row's shop id)."""
    if not is_keyed(group):
        return group["shop_id"].value_counts()
    key, ids = keyed_shops(group)
    counts = np.bincount(key, minlength=len(ids))
    present = counts > 0
    return pd.Series(counts[present], index=ids[present].rename("shop_id"), name="count")


def message_rows_by_shop(dataset: Dataset) -> pd.DataFrame:
    """Per shop: message rows read and quarantined (SPEC 6a's bad-row share is over these).

    Rows read are the shop's used, duplicate and quarantined rows; a quarantined row counts for
    the shop its (trimmed) shop_id names, and a row with no shop_id for none.
    """
    counts = each_group(dataset, shop_rows, SHOP_COLUMNS)
    # A shop's messages are all in one group: the groups' counts only need putting together.
    used = counts[0] if len(counts) == 1 else pd.concat(counts)
    quarantined = dataset.quarantined_by_shop
    duplicates = dataset.duplicates_by_shop
    shops = used.index.union(quarantined.index).union(duplicates.index)
    read = (
        used.reindex(shops, fill_value=0)
        + quarantined.reindex(shops, fill_value=0)
        + duplicates.reindex(shops, fill_value=0)
    )
    return pd.DataFrame({"read": read, "quarantined": quarantined.reindex(shops, fill_value=0)})


def evaluation_table(
    evaluation: Evaluation,
    earlier: pd.DataFrame,
    as_of: dt.date,
    policy: Policy,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per shop: metric statuses, data coverage, the action (SPEC 6, 6a), active points.

    `rows` (message rows read and quarantined per shop) gives the bad-row share; none: 0.
    """
    metrics = evaluation.metrics.set_index("shop_id")
    status = statuses(metrics, policy)
    rows = rows if rows is not None else pd.DataFrame({"read": [], "quarantined": []})
    share = enforcement.bad_row_shares(
        rows["read"].reindex(metrics.index, fill_value=0),
        rows["quarantined"].reindex(metrics.index, fill_value=0),
    )
    cover = enforcement.coverage(metrics["window_end"], evaluation.cutoff, share, policy)
    action = actions(
        status["response_rate_12h"],
        enforcement.failed_recently(earlier, as_of, policy.warning_lookback_weeks),
        cover,
    )
    this_week = pd.DataFrame(
        {"shop_id": metrics.index, "as_of": as_of.isoformat(), "action": action.to_numpy()}
    )
    points = enforcement.active_points(
        pd.concat([earlier[["shop_id", "as_of", "action"]], this_week]),
        as_of,
        policy.violation_point_validity_days,
    )
    return pd.DataFrame(
        {
            "shop_id": metrics.index,
            "status": status[list(status.columns)].to_dict(orient="records"),
            "coverage": cover.to_numpy(),
            "bad_row_share": share.to_numpy(),
            "action": action.to_numpy(),
            "violation_points_active": points.reindex(metrics.index)
            .fillna(0)
            .astype("int64")
            .to_numpy(),
        }
    )


def stale_weeks(stored: pd.DataFrame, as_of: dt.date, table: pd.DataFrame) -> list[str]:
    """Later stored weeks whose actions rest on this week's earlier result (SPEC 6a).

    A shop's later weeks go stale when this week's statuses or coverage differ from the record
    stored for it before: their lookback read the old result.
    """
    day = as_of.isoformat()
    before = stored.loc[stored["as_of"] == day].set_index("shop_id")
    later = stored.loc[stored["as_of"] > day]
    if before.empty or later.empty:
        return []
    now = table.set_index("shop_id")
    changed = pd.Series(False, index=now.index)
    for metric in enforcement.STATUS_METRICS:
        new = now["status"].map(lambda s, m=metric: s[m])
        changed |= new != before[f"status_{metric}"].reindex(now.index)
    changed |= now["coverage"] != before["coverage"].reindex(now.index).fillna(enforcement.COMPLETE)
    # A shop stored before but not evaluated now has no result to rest on either.
    gone = before.index.difference(now.index)
    shops = set(changed.index[changed & now.index.isin(before.index)]) | set(gone)
    return sorted(later.loc[later["shop_id"].isin(shops), "as_of"].unique().tolist())


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


QUIET_EXPORT = pd.Timedelta(days=1)
"""A shop whose messages stop this long before the data's end may have an incomplete export."""


def last_message_by_shop(messages: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """Each shop's latest sent_at up to the cut-off, by shop_id (by key where the messages are
    a keyed group: a group by integers, not by every row's shop id text)."""
    if not is_keyed(messages):
        used = rows_kept(
            messages[["shop_id", "sent_at"]], (messages["sent_at"] <= cutoff).to_numpy(bool)
        )
        return used.groupby("shop_id", observed=True)["sent_at"].max()
    key, ids = keyed_shops(messages)
    at = ticks(messages["sent_at"])
    kept = at <= int(ticks(pd.Series([cutoff]))[0])
    latest = pd.Series(at[kept]).groupby(key[kept]).max()
    shops = pd.Index(ids[latest.index.to_numpy()], name="shop_id")
    return pd.Series(from_ticks(latest.to_numpy()).array, index=shops, name="sent_at").sort_index()


def quiet_shops(
    messages: pd.DataFrame, bounds: pd.DataFrame, cutoff: pd.Timestamp | None
) -> pd.Series:
    """Per shop that was active in its week but whose messages stop over QUIET_EXPORT before
    the week's end (or the cut-off, when earlier) while the data goes on: its last message, in
    UTC. A warning only; a shop with no message in the week is not named (it may be closed).
    """
    if cutoff is None or messages.empty:
        return pd.Series(dtype="datetime64[us, UTC]")
    last = last_message_by_shop(messages, cutoff)
    starts = pd.to_datetime(bounds["window_start"], utc=True).reindex(last.index)
    ends = pd.to_datetime(bounds["window_end"], utc=True).reindex(last.index)
    covered_until = ends.where(ends < cutoff, cutoff)
    quiet = (last >= starts) & (last < covered_until - QUIET_EXPORT)
    return last.loc[quiet.fillna(False).to_numpy(dtype=bool)]


def run_week(
    dataset: Dataset,
    as_of: dt.date,
    policy: Policy,
    history_path: Path,
    cutoff: pd.Timestamp | None = None,
    generated_at: dt.datetime | None = None,
    dataset_id: str = history.LEGACY,
    data_dir: Path | None = None,
    between_stages: Callable[[], object] = lambda: None,
) -> WeekResults:
    """Evaluate the week before `as_of` for every shop (nothing is stored yet), against the
    stored weeks of the data set `dataset_id`. `data_dir`, the folder `dataset` was read from,
    gives TikTok's own figures of the week where it is a fetched store that holds them.
    `between_stages` runs after the scan (the command line hands freed memory back there)."""
    first, last = week_days(as_of, policy)
    # The scan runs before the chats are built: its working copies of the texts are freed first,
    # so the two never take memory at once.
    findings = week_findings(dataset, first, last, resolve_cutoff(dataset, cutoff))
    between_stages()
    evaluation = evaluate(dataset, first, last, policy, cutoff)
    stored = history.records(history_path, dataset=dataset_id)
    earlier = stored.loc[stored["as_of"] < as_of.isoformat()].reset_index(drop=True)
    table = evaluation_table(evaluation, earlier, as_of, policy, message_rows_by_shop(dataset))
    stale = stale_weeks(stored, as_of, table)
    missing = enforcement.missing_weeks(
        earlier, as_of, table["shop_id"].tolist(), policy.warning_lookback_weeks
    )
    replaced = stored.loc[stored["as_of"] == as_of.isoformat(), "policy_fingerprint"].dropna()
    bounds = evaluation.metrics.set_index("shop_id")[["window_start", "window_end"]]
    parts = each_group(
        dataset,
        lambda group: quiet_shops(group, bounds, evaluation.cutoff),
        (*SHOP_COLUMNS, "sent_at"),
    )
    quiet = parts[0] if len(parts) == 1 else pd.concat(parts)
    table["last_message_at"] = [
        files.iso_utc(quiet[s]) if s in quiet.index else None for s in table["shop_id"]
    ]
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
        policy_fingerprint=policy.fingerprint(),
        previous_policy_fingerprints=sorted(set(replaced) - {policy.fingerprint()}),
        stale_weeks=stale,
        missing_weeks=missing,
    )
    return WeekResults(
        as_of=as_of,
        doc=doc,
        chats=output.chat_rows(evaluation.chats),
        ratings=evaluation.ratings[["shop_id", "conversation_id", "rating", "rated_at"]],
        holiday_periods=periods_touching(dataset.holiday_mode, evaluation),
        findings=findings,
        history=earlier,
        tiktok_figures=week_figures(data_dir, table["shop_id"].astype(str).tolist(), first, last),
    )


def week_figures(
    data_dir: Path | None, shop_ids: list[str], first: dt.date, last: dt.date
) -> pd.DataFrame:
    """TikTok's own figures of the week for the shops that have any (none without a folder)."""
    if data_dir is None:
        return week_files.no_tiktok_figures()
    figures = tiktok_figures(data_dir, shop_ids, first, last)
    return figures.loc[figures["days"] > 0].reset_index(drop=True)


def with_this_week(
    results: WeekResults, history_path: Path, dataset_id: str = history.LEGACY
) -> tuple[WeekResults, pd.DataFrame]:
    """The week's history records, and the results carrying the shops' history up to and
    including this week (as the store holds it once the week is committed)."""
    doc = results.doc
    rows = history.week_rows(
        dataset_id,
        results.as_of,
        doc["cutoff"],
        doc["shops"],
        doc.get("policy"),
        doc.get("policy_fingerprint"),
    )
    shop_ids = [s["shop_id"] for s in doc["shops"]]
    earlier = history.records(history_path, shop_ids, before=results.as_of, dataset=dataset_id)
    parts = [frame for frame in (earlier, rows) if len(frame)]
    stored = pd.concat(parts, ignore_index=True) if parts else rows
    return replace(results, history=stored), rows


def commit_week(
    results: WeekResults,
    dataset: Dataset,
    out: Path,
    history_path: Path,
    dataset_id: str = history.LEGACY,
    with_report: bool = True,
    raw_csv: bool = False,
) -> WeekResults:
    """Write the week as one unit: its files (and report) into a staging folder, synced; the
    history records the staged run; then the staged folder takes the week's place.

    A failure before the history commit removes the staging folder and keeps the earlier week
    and its history intact. Signals wait while the commit and the switch run, so a SIGTERM or
    Ctrl-C lands before the commit (nothing changed) or after the switch (all changed).
    """
    results, rows = with_this_week(results, history_path, dataset_id)
    run_id = week_files.new_run_id()
    staging = week_files.begin(out, results.as_of, run_id)
    committed = False
    try:
        week_files.write_week(results, dataset, staging, raw_csv=raw_csv)
        if with_report:
            build.write_report(results, staging / "report.html", history_path)
        week_files.seal(staging, run_id)
        with signals_deferred():
            history.save_week(history_path, dataset_id, results.as_of, rows, run_id, out)
            committed = True
            week_files.switch(staging, week_files.week_folder(out, results.as_of))
    except BaseException:
        if not committed:
            week_files.discard(staging)
        raise
    return results


DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold back SIGTERM, SIGINT and SIGHUP while the block runs; one that came is raised
    again when it ends, for the handler in force then.

    Swapping the handlers, not masking the signals: a signal sent to the process may reach
    any of its threads (Arrow's pools too), and Python runs the handler in the main thread
    whichever thread the signal reached.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; and signals are handled there only
        return
    caught: list[int] = []
    previous = {
        number: signal.signal(number, lambda n, _f: caught.append(n)) for number in DEFERRED_SIGNALS
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            signal.raise_signal(caught[0])


def recover(out: Path, history_path: Path) -> list[str]:
    """Finish or undo what a stopped run left in OUT; what was done, one line each.

    A staged week that the history records takes its place (the run was stopped between the
    commit and the switch); any other staged week is removed, and the week keeps its earlier
    files and history. Temporary files of stopped writes are removed.
    """
    notes = []
    for staged in sorted(week_files.leftovers(out), key=lambda s: s.kind != "staging"):
        week = week_files.week_folder(out, staged.as_of)
        recorded = history.dataset_of_run(history_path, staged.run_id) is not None
        # A sealed staged week holds its own run id; after an exchange, the staging name holds
        # the week it replaced, with another id (or none, from before run ids).
        sealed = week_files.run_id_of(staged.path) == staged.run_id
        if staged.kind == "staging" and sealed and recorded:
            week_files.switch(staged.path, week)
            notes.append(
                f"{week}: a run stopped after recording the week in the history; its "
                "complete files now take the week's place"
            )
        elif staged.kind == "staging" and not recorded:
            week_files.discard(staged.path)
            notes.append(
                f"{week}: removed the files of a run stopped before it recorded the week; "
                "the week keeps its earlier files and history"
            )
        elif week.exists() or week.is_symlink() or staged.kind == "staging":
            week_files.discard(staged.path)  # the replaced week, switched out
        else:  # stopped between the two renames of a switch without an atomic exchange
            staged.path.rename(week)
    removed = week_files.remove_temporary_files(out)
    if removed:
        notes.append(f"{out}: removed {len(removed)} temporary file(s) left by a stopped run")
    return notes


def disagreements(out: Path, history_path: Path, dataset_id: str) -> list[str]:
    """Weeks the history says this OUT holds whose folder another run wrote, or that are
    gone: the files and the history disagree, and the week must be evaluated again."""
    runs = history.stored_runs(history_path, dataset_id)
    mine = runs.loc[runs["out"] == history.place(out, history_path)]
    return [
        as_of
        for as_of, run_id in zip(mine["as_of"], mine["run_id"], strict=True)
        if week_files.run_id_of(out / as_of) != run_id
    ]


def week_findings(
    dataset: Dataset, first: dt.date, last: dt.date, cutoff: pd.Timestamp | None
) -> pd.DataFrame:
    """Compliance-scan findings of the messages sent in the week, up to the cut-off."""
    rules = load_rules()

    def group_findings(group: pd.DataFrame) -> pd.DataFrame:
        def pick(roles: set[str], talks: pd.DataFrame | None) -> pd.DataFrame:
            """The group's messages of `roles` in the week (of the conversations `talks`)."""
            # With the keys of settled messages: the scan groups by them rather than by text.
            columns = (*SCAN_COLUMNS, *CONVERSATION_KEYS)
            messages = window_rows(group, dataset, first, last, columns=columns, roles=roles)
            sent = None if cutoff is None else (messages["sent_at"] <= cutoff).to_numpy(bool)
            if sent is not None and not sent.all():
                messages = rows_kept(messages, sent)
            if talks is not None:
                # The few conversations' ids first, then the exact (shop, conversation) pairs.
                near = rows_kept(
                    messages,
                    messages["conversation_id"].isin(talks["conversation_id"]).to_numpy(bool),
                )
                exact = conversation_keys(near).isin(conversation_keys(talks))
                messages = rows_kept(near, exact.to_numpy(dtype=bool))
            return messages

        return scan_asking_late(pick, rules)

    found = each_group(dataset, group_findings, (*SCAN_COLUMNS, *CONVERSATION_KEYS))
    if len(found) == 1:
        return found[0]
    # Each group's findings are in order and hold whole shops: in shop order, they are in the
    # order one scan of every message gives.
    return stacked(found).sort_values("shop_id", kind="stable").reset_index(drop=True)


def history_summary(
    history_path: Path,
    shop_ids: list[str] | None,
    weeks: int,
    policy: Policy,
    dataset_id: str | None = None,
) -> dict:
    """Per shop: the latest `weeks` evaluations and the violation points still active."""
    stored = history.records(history_path, shop_ids, dataset=dataset_id)
    shops = []
    for shop_id, rows in stored.groupby("shop_id", sort=True):
        latest = dt.date.fromisoformat(rows["as_of"].max())
        points = enforcement.active_points(rows, latest, policy.violation_point_validity_days)
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
                        "coverage": r.coverage if isinstance(r.coverage, str) else "complete",
                        "action": r.action,
                        "policy_fingerprint": r.policy_fingerprint
                        if isinstance(r.policy_fingerprint, str)
                        else None,
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
            f"  {'as of':<10}  {'12h rate':>8}  {'FRT mean':>8}  {'CSAT':>6}  status        "
            f"{'coverage':<9} {'action':<16} policy"
        )
        for e in shop["evaluations"]:
            rate = formats.percent(e["response_rate_12h"])
            frt = formats.minutes(e["first_response_minutes_mean"])
            csat = formats.percent(e["satisfaction_rate"])
            status = e["status_response_rate_12h"]
            lines.append(
                f"  {e['as_of']:<10}  {rate:>8}  {frt:>8}  {csat:>6}  {status:<12}  "
                f"{e['coverage']:<9} {e['action']:<16} {e['policy_fingerprint'] or '-'}"
            )
    return "\n".join(lines) + "\n" if lines else "(no evaluations stored)\n"


@dataclass(frozen=True)
class Outcome:
    """What a weekly run recommends, in a few words for the job log and the manager."""

    shops: int
    by_action: dict[str, list[str]]
    """Shop ids per action (violation_point, warning, withheld, none)."""
    withheld: dict[str, str]
    """Per withheld shop: why its data does not cover the week."""
    stale_weeks: list[str]
    """Later stored weeks whose actions rest on an earlier result of this week."""
    previous_policies: list[str] = field(default_factory=list)
    """Fingerprints of other policies this week was evaluated under before this run."""
    quiet: dict[str, str] = field(default_factory=dict)
    """Per shop whose messages stop well before the data's end: its last message, local time."""
    missing_weeks: list[str] = field(default_factory=list)
    """Mondays inside the lookback that the history holds no evaluation of."""
    mismatched_weeks: list[str] = field(default_factory=list)
    """Stored weeks whose files and history disagree (evaluate them again)."""
    as_of: str | None = None
    """The (last) evaluated Monday."""

    @property
    def needs_look(self) -> bool:
        """Exit status 4: an action was withheld, later weeks went stale (SPEC 6a), a week is
        missing inside the lookback, or a stored week's files and history disagree."""
        return bool(
            self.withheld or self.stale_weeks or self.missing_weeks or self.mismatched_weeks
        )

    def summary(self) -> str:
        """One line, e.g. `12 shops: 2 violation points (VN-001, TH-004), 1 warning (MY-001),
        1 withheld (ID-002: data ends Tue 17 Nov 09:12), 8 fine`."""
        parts = []
        for action, word in (
            (enforcement.VIOLATION_POINT, "violation point"),
            (enforcement.WARNING, "warning"),
        ):
            ids = self.by_action.get(action, [])
            if ids:
                parts.append(f"{len(ids)} {word}{'s' if len(ids) > 1 else ''} ({_listed(ids)})")
        if self.withheld:
            reasons = [f"{shop}: {why}" for shop, why in self.withheld.items()]
            parts.append(f"{len(self.withheld)} withheld ({_listed(reasons, separator='; ')})")
        fine = len(self.by_action.get(enforcement.NO_ACTION, []))
        parts.append(f"{fine} fine")
        return f"{self.shops} shop{'s' if self.shops != 1 else ''}: " + ", ".join(parts)


def _listed(items: list[str], most: int = 10, separator: str = ", ") -> str:
    shown = separator.join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def outcome(doc: dict, policy: Policy) -> Outcome:
    """The run's outcome from its metrics.json document."""
    by_action: dict[str, list[str]] = {}
    for shop in doc["shops"]:
        by_action.setdefault(shop["action"], []).append(shop["shop_id"])
    withheld = {
        shop["shop_id"]: withheld_reason(shop, doc.get("cutoff"), policy)
        for shop in doc["shops"]
        if shop["action"] == enforcement.WITHHELD
    }
    return Outcome(
        len(doc["shops"]),
        by_action,
        withheld,
        list(doc.get("stale_weeks", [])),
        list(doc.get("previous_policy_fingerprints", [])),
        {
            shop["shop_id"]: formats.local_time(shop["last_message_at"], shop["timezone"])
            for shop in doc["shops"]
            if shop.get("last_message_at")
        },
        list(doc.get("missing_weeks", [])),
        as_of=doc.get("as_of"),
    )
