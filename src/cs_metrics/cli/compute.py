"""Commands over a data folder: compute, chats, scan, validate, generate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from cs_metrics import files, output
from cs_metrics.cli.common import (
    ENGINE_HELP,
    ChatsFormat,
    ConfigOpt,
    CutoffOpt,
    DataOpt,
    DateFormatOpt,
    EndOpt,
    Engine,
    MetricsFormat,
    Progress,
    QuietOpt,
    RawCsvOpt,
    RejectIdsOpt,
    ShopOpt,
    StartOpt,
    StrictOpt,
    TextFormat,
    TzOpt,
    accept,
    command,
    load_whole,
    make_policy,
    parse_cutoff,
    parse_day,
    reuse_memory_if_held,
    window,
)
from cs_metrics.engines import choose
from cs_metrics.errors import UsageError
from cs_metrics.pipeline import (
    evaluate,
    evaluated,
    messages_in_window,
)


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
    quiet: QuietOpt = False,
    raw_csv: RawCsvOpt = False,
) -> None:
    first, last = window(start, end)
    policy = make_policy(config, default_timezone)
    cut = parse_cutoff(cutoff, policy.default_timezone)
    reuse_memory_if_held(engine, data)
    with Progress(quiet).stage(f"Reading, checking and computing {data}"):
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
    accept(dataset, data, shop)
    doc = output.result_document(dataset, evaluation)
    if quarantine is not None:
        for path in output.write_quarantine(dataset, quarantine, raw_csv=raw_csv):
            typer.echo(f"quarantined rows written to {path}", err=True)
    render = {
        MetricsFormat.json: output.to_json,
        MetricsFormat.csv: lambda d: output.to_csv(d["shops"], raw=raw_csv),
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
    raw_csv: RawCsvOpt = False,
) -> None:
    first, last = window(start, end)
    policy = make_policy(config, default_timezone)
    cut = parse_cutoff(cutoff, policy.default_timezone)
    dataset = load_whole(
        data, policy, strict, date_format=date_format, reject_mangled_ids=reject_mangled_ids
    )
    accept(dataset, data, shop)
    rows = output.chat_rows(evaluate(dataset, first, last, policy, cut, shop).chats)
    body = (
        output.chats_parquet(rows)
        if fmt == ChatsFormat.parquet
        else output.chats_csv(rows, raw=raw_csv)
    )
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
    quiet: QuietOpt = False,
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
    progress = Progress(quiet)
    with progress.stage(f"Generating {shops} shops' chats"):
        tables = make(config)
    with progress.stage(f"Writing {fmt.value} tables to {out}"):
        written = write_tables(tables, out, fmt.value)
    for path in written:
        typer.echo(f"wrote {path}", err=True)


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
    raw_csv: RawCsvOpt = False,
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
    summary = scanning.summarise(findings)
    typer.echo(output.findings_text(findings, summary, fmt.value, raw_csv=raw_csv), nl=False)


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
