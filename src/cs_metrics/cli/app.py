"""The command line: parse options, call the core, print or write, map errors to exit codes."""

from __future__ import annotations

import datetime as dt
import errno
import functools
import logging
import os
import re
import shlex
import sys
import traceback
import zoneinfo
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from cs_metrics import __version__, delivery, files, output, week_files, weekly
from cs_metrics.cli.allocator import reuse_freed_memory
from cs_metrics.engines import DISK_FROM_BYTES, choose, chosen_name
from cs_metrics.errors import CsMetricsError, UsageError
from cs_metrics.history import check_store
from cs_metrics.pipeline import (
    Dataset,
    evaluate,
    evaluated,
    load,
    messages_in_window,
)
from cs_metrics.policy import Policy, load_policy
from cs_metrics.readers import table_paths
from cs_metrics.report import build
from cs_metrics.timestamps import known_timezones, parse_instants
from cs_metrics.unusable import check_usable
from cs_metrics.week_files import WeekResults

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help=(
        "TikTok Shop customer-service metrics, by the Customer Service Guidelines.\n\n"
        "Example:\n\n"
        "  cs-metrics compute --data sample_data --start 2026-11-16 --end 2026-11-22"
    ),
)
log = logging.getLogger("cs_metrics")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"cs-metrics {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_print_version),
    ] = False,
) -> None:
    """TikTok Shop customer-service metrics, by the Customer Service Guidelines."""


def command(
    target: typer.Typer | None = None, **options: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command whose domain errors become one stderr line and their exit status."""

    def register(function: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                function(*args, **kwargs)
            except CsMetricsError as exc:
                typer.echo(f"cs-metrics: error: {printable(str(exc))}", err=True)
                raise typer.Exit(exc.exit_code) from None
            except OSError as exc:
                # A path the user gave that cannot be written or opened: a bad invocation.
                if exc.errno not in PATH_ERRNOS or exc.filename is None:
                    raise
                typer.echo(f"cs-metrics: error: {exc.filename}: {exc.strerror}", err=True)
                raise typer.Exit(2) from None

        return (target or app).command(**options)(run)

    return register


PATH_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EROFS}
)
"""OS errors that mean a given path is of the wrong kind or not writable (exit 2)."""


class TextFormat(StrEnum):
    """Output formats of `history` and `validate` (no CSV: their results are not tables)."""

    table = "table"
    json = "json"


class MetricsFormat(StrEnum):
    """Output formats of `compute`."""

    table = "table"
    json = "json"
    csv = "csv"


class Engine(StrEnum):
    """Engines of `compute` and `validate`: pandas, disk, Dask (docs/large_files.md)."""

    auto = "auto"
    pandas = "pandas"
    disk = "disk"
    dask = "dask"


ENGINE_HELP = (
    "pandas (all messages in memory), disk (messages spilled to temporary files by shop: "
    "memory stays flat with file size), dask (read, checked and evaluated on the workers of a "
    "Dask cluster; needs cs-metrics[dask]), or auto: disk for a CSV or JSON Lines messages file "
    f"of {DISK_FROM_BYTES // 2**20} MB or more, or messages that would not fit in the memory "
    "available, else pandas."
)


class ChatsFormat(StrEnum):
    """Output formats of `chats`."""

    csv = "csv"
    parquet = "parquet"


DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Folder with messages.(csv|parquet|jsonl) and optional ratings, holiday_mode, shops.",
    ),
]
StartOpt = Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (shop's local day).")]
EndOpt = Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (included).")]
CutoffOpt = Annotated[
    str | None,
    typer.Option("--cutoff", help="Data complete up to this instant (default: latest message)."),
]


def _stripped(values: list[str] | None) -> list[str] | None:
    """Shop ids as given, without surrounding white space (as in the data, SPEC 1)."""
    stripped = [v.strip() for v in values] if values else values
    if stripped and not all(stripped):
        # An empty value is a missing one (SPEC 1): no shop has an empty id.
        raise typer.BadParameter("a shop id cannot be empty")
    return stripped


ShopOpt = Annotated[
    list[str] | None,
    typer.Option("--shop", help="Only this shop (repeatable).", callback=_stripped),
]
TzOpt = Annotated[
    str | None,
    typer.Option(
        "--default-timezone", help="Zone for shops with no timezone or known market (default UTC)."
    ),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Any bad row is an error (exit 2).")]
DateFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="Also accept timestamps in this strptime format, e.g. '%d/%m/%Y %H:%M' (shop-local).",
    ),
]
RejectIdsOpt = Annotated[
    bool,
    typer.Option(
        "--reject-mangled-ids",
        help="Quarantine ids a spreadsheet turned into 1.79E+18 or 3.0 (default: warn only).",
    ),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Policy TOML file (see docs/policy.md).")
]


FIRST_DAY, LAST_DAY = dt.date(1, 1, 15), dt.date(9999, 12, 15)
"""Days a window may name: a week and a zone's offset either side stay within years 1-9999."""


def parse_day(text: str, option: str) -> dt.date:
    """A YYYY-MM-DD option value as a date."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
            raise ValueError(text)
        day = dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"{option} {text!r} is not a date in the form YYYY-MM-DD") from exc
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UsageError(f"{option} {day} is outside the supported days {FIRST_DAY}..{LAST_DAY}")
    return day


def parse_cutoff(text: str | None, default_tz: str) -> pd.Timestamp | None:
    """The --cutoff instant (SPEC 1 forms; naive means the run's default zone)."""
    if text is None:
        return None
    values = pd.Series([text.strip()], dtype="string")
    instants, _reasons = parse_instants(values, pd.Series([default_tz]))
    if pd.isna(instants.iloc[0]):
        raise UsageError(
            f"--cutoff {text!r} is not an accepted timestamp "
            "(ISO-8601, or Unix seconds or milliseconds; a local time must exist in the zone)"
        )
    return pd.Timestamp(instants.iloc[0])


def make_policy(config: Path | None, default_tz: str | None) -> Policy:
    """The effective policy from --config and --default-timezone."""
    if default_tz is not None and default_tz not in known_timezones():
        raise UsageError(f"--default-timezone {default_tz!r} is not a known IANA zone name")
    return load_policy(config, default_timezone=default_tz)


def accept(dataset: Dataset, data: Path) -> None:
    """A loaded folder the run can use (SPEC 6a: some usable message), its warnings printed."""
    check_usable(
        table_paths(data)["messages"],
        dataset.counts["messages"],
        dataset.quarantine.get("messages"),
    )
    report_warnings(dataset.warnings)


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Characters that end a line or steer a terminal: a shop id holding them could forge log lines."""


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x1b`), for logs and the terminal."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def report_warnings(messages: list[str]) -> None:
    """Print the run's warnings on stderr."""
    for line in messages:
        typer.echo(f"warning: {printable(line)}", err=True)


def load_whole(*args: Any, **kwargs: Any) -> Dataset:
    """`pipeline.load` for a run that holds every message: freed columns are reused."""
    reuse_freed_memory()
    return load(*args, **kwargs)


def reuse_memory_if_held(engine: Engine, data: Path) -> None:
    """Freed columns reused when this process will hold every message (the pandas engine): the
    disk engine keeps its peak flat by handing memory back, and Dask holds none here."""
    if chosen_name(engine.value, data) == "pandas":
        reuse_freed_memory()


def window(start: str, end: str) -> tuple[dt.date, dt.date]:
    """Validated --start/--end dates."""
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last < first:
        raise UsageError(f"--end {last} is before --start {first}")
    return first, last


@command(
    help=(
        "Compute the guideline metrics per shop for the local days START..END.\n\n"
        "Example:\n\n"
        "  cs-metrics compute --data sample_data --start 2026-11-16 --end 2026-11-22 --format json"
    )
)
def compute(
    data: DataOpt,
    start: StartOpt,
    end: EndOpt,
    cutoff: CutoffOpt = None,
    shop: ShopOpt = None,
    default_timezone: TzOpt = None,
    fmt: Annotated[
        MetricsFormat, typer.Option("--format", help="table (people), json or csv (machines).")
    ] = MetricsFormat.table,
    strict: StrictOpt = False,
    date_format: DateFormatOpt = None,
    reject_mangled_ids: RejectIdsOpt = False,
    quarantine: Annotated[
        Path | None, typer.Option("--quarantine", help="Write bad rows here, one CSV per table.")
    ] = None,
    config: ConfigOpt = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help=ENGINE_HELP,
        ),
    ] = Engine.auto,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="With --engine dask: address of a running Dask scheduler (default: a local "
            "cluster), e.g. tcp://10.0.0.5:8786.",
        ),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions", min=1, help="With --engine dask: partitions (default 2 per thread)."
        ),
    ] = None,
    skip_after_cutoff: Annotated[
        bool,
        typer.Option(
            "--skip-after-cutoff",
            help="With --cutoff and Parquet messages: do not read the row groups at the end "
            "whose statistics show every message was sent after the cut-off (the metrics are "
            "the same; `input` counts and `shops` then cover only the rows read).",
        ),
    ] = False,
) -> None:
    first, last = window(start, end)
    policy = make_policy(config, default_timezone)
    cut = parse_cutoff(cutoff, policy.default_timezone)
    reuse_memory_if_held(engine, data)
    dataset, evaluation = evaluated(
        data,
        first,
        last,
        policy,
        cut,
        shop,
        strict=strict,
        date_format=date_format,
        reject_mangled_ids=reject_mangled_ids,
        engine=engine.value,
        scheduler=scheduler,
        partitions=partitions,
        skip_after_cutoff=skip_after_cutoff,
    )
    accept(dataset, data)
    doc = output.result_document(dataset, evaluation)
    if quarantine is not None:
        for path in output.write_quarantine(dataset, quarantine):
            typer.echo(f"quarantined rows written to {path}", err=True)
    render = {
        MetricsFormat.json: output.to_json,
        MetricsFormat.csv: lambda d: output.to_csv(d["shops"]),
    }
    text = render.get(fmt, output.to_table)(doc)
    if fmt == MetricsFormat.table and dataset.bad_rows and quarantine is None:
        text += "Bad rows were set aside; add --quarantine DIR to write them out with reasons.\n"
    typer.echo(text, nl=False)


@command(
    help=(
        "Write one row per chat received in START..END: instants, responder, minutes, status.\n\n"
        "Example:\n\n"
        "  cs-metrics chats --data sample_data --start 2026-11-16 --end 2026-11-22 "
        "--output chats.csv"
    )
)
def chats(
    data: DataOpt,
    start: StartOpt,
    end: EndOpt,
    output_file: Annotated[Path, typer.Option("--output", help="File to write.")],
    cutoff: CutoffOpt = None,
    shop: ShopOpt = None,
    default_timezone: TzOpt = None,
    fmt: Annotated[ChatsFormat, typer.Option("--format", help="csv or parquet.")] = ChatsFormat.csv,
    strict: StrictOpt = False,
    date_format: DateFormatOpt = None,
    reject_mangled_ids: RejectIdsOpt = False,
    config: ConfigOpt = None,
) -> None:
    first, last = window(start, end)
    policy = make_policy(config, default_timezone)
    cut = parse_cutoff(cutoff, policy.default_timezone)
    dataset = load_whole(
        data, policy, strict, date_format=date_format, reject_mangled_ids=reject_mangled_ids
    )
    accept(dataset, data)
    rows = output.chat_rows(evaluate(dataset, first, last, policy, cut, shop).chats)
    body = output.chats_parquet(rows) if fmt == ChatsFormat.parquet else output.chats_csv(rows)
    files.write_atomic(output_file, body)
    typer.echo(f"{len(rows)} chats written to {output_file}", err=True)


@command(
    help=(
        "Generate a seeded, realistic dataset (for trials and benchmarks).\n\n"
        "Example:\n\n"
        "  cs-metrics generate --out /tmp/big --shops 2000 --messages 1000000 --format parquet"
    )
)
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the tables to.")],
    shops: Annotated[int, typer.Option("--shops", min=1, help="Number of shops.")] = 8,
    messages: Annotated[
        int | None, typer.Option("--messages", min=1, help="Approximate number of messages.")
    ] = None,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD.")] = "2026-11-09",
    days: Annotated[int, typer.Option("--days", min=1, help="Number of days.")] = 15,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 7,
    fmt: Annotated[ChatsFormat, typer.Option("--format", help="csv or parquet.")] = ChatsFormat.csv,
    bad_rows: Annotated[
        bool,
        typer.Option("--bad-rows/--no-bad-rows", help="Inject a few bad rows (as in the sample)."),
    ] = True,
) -> None:
    from cs_metrics.generate import GeneratorConfig, write_tables
    from cs_metrics.generate import generate as make

    first = parse_day(start, "--start")
    # Chats answered after the last day run on a little: all of it must stay before year 10000.
    if days > (dt.date(9999, 12, 31) - first).days - 2:
        raise UsageError(f"--start {first} with --days {days} runs past the year 9999")
    config = GeneratorConfig(
        shops=shops,
        start=first,
        days=days,
        messages=messages,
        seed=seed,
        bad_rows=bad_rows,
    )
    for path in write_tables(make(config), out, fmt.value):
        typer.echo(f"wrote {path}", err=True)


OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (OUT/<as-of>/ per week).")]
HistoryOpt = Annotated[
    Path | None, typer.Option("--history", help="History store (default OUT/history.sqlite).")
]


def history_path(out: Path, given: Path | None) -> Path:
    """The history store: --history, else OUT/history.sqlite."""
    return given if given is not None else out / "history.sqlite"


def monday(text: str | None, option: str, policy: Policy) -> dt.date:
    """A Monday from an option, or the latest Monday on or before the scheduler's today."""
    if text is None:
        return weekly.default_monday(dt.datetime.now(dt.UTC), policy)
    return weekly.check_monday(parse_day(text, option), option)


def run_one_week(
    dataset: Dataset,
    as_of: dt.date,
    policy: Policy,
    out: Path,
    store: Path,
    cut: pd.Timestamp | None,
    with_report: bool = True,
) -> WeekResults:
    """Evaluate, write and record one week (and its report)."""
    results = weekly.run_week(dataset, as_of, policy, store, cut)
    week_files.write_week(results, dataset, out)
    results = weekly.record_week(results, store)
    if with_report:
        build.write_report(results, out, store)
    else:  # a report of an earlier run of this week would no longer match its files
        (week_files.week_folder(out, as_of) / "report.html").unlink(missing_ok=True)
    return results


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
    with_report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write report.html (default) or skip it.")
    ] = True,
) -> None:
    policy = make_policy(config, default_timezone)
    sending = delivery.load_delivery(config)  # a bad [delivery] table stops the run at once
    day = monday(as_of, "--as-of", policy)
    cut = parse_cutoff(cutoff, policy.default_timezone)
    store = history_path(out, history)
    table_paths(data)  # a missing or doubled table stops the run before OUT is touched
    check_store(store)
    # The lock comes first, so that a second run stops at once; a failed run that created OUT
    # leaves nothing in it (SPEC 8: unusable input writes nothing).
    with weekly.run_lock(out):
        dataset = load_whole(
            data, policy, strict, date_format=date_format, reject_mangled_ids=reject_mangled_ids
        )
        accept(dataset, data)
        log.info("weekly evaluation for %s from %s", day, data)
        results = run_one_week(dataset, day, policy, out, store, cut, with_report)
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
    report_outcome(weekly.outcome(results.doc, policy), data, out, history, send)


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
    sending = delivery.load_delivery(config)
    if sending is None:
        raise UsageError(
            "nothing to send: give --config with a [delivery] table naming an e-mail or a "
            "webhook (see docs/delivery.md)"
        )
    policy = make_policy(config, None)
    day = weekly.check_monday(parse_day(as_of, "--as-of"))
    store = history_path(out, history)
    if not store.exists():  # a mistyped --history would otherwise start an empty store
        raise UsageError(f"{store}: no history store; give the one the weekly job wrote")
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
) -> None:
    policy = make_policy(config, default_timezone)
    start, end = monday(first, "--from", policy), monday(last, "--to", policy)
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    cut = parse_cutoff(cutoff, policy.default_timezone)
    store = history_path(out, history)
    weeks = [start + dt.timedelta(weeks=i) for i in range((end - start).days // 7 + 1)]
    withheld: dict[str, str] = {}
    stale: set[str] = set()
    table_paths(data)
    check_store(store)
    with weekly.run_lock(out):
        dataset = load_whole(
            data, policy, strict, date_format=date_format, reject_mangled_ids=reject_mangled_ids
        )
        accept(dataset, data)
        progress = typer.progressbar(
            weeks, label="weeks", file=sys.stderr, hidden=not sys.stderr.isatty()
        )
        with progress as bar:
            for day in bar:
                results = run_one_week(dataset, day, policy, out, store, cut)
                log.info("week %s written to %s", day, week_files.week_folder(out, day))
                found = weekly.outcome(results.doc, policy)
                withheld.update({f"{s} ({day})": why for s, why in found.withheld.items()})
                stale.update(found.stale_weeks)
    typer.echo(f"{len(weeks)} weeks evaluated; history in {store}")
    # Weeks re-evaluated later in this run are fresh again: only those after it can be stale.
    later = sorted(w for w in stale if w > end.isoformat())
    report_outcome(weekly.Outcome(0, {}, withheld, later), data, out, history)


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
) -> None:
    policy = make_policy(config, None)
    store = history_path(out, history)
    if not store.exists():
        raise UsageError(f"{store}: no history store yet; run `cs-metrics weekly` first")
    summary = weekly.history_summary(store, shop, weeks, policy)
    stored = {s["shop_id"] for s in summary["shops"]}
    unknown = [s for s in dict.fromkeys(shop or []) if s not in stored]
    if unknown:  # most often a typo: say so rather than print nothing for it
        typer.echo(f"warning: no evaluation stored for shop(s) {', '.join(unknown)}", err=True)
    text = output.to_json(summary) if fmt == TextFormat.json else weekly.history_table(summary)
    typer.echo(text, nl=False)


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
    from cs_metrics.report.build import report_for

    day = weekly.check_monday(parse_day(as_of, "--as-of"))
    store = history_path(out, history)
    if not store.exists():  # a mistyped --history would otherwise start an empty store
        raise UsageError(f"{store}: no history store; give the one the weekly job wrote")
    typer.echo(f"Report: {report_for(out, day, store)}")


@command(
    help=(
        "Flag seller and auto-reply messages that break the guidelines' Buyer Messages rules "
        "(off-platform contact or payment, cancellation requests, review manipulation, threats, "
        "spam, abuse).\n\n"
        "Example:\n\n"
        "  cs-metrics scan --data sample_data --start 2026-11-16 --end 2026-11-22 --format json"
    )
)
def scan(
    data: DataOpt,
    start: Annotated[str | None, typer.Option("--start", help="First day (default: all).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day (default: all).")] = None,
    shop: ShopOpt = None,
    fmt: Annotated[
        MetricsFormat, typer.Option("--format", help="table, json or csv.")
    ] = MetricsFormat.table,
    rules: Annotated[
        Path | None, typer.Option("--rules", help="Rules TOML (see docs/scan.md).")
    ] = None,
    buyer_abuse: Annotated[
        bool, typer.Option("--buyer-abuse", help="Also flag abusive buyer messages (buyer_abuse).")
    ] = False,
    default_timezone: TzOpt = None,
    config: ConfigOpt = None,
    date_format: DateFormatOpt = None,
    reject_mangled_ids: RejectIdsOpt = False,
) -> None:
    from cs_metrics.scan import scanner as scanning

    if (start is None) != (end is None):
        raise UsageError("give both --start and --end, or neither")
    first, last = window(start, end) if start is not None and end is not None else (None, None)
    policy = make_policy(config, default_timezone)
    ruleset = scanning.load_rules(rules)
    dataset = load_whole(
        data, policy, date_format=date_format, reject_mangled_ids=reject_mangled_ids
    )
    accept(dataset, data)
    messages = messages_in_window(
        dataset,
        first,
        last,
        shop,
        columns=scanning.SCAN_COLUMNS,
        roles=scanning.scanned_roles(ruleset, include_buyer_abuse=buyer_abuse),
    )
    findings = scanning.scan_messages(messages, ruleset, include_buyer_abuse=buyer_abuse)
    typer.echo(output.findings_text(findings, scanning.summarise(findings), fmt.value), nl=False)


@command(
    name="validate",
    help=(
        "Check a data folder without computing anything: per table, rows read / usable / "
        "quarantined by reason, warnings, the time range and the shops found. Exit 0 clean, "
        "1 problems found, 2 unusable.\n\n"
        "Example:\n\n"
        "  cs-metrics validate --data sample_data"
    ),
)
def validate_command(
    data: DataOpt,
    default_timezone: TzOpt = None,
    fmt: Annotated[TextFormat, typer.Option("--format", help="table or json.")] = TextFormat.table,
    date_format: DateFormatOpt = None,
    reject_mangled_ids: RejectIdsOpt = False,
    config: ConfigOpt = None,
    engine: Annotated[Engine, typer.Option("--engine", help=ENGINE_HELP)] = Engine.auto,
) -> None:
    from cs_metrics.checkup import EXIT_STATUS, checkup, checkup_text

    policy = make_policy(config, default_timezone)
    reuse_memory_if_held(engine, data)
    with choose(engine.value, data) as chosen:
        report = checkup(
            data,
            policy,
            date_format=date_format,
            reject_mangled_ids=reject_mangled_ids,
            engine=chosen,
        )
    text = output.to_json(report) if fmt == TextFormat.json else checkup_text(report)
    typer.echo(text, nl=False)
    raise typer.Exit(EXIT_STATUS[report["status"]])


import_app = typer.Typer(
    no_args_is_help=True,
    help="Convert other sources into a cs-metrics data folder (see docs/import.md).",
)
app.add_typer(import_app, name="import")


@command(
    import_app,
    name="tiktok-api",
    help=(
        "Convert saved TikTok Shop Customer Service API pages (docs/import.md) into the tables.\n\n"
        "Example:\n\n"
        "  cs-metrics import tiktok-api --raw dumps/ --data exports/"
    ),
)
def import_tiktok_api(
    raw: Annotated[Path, typer.Option("--raw", help="Folder of *.jsonl page dumps.")],
    data: Annotated[Path, typer.Option("--data", help="Data folder to write.")],
) -> None:
    from cs_metrics.importers.tiktok_api import import_tiktok_api as convert

    for line in convert(raw, data).lines():
        typer.echo(line)


@command(
    import_app,
    name="ibm-twitter",
    help=(
        "Convert the IBM Twitter customer-care conversations (JSON) into the tables; customer "
        "handles are pseudonymised with CS_METRICS_PSEUDONYM_KEY (random when unset).\n\n"
        "Example:\n\n"
        "  cs-metrics import ibm-twitter --path test.json --data twitter/"
    ),
)
def import_ibm_twitter(
    path: Annotated[Path, typer.Option("--path", help="The dataset's JSON file.")],
    data: Annotated[Path, typer.Option("--data", help="Data folder to write.")],
) -> None:
    from cs_metrics.importers.ibm_twitter import import_ibm_twitter as convert

    for line in convert(path, data, os.environ.get("CS_METRICS_PSEUDONYM_KEY")).lines():
        typer.echo(line)


def run() -> None:
    """Run the app and turn domain errors into one line and an exit status."""
    logging.basicConfig(
        level=os.environ.get("CS_METRICS_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        app()
    except (zoneinfo.ZoneInfoNotFoundError, KeyboardInterrupt) as exc:
        typer.echo(f"cs-metrics: error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("CS_METRICS_DEBUG"):
            traceback.print_exc()
        typer.echo(
            f"cs-metrics: internal error: {type(exc).__name__}: {exc} "
            "(set CS_METRICS_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(1)
