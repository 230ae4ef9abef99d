"""The Monday commands: weekly, backfill, notify, history, report."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from cs_metrics import files, output, privacy, week_files
from cs_metrics import history as history_store
from cs_metrics.cli.allocator import hand_back_freed
from cs_metrics.cli.common import (
    ConfigOpt,
    CutoffOpt,
    DataOpt,
    DateFormatOpt,
    Engine,
    HistoryOpt,
    Progress,
    QuietOpt,
    RawCsvOpt,
    RejectIdsOpt,
    ShopOpt,
    StrictOpt,
    TextFormat,
    TzOpt,
    WeeklyEngineOpt,
    accept,
    command,
    history_path,
    log,
    make_policy,
    parse_cutoff,
    parse_day,
    printable,
    read_summary,
    stored_history,
    week_data,
)
from cs_metrics.errors import UsageError
from cs_metrics.fetch import state as fetch_state
from cs_metrics.history import check_store
from cs_metrics.pipeline import (
    Dataset,
)
from cs_metrics.policy import Policy
from cs_metrics.readers import table_paths
from cs_metrics.week_files import WeekResults

# The weekly run's own modules (the report, its templates, delivery) are imported by the
# functions that use them: here, they would slow every command's start by 0.2 s.
if TYPE_CHECKING:
    from cs_metrics import delivery, weekly

OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (OUT/<as-of>/ per week).")]


def default_cutoff(data: Path, cut: pd.Timestamp | None) -> pd.Timestamp | None:
    """--cutoff, else for a store `fetch tiktok` keeps, the instant up to which the fetch is
    known complete (not the latest message: SPEC 6a's coverage then tells the truth)."""
    if cut is not None:
        return cut
    complete = fetch_state.complete_until(data)
    if complete is not None:
        log.info("cut-off %s: the fetched store is complete up to then", files.iso_utc(complete))
    return complete


def monday(text: str | None, option: str, policy: Policy) -> dt.date:
    """A Monday from an option, or the latest Monday on or before the scheduler's today."""
    from cs_metrics import weekly

    if text is None:
        return weekly.default_monday(dt.datetime.now(dt.UTC), policy)
    return weekly.check_monday(parse_day(text, option), option)


DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Name of the data set in the history store (default: the resolved OUT folder). "
        "Data sets sharing one store never touch each other's weeks.",
    ),
]


def dataset_identity(out: Path, store: Path, given: str | None) -> str:
    """The data set's identity in the history: --dataset, else the path of OUT from the
    store's folder (`.` for the default store in OUT), so that moving or copying OUT with its
    store keeps its weeks its own."""
    if given is not None:
        if not given.strip():
            raise UsageError("--dataset must not be empty")
        return given
    return history_store.place(out, store)


@contextlib.contextmanager
def week_unit(out: Path, store: Path, dataset_id: str) -> Iterator[list[str]]:
    """OUT's lock, then the store's: what a stopped run left is finished or undone first.

    Yields the stored weeks whose files and history disagree (to be named in the outcome).
    """
    from cs_metrics import weekly

    with weekly.run_lock(out), history_store.store_lock(store):
        for note in weekly.recover(out, store):
            typer.echo(f"warning: {printable(note)}", err=True)
        yield weekly.disagreements(out, store, dataset_id)


def run_one_week(
    dataset: Dataset,
    as_of: dt.date,
    policy: Policy,
    out: Path,
    store: Path,
    cut: pd.Timestamp | None,
    with_report: bool = True,
    progress: Progress | None = None,
    dataset_id: str = history_store.LEGACY,
    raw_csv: bool = False,
    data: Path | None = None,
) -> WeekResults:
    """Evaluate one week, then write and record it as one unit (with its report). The buyer
    identifiers of the data (privacy.data_identifiers) are hidden in the findings before
    anything is written. `data`, the data folder, gives TikTok's own figures when it holds them."""
    from cs_metrics import weekly

    progress = progress or Progress(quiet=True)
    with progress.stage(f"Evaluating the week before {as_of} (chats, metrics, scan)"):
        results = weekly.run_week(
            dataset,
            as_of,
            policy,
            store,
            cut,
            dataset_id=dataset_id,
            data_dir=data,
            between_stages=hand_back_freed,
        )
        hand_back_freed()
        # Only the buyers of the shops with findings can be named in one.
        shops = (
            frozenset(results.findings["shop_id"].astype(str))
            if len(results.findings)
            else frozenset()
        )
        if shops:
            buyers = privacy.data_identifiers(dataset, privacy.pseudonym_key(store), shops)
            results = replace(results, findings=privacy.hidden_findings(results.findings, buyers))
        hand_back_freed()
    with progress.stage("Writing the week's files, report and history"):
        return weekly.commit_week(results, dataset, out, store, dataset_id, with_report, raw_csv)


def last_monday(found: weekly.Outcome, weeks: list[str]) -> str:
    """The Monday a backfill of missing weeks runs to: the evaluated week (when known)."""
    return found.as_of or weeks[-1]


def backfill_command(data: Path, out: Path, history: Path | None, weeks: list[str]) -> str:
    """The command that re-evaluates stored weeks in order (SPEC 6a: stale weeks)."""
    store = f" --history {history}" if history is not None else ""
    return (
        f"cs-metrics backfill --data {data} --out {out}{store} --from {weeks[0]} --to {weeks[-1]}"
    )


def notify_command(out: Path, day: dt.date, config: Path | None, history: Path | None) -> str:
    """The command that re-sends a stored week (after a delivery failure)."""
    words = ["cs-metrics", "notify", "--out", str(out), "--as-of", day.isoformat()]
    words += ["--config", str(config)] if config is not None else []
    words += ["--history", str(history)] if history is not None else []
    return shlex.join(words)


def send_week(
    message: delivery.WeekMessage, settings: delivery.DeliverySettings, resend: str
) -> bool:
    """Send the week over each configured channel: what went on stdout, each failure one log
    line naming the channel and the reason (never a secret). True when a channel failed."""
    from cs_metrics import delivery

    result = delivery.deliver(message, settings, os.environ)
    for sent in result.sent:
        typer.echo(f"Sent:    {sent}")
    for failure in result.failed:
        log.error(
            "delivery failed: %s; the files are kept, re-send with: %s",
            printable(str(failure)),
            resend,
        )
    return bool(result.failed)


def report_outcome(
    found: weekly.Outcome,
    data: Path,
    out: Path,
    history: Path | None,
    send: Callable[[], bool] | None = None,
) -> None:
    """The outcome on stdout and in the log; what needs a look on stderr; `send` the week (if
    delivery is configured); exit 4 if anything needs a look or a channel failed."""
    if found.shops:
        line = printable(found.summary())
        log.info("outcome: %s", line)
        typer.echo(f"Outcome: {line}")
    for shop, why in found.withheld.items():
        typer.echo(
            f"warning: {printable(shop)}: response-rate action withheld ({why}); "
            "re-run once the data covers the whole week",
            err=True,
        )
    for shop, last in found.quiet.items():
        line = (
            f"{shop}: its messages stop at {last}, over a day before the rest of the data ends; "
            "its export may be incomplete"
        )
        typer.echo(f"warning: {printable(line)}", err=True)
    if found.previous_policies:
        typer.echo(
            f"warning: this week was evaluated before under another policy "
            f"({', '.join(found.previous_policies)}); its stored results now follow this one",
            err=True,
        )
    if found.stale_weeks:
        typer.echo(
            f"warning: this week's results changed; the stored later week(s) "
            f"{', '.join(found.stale_weeks)} rest on the old ones. Refresh them with: "
            f"{backfill_command(data, out, history, found.stale_weeks)}",
            err=True,
        )
    if found.missing_weeks:
        weeks = found.missing_weeks
        typer.echo(
            f"warning: the history holds no evaluation of {', '.join(weeks)}, inside the lookback "
            "of shops with earlier weeks: a failure there would make a warning here a violation "
            f"point. Evaluate them, then this week again, with: "
            f"{backfill_command(data, out, history, [weeks[0], last_monday(found, weeks)])}",
            err=True,
        )
    if found.mismatched_weeks:
        weeks = found.mismatched_weeks
        typer.echo(
            f"warning: the stored week(s) {', '.join(weeks)} in {out} were not written by the run "
            "the history records (files replaced, removed or copied by hand): evaluate them "
            f"again with: {backfill_command(data, out, history, [weeks[0], weeks[-1]])}",
            err=True,
        )
    failed = send() if send is not None else False
    if found.needs_look or failed:
        raise typer.Exit(4)


@command(
    name="weekly",
    help=(
        "Evaluate the week before the Monday AS-OF for every shop: statuses, the action "
        "(warning / violation point), history, and OUT/<as-of>/report.html.\n\n"
        "Example:\n\n"
        "  cs-metrics weekly --data sample_data --out out --as-of 2026-11-23"
    ),
)
def weekly_command(
    data: DataOpt,
    out: OutOpt,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The Monday of the evaluation (default: latest).")
    ] = None,
    cutoff: CutoffOpt = None,
    history: HistoryOpt = None,
    config: ConfigOpt = None,
    default_timezone: TzOpt = None,
    strict: StrictOpt = False,
    date_format: DateFormatOpt = None,
    reject_mangled_ids: RejectIdsOpt = False,
    quiet: QuietOpt = False,
    with_report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write report.html (default) or skip it.")
    ] = True,
    dataset_name: DatasetOpt = None,
    raw_csv: RawCsvOpt = False,
    engine: WeeklyEngineOpt = Engine.auto,
) -> None:
    from cs_metrics import delivery, weekly

    policy = make_policy(config, default_timezone)
    dataset_id = dataset_identity(out, history_path(out, history), dataset_name)
    sending = delivery.load_delivery(config)  # a bad [delivery] table stops the run at once
    day = monday(as_of, "--as-of", policy)
    cut = default_cutoff(data, parse_cutoff(cutoff, policy.default_timezone))
    store = history_path(out, history)
    table_paths(data)  # a missing or doubled table stops the run before OUT is touched
    check_store(store)
    # The lock comes first, so that a second run stops at once; a failed run that created OUT
    # leaves nothing in it (SPEC 8: unusable input writes nothing).
    with week_unit(out, store, dataset_id) as mismatched, contextlib.ExitStack() as held:
        progress = Progress(quiet)
        read: list[Dataset] = []
        with progress.stage(f"Reading and checking {data}", lambda: read_summary(read[0], data)):
            read.append(
                held.enter_context(
                    week_data(
                        data,
                        engine,
                        policy,
                        strict,
                        date_format=date_format,
                        reject_mangled_ids=reject_mangled_ids,
                    )
                )
            )
        dataset = read[0]
        accept(dataset, data)
        log.info("weekly evaluation for %s from %s", day, data)
        results = run_one_week(
            dataset,
            day,
            policy,
            out,
            store,
            cut,
            with_report,
            progress,
            dataset_id,
            raw_csv,
            data=data,
        )
    folder = week_files.week_folder(out, day)
    log.info("done: %s (history %s)", folder, store)
    if with_report:
        typer.echo(f"Report:  {folder / 'report.html'}")
    typer.echo(f"Metrics: {folder / 'metrics.json'}, {folder / 'metrics.csv'}")
    typer.echo(f"Chats:   {folder / 'chats.csv'}")
    typer.echo(f"History: {store}")
    send = None
    if sending is not None:
        message = delivery.week_message(
            results.doc, results.history, policy, folder / "report.html", sending.report_base_url
        )
        send = functools.partial(
            send_week, message, sending, notify_command(out, day, config, history)
        )
    found = weekly.outcome(results.doc, policy)
    found = replace(found, mismatched_weeks=[w for w in mismatched if w != day.isoformat()])
    report_outcome(found, data, out, history, send)


@command(
    name="notify",
    help=(
        "Send a stored week's outcome, action list and report again, over the channels of the "
        "config's [delivery] table (docs/delivery.md). Exit 4 when a channel fails.\n\n"
        "Example:\n\n"
        "  cs-metrics notify --out out --as-of 2026-11-23 --config config.toml"
    ),
)
def notify(
    out: OutOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="The Monday of the stored evaluation.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config TOML with a [delivery] table (docs/delivery.md)."),
    ] = None,
    history: HistoryOpt = None,
) -> None:
    from cs_metrics import delivery, weekly

    sending = delivery.load_delivery(config)
    if sending is None:
        raise UsageError(
            "nothing to send: give --config with a [delivery] table naming an e-mail or a "
            "webhook (see docs/delivery.md)"
        )
    policy = make_policy(config, None)
    day = weekly.check_monday(parse_day(as_of, "--as-of"))
    store = stored_history(out, history)
    results = week_files.load_week(out, day, store)
    report = week_files.week_folder(out, day) / "report.html"
    message = delivery.week_message(
        results.doc, results.history, policy, report, sending.report_base_url
    )
    typer.echo(f"Outcome: {printable(message.found.summary())}")
    if send_week(message, sending, notify_command(out, day, config, history)):
        raise typer.Exit(4)


@command(
    help=(
        "Evaluate consecutive weeks in order, from one Monday to another (a first install).\n\n"
        "Example:\n\n"
        "  cs-metrics backfill --data exports --out out --from 2026-09-07 --to 2026-11-23"
    )
)
def backfill(
    data: DataOpt,
    out: OutOpt,
    first: Annotated[str, typer.Option("--from", help="First Monday.")],
    last: Annotated[str, typer.Option("--to", help="Last Monday.")],
    cutoff: CutoffOpt = None,
    history: HistoryOpt = None,
    config: ConfigOpt = None,
    default_timezone: TzOpt = None,
    strict: StrictOpt = False,
    date_format: DateFormatOpt = None,
    reject_mangled_ids: RejectIdsOpt = False,
    dataset_name: DatasetOpt = None,
    raw_csv: RawCsvOpt = False,
    engine: WeeklyEngineOpt = Engine.auto,
) -> None:
    from cs_metrics import weekly

    policy = make_policy(config, default_timezone)
    dataset_id = dataset_identity(out, history_path(out, history), dataset_name)
    start, end = monday(first, "--from", policy), monday(last, "--to", policy)
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    cut = default_cutoff(data, parse_cutoff(cutoff, policy.default_timezone))
    store = history_path(out, history)
    weeks = [start + dt.timedelta(weeks=i) for i in range((end - start).days // 7 + 1)]
    withheld: dict[str, str] = {}
    stale: set[str] = set()
    missing: set[str] = set()
    table_paths(data)
    check_store(store)
    with week_unit(out, store, dataset_id) as mismatched, contextlib.ExitStack() as held:
        dataset = held.enter_context(
            week_data(
                data,
                engine,
                policy,
                strict,
                date_format=date_format,
                reject_mangled_ids=reject_mangled_ids,
            )
        )
        accept(dataset, data)
        progress = typer.progressbar(
            weeks, label="weeks", file=sys.stderr, hidden=not sys.stderr.isatty()
        )
        with progress as bar:
            for day in bar:
                results = run_one_week(
                    dataset,
                    day,
                    policy,
                    out,
                    store,
                    cut,
                    dataset_id=dataset_id,
                    raw_csv=raw_csv,
                    data=data,
                )
                log.info("week %s written to %s", day, week_files.week_folder(out, day))
                found = weekly.outcome(results.doc, policy)
                withheld.update({f"{s} ({day})": why for s, why in found.withheld.items()})
                stale.update(found.stale_weeks)
                missing.update(w for w in found.missing_weeks if w < start.isoformat())
    typer.echo(f"{len(weeks)} weeks evaluated; history in {store}")
    # Weeks re-evaluated later in this run are fresh again: only those after it can be stale.
    later = sorted(w for w in stale if w > end.isoformat())
    found = weekly.Outcome(
        0,
        {},
        withheld,
        later,
        missing_weeks=sorted(missing),
        mismatched_weeks=[w for w in mismatched if not start.isoformat() <= w <= end.isoformat()],
        as_of=end.isoformat(),
    )
    report_outcome(found, data, out, history)


@command(
    name="history",
    help=(
        "Show past weekly evaluations and active violation points.\n\n"
        "Example:\n\n"
        "  cs-metrics history --out out --shop SG-001 --weeks 12"
    ),
)
def history_command(
    out: Annotated[Path, typer.Option("--out", help="Output folder of the weekly job.")] = Path(
        "out"
    ),
    history: HistoryOpt = None,
    shop: ShopOpt = None,
    weeks: Annotated[int, typer.Option("--weeks", min=1, help="Most recent weeks to show.")] = 12,
    fmt: Annotated[TextFormat, typer.Option("--format", help="table or json.")] = TextFormat.table,
    config: ConfigOpt = None,
    dataset_name: DatasetOpt = None,
) -> None:
    from cs_metrics import weekly

    policy = make_policy(config, None)
    store = history_path(out, history)
    if not store.exists():
        raise UsageError(f"{store}: no history store yet; run `cs-metrics weekly` first")
    summary = weekly.history_summary(
        store, shop, weeks, policy, shown_dataset(store, out, dataset_name)
    )
    stored = {s["shop_id"] for s in summary["shops"]}
    unknown = [s for s in dict.fromkeys(shop or []) if s not in stored]
    if unknown:  # most often a typo: say so rather than print nothing for it
        typer.echo(f"warning: no evaluation stored for shop(s) {', '.join(unknown)}", err=True)
    text = output.to_json(summary) if fmt == TextFormat.json else weekly.history_table(summary)
    typer.echo(text, nl=False)


def shown_dataset(store: Path, out: Path, given: str | None) -> str | None:
    """The data set whose weeks `history` shows: --dataset; else OUT's; else the only one."""
    known = [d for d in history_store.datasets(store) if d != history_store.LEGACY]
    if given is not None:
        if given not in known:
            raise UsageError(
                f"--dataset {given!r}: no such data set in {store} "
                f"(it holds: {', '.join(known) or 'none'})"
            )
        return given
    if len(known) <= 1:
        return known[0] if known else None
    mine = dataset_identity(out, store, None)
    if mine in known:
        return mine
    raise UsageError(
        f"{store} holds several data sets; name one with --dataset: {', '.join(known)}"
    )


@command(
    name="report",
    help=(
        "Re-render OUT/<as-of>/report.html from the stored week and the history store.\n\n"
        "Example:\n\n"
        "  cs-metrics report --out out --as-of 2026-11-23"
    ),
)
def report_command(
    out: OutOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="The Monday of the stored evaluation.")],
    history: HistoryOpt = None,
) -> None:
    from cs_metrics import weekly
    from cs_metrics.report.build import report_for

    day = weekly.check_monday(parse_day(as_of, "--as-of"))
    store = stored_history(out, history)
    if not week_files.week_folder(out, day).is_dir():
        raise UsageError(f"{week_files.week_folder(out, day)}: no stored week {day}")
    # A weekly run replacing the week at the same time would leave this report stale.
    with weekly.run_lock(out, wait=REPORT_LOCK_WAIT, command="report"):
        typer.echo(f"Report: {report_for(out, day, store)}")


REPORT_LOCK_WAIT = 60.0
"""Seconds `report` waits for a weekly run on the same OUT to finish."""
